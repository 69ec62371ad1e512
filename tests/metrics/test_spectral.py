"""Spectral distances and optional-package metrics."""

import torch

from raycodec.data.synth import synth_clip
from raycodec.metrics import mel_distance, stft_distance
from raycodec.metrics import optional as opt


def test_distances_zero_for_identical_and_grow_with_noise():
    x = torch.from_numpy(synth_clip(0.5, 24000, 1, seed=0))
    g = torch.Generator().manual_seed(0)
    small = x + 0.001 * torch.randn(x.shape, generator=g)
    large = x + 0.1 * torch.randn(x.shape, generator=g)
    assert mel_distance(x, x, 24000) == 0.0 and stft_distance(x, x) == 0.0
    assert 0 < mel_distance(x, small, 24000) < mel_distance(x, large, 24000)
    assert 0 < stft_distance(x, small) < stft_distance(x, large)


def test_optional_metrics_skip_when_missing():
    x = torch.from_numpy(synth_clip(0.5, 24000, 1, seed=0))
    status = opt.available()
    assert set(status) == {"visqol_audio", "visqol_speech", "pesq", "stoi"}
    if not status["stoi"]:
        assert opt.stoi(x, x, 24000) is None
    else:
        assert opt.stoi(x, x, 24000) > 0.99
    if not status["pesq"]:
        assert opt.pesq(x, x, 24000) is None
