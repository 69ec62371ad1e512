"""Reference points for codec quality: Opus at fixed bitrates and the silence / noise lines.

Opus runs through opus-tools (`opusenc --hard-cbr`, `opusdec`; Debian package `opus-tools`), so a
codec is compared with what a user would actually get from Opus at that bitrate. `score` measures
any (reference, estimate) pair the same way, so codec, anchors and reference lines share one
definition of every metric.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf
import torch

from raycodec.metrics import mel_distance, si_snr, stft_distance
from raycodec.metrics import optional as opt

OPUS_KBPS = (6.0, 12.0, 24.0)
NOISE_SNR_DB = 20.0
HEAVY = ("visqol_audio", "pesq", "stoi")


class AnchorUnavailable(RuntimeError):
    """opus-tools is missing or failed."""


@dataclass(frozen=True)
class Anchor:
    """One reference codec: `kind` opus (at `kbps`), silence or noise (at `snr_db`)."""

    name: str
    kind: str
    kbps: float | None = None
    snr_db: float | None = None


def default_anchors() -> list[Anchor]:
    """Opus at 6/12/24 kbps, silence, and white noise at 20 dB SNR."""
    return [*(Anchor(f"opus_{k:g}kbps", "opus", kbps=k) for k in OPUS_KBPS),
            Anchor("silence", "silence"), Anchor(f"noise_{NOISE_SNR_DB:g}db", "noise",
                                                 snr_db=NOISE_SNR_DB)]


def opus_available() -> bool:
    """Whether opusenc and opusdec are on PATH."""
    return shutil.which("opusenc") is not None and shutil.which("opusdec") is not None


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, timeout=120)
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        raise AnchorUnavailable(f"{cmd[0]} failed: {err[-1] if err else proc.returncode}")


def opus_roundtrip(x: torch.Tensor, sample_rate: int, kbps: float) -> torch.Tensor:
    """Encode [C, T] audio with `opusenc --hard-cbr --bitrate kbps`, decode it back at
    `sample_rate`; same shape as x (opusdec removes the pre-skip, so it is time-aligned)."""
    if not opus_available():
        raise AnchorUnavailable("opusenc/opusdec not found on PATH "
                                "(Debian: apt-get install opus-tools)")
    with tempfile.TemporaryDirectory() as tmp:
        src, enc, dec = (str(Path(tmp) / n) for n in ("in.wav", "x.opus", "out.wav"))
        sf.write(src, x.detach().float().cpu().T.numpy(), sample_rate, subtype="FLOAT")
        _run(["opusenc", "--quiet", "--hard-cbr", "--bitrate", f"{kbps:g}", src, enc])
        _run(["opusdec", "--quiet", "--float", "--rate", str(sample_rate), enc, dec])
        y, _ = sf.read(dec, dtype="float32", always_2d=True)
    y = torch.from_numpy(y.T.copy())
    if y.shape[0] != x.shape[0]:
        y = y.mean(0, keepdim=True).expand(x.shape[0], -1)
    n = x.shape[-1]
    y = y[:, :n] if y.shape[-1] >= n else torch.nn.functional.pad(y, (0, n - y.shape[-1]))
    return y.contiguous()


def apply_anchor(anchor: Anchor, x: torch.Tensor, sample_rate: int, seed: int = 0
                 ) -> torch.Tensor:
    """The anchor's output for the clip x [C, T]."""
    if anchor.kind == "opus":
        return opus_roundtrip(x, sample_rate, float(anchor.kbps))
    if anchor.kind == "silence":
        return torch.zeros_like(x)
    if anchor.kind == "noise":
        gen = torch.Generator().manual_seed(seed)
        noise = torch.randn(x.shape, generator=gen)
        scale = x.pow(2).mean().sqrt() / noise.pow(2).mean().sqrt() / 10 ** (anchor.snr_db / 20)
        return x + scale * noise
    raise ValueError(f"unknown anchor kind {anchor.kind!r}; expected opus, silence or noise")


def _nan(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def score(reference: torch.Tensor, estimate: torch.Tensor, sample_rate: int, *,
          speech: bool, heavy: bool) -> dict[str, float]:
    """Metrics of one [C, T] clip: si_snr_db, mel_distance, stft_distance and, when `heavy`,
    visqol_audio and, on speech, pesq and stoi (NaN = skipped or not applicable)."""
    ref, est = reference.detach().float().cpu(), estimate.detach().float().cpu()
    out = {"si_snr_db": si_snr(ref[None], est[None]).item(),
           "mel_distance": mel_distance(ref, est, sample_rate),
           "stft_distance": stft_distance(ref, est)}
    if heavy:
        out["visqol_audio"] = _nan(opt.visqol(ref, est, sample_rate, "audio"))
        out["pesq"] = _nan(opt.pesq(ref, est, sample_rate)) if speech else float("nan")
        out["stoi"] = _nan(opt.stoi(ref, est, sample_rate)) if speech else float("nan")
    return out
