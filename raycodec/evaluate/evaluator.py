"""Per-clip codec evaluation, run as a Ray Data actor (the model is loaded once per actor)."""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from raycodec.codec.audio import AudioSource
from raycodec.codec.format import code_bits
from raycodec.codec.loading import load_codec
from raycodec.metrics import mel_distance, si_snr, stft_distance
from raycodec.metrics import optional as opt

METRICS = ("si_snr_db", "mel_distance", "stft_distance", "visqol_audio", "visqol_speech", "pesq",
           "stoi", "bitrate_kbps", "encode_rtf", "decode_rtf")


def clip_metrics(model, x: torch.Tensor, bandwidth: float, speech: bool = True) -> dict:
    """Encode/decode one clip [C, T] at `bandwidth` and measure it (None = metric skipped)."""
    sr = model.sample_rate
    seconds = x.shape[-1] / sr
    with torch.inference_mode():
        t0 = time.perf_counter()
        codes, scale = model.encode(x[None], bandwidth)
        t1 = time.perf_counter()
        y = model.decode(codes, scale, length=x.shape[-1])[0]
        t2 = time.perf_counter()
    x, y = x.cpu(), y.float().cpu()
    # The real bitrate: the bits an .rcdc payload needs for these codes (plus scales, if any).
    bits = codes.shape[1] * codes.shape[2] * code_bits(model.quantizer.bins)
    bits += 0 if scale is None else 32 * scale.numel()
    return {
        "si_snr_db": si_snr(x[None], y[None]).item(),
        "mel_distance": mel_distance(x, y, sr),
        "stft_distance": stft_distance(x, y),
        "visqol_audio": opt.visqol(x, y, sr, "audio"),
        "visqol_speech": opt.visqol(x, y, sr, "speech") if speech else None,
        "pesq": opt.pesq(x, y, sr) if speech else None,
        "stoi": opt.stoi(x, y, sr) if speech else None,
        "bitrate_kbps": bits / seconds / 1000,
        "encode_rtf": (t1 - t0) / seconds,
        "decode_rtf": (t2 - t1) / seconds,
    }


class CodecEvaluator:
    """Ray Data `map_batches` callable class: rows of manifest paths -> rows of metrics."""

    def __init__(self, checkpoint: str, preset: str, bandwidths: list[float],
                 max_seconds: float | None = None, speech: bool = True):
        self.codec = load_codec(checkpoint, preset)
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model = self.codec.model.to(self.device)
        self.bandwidths, self.max_seconds, self.speech = bandwidths, max_seconds, speech

    def _read(self, path: str) -> torch.Tensor:
        m = self.model
        with AudioSource(path, m.sample_rate, m.channels) as src:
            n = src.length
            if self.max_seconds:
                n = min(n, math.ceil(self.max_seconds * m.sample_rate))
            return src.read(0, n)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        rows: dict[str, list] = {"path": [], "bandwidth": [], "duration": [],
                                 **{k: [] for k in METRICS}}
        for path in batch["path"]:
            x = self._read(str(path)).to(self.device)
            for bw in self.bandwidths:
                values = clip_metrics(self.model, x, bw, self.speech)
                rows["path"].append(str(path))
                rows["bandwidth"].append(float(bw))
                rows["duration"].append(x.shape[-1] / self.model.sample_rate)
                for key in METRICS:
                    v = values[key]
                    rows[key].append(float("nan") if v is None else float(v))
        return rows
