"""Opus / silence / noise anchors through the real opus-tools, scored like the codec."""

from __future__ import annotations

import math

import pytest
import torch

from raycodec.evaluate.anchors import Anchor, apply_anchor, default_anchors, opus_available, score

SR = 24000
needs_opus = pytest.mark.skipif(not opus_available(),
                                reason="opus-tools not installed (apt-get install opus-tools)")


def _tones(seconds: float = 1.0) -> torch.Tensor:
    t = torch.arange(int(seconds * SR)) / SR
    x = sum(torch.sin(2 * math.pi * f * t) / k for k, f in enumerate((220, 1250, 3300, 7100), 1))
    return (0.3 * x * (0.6 + 0.4 * torch.sin(2 * math.pi * 3 * t)))[None].float()


def test_default_anchors():
    names = [a.name for a in default_anchors()]
    assert names == ["opus_6kbps", "opus_12kbps", "opus_24kbps", "silence", "noise_20db"]


@needs_opus
def test_opus_is_aligned_and_improves_with_bitrate():
    x = _tones()
    mel = {}
    for kbps in (6.0, 24.0):
        y = apply_anchor(Anchor("o", "opus", kbps=kbps), x, SR)
        assert y.shape == x.shape
        mel[kbps] = score(x, y, SR, speech=False, heavy=False)["mel_distance"]
    y24 = apply_anchor(Anchor("o", "opus", kbps=24.0), x, SR)
    assert score(x, y24, SR, speech=False, heavy=False)["si_snr_db"] > 5  # time-aligned
    assert mel[24.0] < mel[6.0]


def test_reference_lines():
    x = _tones()
    noisy = score(x, apply_anchor(Anchor("n", "noise", snr_db=20.0), x, SR), SR,
                  speech=False, heavy=False)
    assert noisy["si_snr_db"] == pytest.approx(20.0, abs=0.3)
    silent = score(x, apply_anchor(Anchor("s", "silence"), x, SR), SR, speech=False, heavy=False)
    assert silent["mel_distance"] > noisy["mel_distance"] + 1.0
    assert silent["si_snr_db"] < -50
    with pytest.raises(ValueError, match="unknown anchor kind"):
        apply_anchor(Anchor("x", "mp3"), x, SR)


def test_heavy_metrics_speech_only():
    x = _tones(1.5)
    y = x + 0.01 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    music = score(x, y, SR, speech=False, heavy=True)
    assert set(music) >= {"visqol_audio", "pesq", "stoi"}
    assert math.isnan(music["pesq"]) and math.isnan(music["stoi"])
