"""Quality report: a bitrate x codec x metric table and matplotlib figures (learning curves
with a line per bandwidth, rate-distortion), with the anchors drawn in the same axes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from raycodec.evaluate.quality import LOWER_IS_BETTER, METRICS, Score

PLOTTED = ("mel_distance", "stft_distance", "si_snr_db")
LABELS = {"si_snr_db": "SI-SNR (dB, higher is better)",
          "mel_distance": "mel distance (lower is better)",
          "stft_distance": "STFT distance (lower is better)",
          "visqol_audio": "ViSQOL (audio mode)", "pesq": "PESQ", "stoi": "STOI",
          "codebook_usage": "codebook usage"}


def _fmt(v: float | None) -> str:
    return "-" if v is None or math.isnan(v) else f"{v:.3f}"


def table(scores: Sequence[Score], metrics: Sequence[str] = METRICS) -> str:
    """Markdown table, one row per (bitrate, codec), sorted by bitrate; reference lines last."""
    shown = [m for m in metrics if any(not math.isnan(s.metrics.get(m, math.nan))
                                       for s in scores)]
    head = "| kbps | codec | " + " | ".join(shown) + " |"
    lines = [head, "|" + "---|" * (len(shown) + 2)]
    ordered = sorted(scores, key=lambda s: (s.kbps is None, s.kbps or 0.0, s.codec))
    for s in ordered:
        kbps = "-" if s.kbps is None else f"{s.kbps:g}"
        cells = " | ".join(_fmt(s.metrics.get(m)) for m in shown)
        lines.append(f"| {kbps} | {s.codec} | {cells} |")
    return "\n".join(lines)


def _plt():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on training machines
    import matplotlib.pyplot as plt

    return plt


def _anchor_lines(ax, anchors: Sequence[Score], metric: str) -> None:
    styles = {"silence": ("black", ":"), "noise": ("grey", "-.")}
    opus_colors = iter(("tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive"))
    for a in anchors:
        v = a.metrics.get(metric, math.nan)
        if math.isnan(v):
            continue
        color, style = styles.get(a.codec.split("_")[0], (None, "--"))
        color = color or next(opus_colors, None)
        ax.axhline(v, linestyle=style, color=color, linewidth=1, label=a.codec)


def plot_curves(curve: Sequence[Score], anchors: Sequence[Score], path: str | Path,
                metrics: Sequence[str] = PLOTTED, title: str = "") -> Path:
    """Metric vs training step, one line per bandwidth, anchors as horizontal lines."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 4.2), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for kbps in sorted({s.kbps for s in curve}):
            points = sorted((s.step, s.metrics.get(metric, math.nan)) for s in curve
                            if s.kbps == kbps)
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3,
                    label=f"codec {kbps:g} kbps")
        _anchor_lines(ax, anchors, metric)
        ax.set_xlabel("training step")
        ax.set_ylabel(LABELS.get(metric, metric))
        if metric in LOWER_IS_BETTER:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    return _save(plt, fig, axes, title or "learning curves on held-out clips", path)


def _save(plt, fig, axes, title: str, path: str | Path) -> Path:
    """Legend, title and layout of a figure grid, written as a PNG and closed."""
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_rate_distortion(final: Sequence[Score], anchors: Sequence[Score], path: str | Path,
                         metrics: Sequence[str] = PLOTTED, title: str = "") -> Path:
    """Metric vs kbps for the codec and Opus; silence and noise as horizontal lines."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 4.2), squeeze=False)
    groups: dict[str, list[Score]] = {}
    for s in list(final) + [a for a in anchors if a.kbps is not None]:
        groups.setdefault(s.codec.split("_")[0], []).append(s)
    for ax, metric in zip(axes[0], metrics):
        for name, scores in groups.items():
            pts = sorted((s.kbps, s.metrics.get(metric, math.nan)) for s in scores)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=name)
        _anchor_lines(ax, [a for a in anchors if a.kbps is None], metric)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("bitrate (kbps)")
        ax.set_ylabel(LABELS.get(metric, metric))
        ax.grid(alpha=0.3)
    return _save(plt, fig, axes, title or "rate-distortion on held-out clips", path)


def target_check(final: Sequence[Score], anchors: Sequence[Score], bandwidths: Sequence[float],
                 reference: str = "opus_6kbps", at: float = 6.0) -> dict:
    """The benchmark's targets: mel distance ordered by bitrate, and at `at` kbps at or below
    the `reference` anchor. Returns the numbers and whether each target holds."""
    mel = {s.kbps: s.metrics["mel_distance"] for s in final}
    ordered = all(mel[a] > mel[b] for a, b in zip(bandwidths, bandwidths[1:]))
    ref = next((a.metrics["mel_distance"] for a in anchors if a.codec == reference), math.nan)
    ours = mel.get(at, math.nan)
    return {"mel_by_kbps": {f"{k:g}": v for k, v in sorted(mel.items())},
            "ordered_by_bitrate": ordered, f"mel_{at:g}kbps": ours, f"mel_{reference}": ref,
            "gap_to_reference": ours - ref, "beats_reference": bool(ours <= ref)}


def extrapolate_steps(curve: Sequence[Score], kbps: float, target: float,
                      metric: str = "mel_distance") -> float | None:
    """Steps at which `metric` at `kbps` would reach `target`, from a power law fitted to the
    second half of the measured curve (all of it below 4 points; None when it does not fall)."""
    import numpy as np

    pts = sorted((s.step, s.metrics[metric]) for s in curve
                 if s.kbps == kbps and s.step and not math.isnan(s.metrics.get(metric, math.nan)))
    pts = pts[len(pts) // 2:] if len(pts) >= 4 else pts  # the late, steadier part
    if len(pts) < 2:
        return None
    slope, icpt = np.polyfit(np.log([p[0] for p in pts]), np.log([p[1] for p in pts]), 1)
    if slope >= 0:
        return None
    return float(math.exp((math.log(target) - icpt) / slope))
