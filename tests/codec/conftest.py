"""Fixtures: a tiny debug-model training checkpoint and short test audio."""

import pytest
import soundfile as sf
import torch

from raycodec.config import format_config, load_config
from raycodec.data.synth import synth_clip
from raycodec.train.checkpoint import save_checkpoint


def make_checkpoint(directory, seed: int = 0, overrides=()):
    """A training checkpoint of the debug preset with random (seeded) weights."""
    cfg = load_config("debug", list(overrides))
    torch.manual_seed(seed)
    from raycodec.codec.loading import model_settings
    from raycodec.models import build_from_settings

    model = build_from_settings(model_settings(cfg))
    for layer in model.quantizer.vq.layers:  # random codebooks, as if k-means had run
        layer._codebook.embed.normal_()
        layer._codebook.inited.fill_(1)
    state = {"solver": {"model": model.state_dict()}, "config": format_config(cfg),
             "epoch": 0, "step": 0}
    save_checkpoint(directory, state, {"epoch": 0, "step": 0, "signature": "testsig"})
    return directory


@pytest.fixture(scope="session")
def debug_ckpt(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("ck") / "checkpoint_000000")


@pytest.fixture(scope="session")
def clip(tmp_path_factory):
    """A 3.3 s mono 24 kHz wav (not a whole number of frames)."""
    path = tmp_path_factory.mktemp("audio") / "clip.wav"
    x = synth_clip(3.3, 24000, 1, seed=2)
    sf.write(path, x.T, 24000, subtype="FLOAT")
    return path

