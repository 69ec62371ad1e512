"""ViSQOL, PESQ and STOI (the `eval` extra, part of the dev install) rank degradations right."""

import pytest
import torch

from raycodec.data import synth_clip
from raycodec.metrics import optional


@pytest.mark.parametrize("name, package, call", [
    ("visqol_audio", "visqol", lambda x, y: optional.visqol(x, y, 24000, "audio")),
    ("visqol_speech", "visqol", lambda x, y: optional.visqol(x, y, 24000, "speech")),
    ("pesq", "pesq", lambda x, y: optional.pesq(x, y, 24000)),
    ("stoi", "pystoi", lambda x, y: optional.stoi(x, y, 24000)),
])
def test_metric_prefers_the_cleaner_signal(name, package, call):
    pytest.importorskip(package)
    assert optional.available()[name]
    x = torch.from_numpy(synth_clip(3.0, 24000, 1, seed=1))
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    slight, heavy = call(x, x + 0.005 * noise), call(x, x + 0.2 * noise)
    assert slight is not None and heavy is not None
    assert slight > heavy, (slight, heavy)
