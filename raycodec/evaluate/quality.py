"""Codec and anchor quality on held-out clips: one `Score` per (codec, bitrate), clip means."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from raycodec.data.corpus import Clip
from raycodec.evaluate.anchors import HEAVY, Anchor, apply_anchor, score

METRICS = ("si_snr_db", "mel_distance", "stft_distance", "visqol_audio", "pesq", "stoi",
           "codebook_usage")
LOWER_IS_BETTER = {"mel_distance", "stft_distance"}


@dataclass
class Score:
    """Mean metrics of one codec at one bitrate (kbps None: a reference line, no bitrate)."""

    codec: str
    kbps: float | None
    metrics: dict[str, float] = field(default_factory=dict)
    step: int | None = None

    def to_json(self) -> dict:
        """JSON-safe dict (NaN -> None)."""
        out = asdict(self)
        out["metrics"] = {k: None if math.isnan(v) else v for k, v in self.metrics.items()}
        return out


def _mean(rows: list[dict[str, float]]) -> dict[str, float]:
    keys = sorted({k for r in rows for k in r})
    out = {}
    for k in keys:
        values = np.array([r.get(k, math.nan) for r in rows], dtype=np.float64)
        out[k] = float(np.nanmean(values)) if np.isfinite(values).any() else math.nan
    return out


@torch.no_grad()
def score_codec(model, clips: list[Clip], bandwidths: list[float], *, heavy: bool = False,
                name: str = "codec", step: int | None = None) -> list[Score]:
    """Encode/decode every clip at every bandwidth with `model` (eval mode) and score it."""
    model.eval()
    device = next(model.parameters()).device
    scores = []
    for bw in bandwidths:
        model.set_target_bandwidth(bw)
        rows = []
        for clip in clips:
            res = model(clip.audio[None].to(device))
            row = score(clip.audio, res.x[0].cpu(), model.sample_rate, speech=clip.speech,
                        heavy=heavy)
            row["codebook_usage"] = float(res.metrics["codebook_usage"])
            rows.append(row)
        scores.append(Score(name, float(bw), _mean(rows), step))
    return scores


def score_anchors(anchors: list[Anchor], clips: list[Clip], sample_rate: int, *,
                  heavy: bool = False) -> list[Score]:
    """Score every anchor on the same clips (noise seeded per clip)."""
    scores = []
    for anchor in anchors:
        rows = [score(c.audio, apply_anchor(anchor, c.audio, sample_rate, seed=i), sample_rate,
                      speech=c.speech, heavy=heavy) for i, c in enumerate(clips)]
        scores.append(Score(anchor.name, anchor.kbps, _mean(rows)))
    return scores


def with_heavy(light: list[Score], heavy: list[Score]) -> list[Score]:
    """`light` scores (all clips) with ViSQOL/PESQ/STOI taken from `heavy` (a clip subset)."""
    by_key = {(s.codec, s.kbps): s for s in heavy}
    out = []
    for s in light:
        extra = by_key.get((s.codec, s.kbps))
        metrics = dict(s.metrics)
        if extra is not None:
            metrics.update({k: v for k, v in extra.metrics.items() if k in HEAVY})
        out.append(Score(s.codec, s.kbps, metrics, s.step))
    return out
