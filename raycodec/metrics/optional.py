"""Metrics from optional packages (extra `eval`): ViSQOL, PESQ, STOI.

Each returns None when its package is not installed, so an evaluation reports the metric as
skipped instead of crashing; `available()` says which ones can run.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile

import numpy as np
import torch

MIN_VISQOL_SECONDS = 1.0
PACKAGES = {"visqol_audio": "visqol", "visqol_speech": "visqol", "pesq": "pesq",
            "stoi": "pystoi"}


def available() -> dict[str, bool]:
    """Metric name -> whether its package can be imported."""
    return {name: importlib.util.find_spec(pkg) is not None for name, pkg in PACKAGES.items()}


def _mono_at(x: torch.Tensor, sample_rate: int, target: int) -> np.ndarray:
    import torchaudio.functional as AF

    mono = x.float().mean(dim=0, keepdim=True)
    if sample_rate != target:
        mono = AF.resample(mono, sample_rate, target)
    return mono[0].numpy().astype(np.float64)


def visqol(reference: torch.Tensor, estimate: torch.Tensor, sample_rate: int,
           mode: str = "audio") -> float | None:
    """ViSQOL MOS-LQO (audio mode at 48 kHz, speech mode at 16 kHz); [C, T] tensors."""
    if importlib.util.find_spec("visqol") is None:
        return None
    import soundfile as sf
    from visqol import VisqolApi

    if reference.shape[-1] < MIN_VISQOL_SECONDS * sample_rate:
        return None  # ViSQOL compares ~1 s patches: shorter clips have no score
    rate = 48000 if mode == "audio" else 16000
    api = VisqolApi()
    api.create(mode=mode)
    with tempfile.TemporaryDirectory() as tmp:
        ref, deg = os.path.join(tmp, "ref.wav"), os.path.join(tmp, "deg.wav")
        sf.write(ref, _mono_at(reference, sample_rate, rate), rate, subtype="FLOAT")
        sf.write(deg, _mono_at(estimate, sample_rate, rate), rate, subtype="FLOAT")
        try:
            return float(api.measure(ref, deg).moslqo)
        except (ValueError, IndexError):  # too short or silent for ViSQOL's patches: no score
            return None


def pesq(reference: torch.Tensor, estimate: torch.Tensor, sample_rate: int) -> float | None:
    """Wide-band PESQ at 16 kHz (speech); None when `pesq` is missing or the clip is silent."""
    if importlib.util.find_spec("pesq") is None:
        return None
    from pesq import pesq as _pesq

    try:
        return float(_pesq(16000, _mono_at(reference, sample_rate, 16000),
                           _mono_at(estimate, sample_rate, 16000), "wb"))
    except Exception:  # pesq raises on clips without detectable speech
        return None


def stoi(reference: torch.Tensor, estimate: torch.Tensor, sample_rate: int) -> float | None:
    """STOI at 16 kHz (speech intelligibility, 0..1)."""
    if importlib.util.find_spec("pystoi") is None:
        return None
    from pystoi import stoi as _stoi

    return float(_stoi(_mono_at(reference, sample_rate, 16000),
                       _mono_at(estimate, sample_rate, 16000), 16000, extended=False))
