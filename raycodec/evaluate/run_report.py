"""A training run's report a person can open: every kept checkpoint (and the run's starting
weights) measured on the same held-out clips as the Opus anchors, as a Markdown page with the
table, the learning-curve and rate-distortion PNGs, and reference / decoded WAVs per bandwidth.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf
import torch

from raycodec.codec.loading import load_codec
from raycodec.data.corpus import Clip, valid_clips
from raycodec.evaluate.anchors import Anchor, apply_anchor, default_anchors
from raycodec.evaluate.quality import Score, score_anchors, score_codec, with_heavy
from raycodec.evaluate.report import plot_curves, plot_rate_distortion, table, target_check
from raycodec.train.checkpoint import META_FILE


@dataclass(frozen=True)
class RunReport:
    """Where the report went and what it found."""

    path: Path
    final: list[Score]
    anchors: list[Score]
    targets: dict


def checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """(step, folder) of every checkpoint kept in a run folder, by step."""
    found = []
    for meta in Path(run_dir).glob(f"*/{META_FILE}"):
        found.append((int(json.loads(meta.read_text()).get("step", 0)), meta.parent))
    return sorted(found)


def heldout_clips(folder: str | Path, sample_rate: int, count: int) -> list[Clip]:
    """2-second clips from the held-out files under folder (speech under `speech/`)."""
    paths = sorted(p for p in Path(folder).rglob("*") if p.suffix in (".wav", ".flac", ".ogg"))
    return valid_clips(paths, sample_rate, 2.0, count)


def _write_audio(out: Path, clips: list[Clip], model, bandwidths: list[float],
                 anchor: Anchor) -> list[str]:
    lines, sr = [], model.sample_rate
    for clip in clips:
        names = {"reference": clip.audio, f"{anchor.name}": apply_anchor(anchor, clip.audio, sr)}
        with torch.no_grad():
            for bw in bandwidths:
                model.set_target_bandwidth(bw)
                names[f"codec_{bw:g}kbps"] = model(clip.audio[None]).x[0]
        links = []
        for name, audio in names.items():
            rel = f"audio/{clip.name}_{name}.wav"
            sf.write(out / rel, audio.detach().float().T.numpy(), sr, subtype="PCM_16")
            links.append(f"[{name}]({rel})")
        lines.append(f"- {clip.name} ({'speech' if clip.speech else 'music/effects'}): "
                     + " · ".join(links))
    return lines


def write_run_report(run_dir: str | Path, heldout: str | Path, out_dir: str | Path, *,
                     start: str | Path | None = None, clips: int = 8, heavy_clips: int = 2,
                     aim_command: str = "", title: str = "raycodec run report") -> RunReport:
    """Measure the run's checkpoints (and `start`, at step 0) and write out_dir/report.md."""
    out = Path(out_dir)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    kept = checkpoints(run_dir)
    if not kept:
        raise ValueError(f"no checkpoint in {run_dir}")
    final_codec = load_codec(kept[-1][1])
    sr = final_codec.model.sample_rate
    bandwidths = [float(b) for b in final_codec.model.target_bandwidths]
    held = heldout_clips(heldout, sr, clips)
    points = ([(0, Path(start))] if start else []) + kept
    curve = []
    for step, path in points:
        curve += score_codec(load_codec(path).model, held, bandwidths, step=step)
    final = with_heavy(curve[-len(bandwidths):],
                       score_codec(final_codec.model, held[:heavy_clips], bandwidths,
                                   heavy=True, step=kept[-1][0]))
    anchors = default_anchors()
    anchor_scores = with_heavy(score_anchors(anchors, held, sr),
                               score_anchors(anchors, held[:heavy_clips], sr, heavy=True))
    targets = target_check(final, anchor_scores, bandwidths)
    plot_curves(curve, anchor_scores, out / "learning_curves.png",
                title="held-out clips vs fine-tuning step (step 0: the starting weights)")
    plot_rate_distortion(final, anchor_scores, out / "rate_distortion.png")
    speech = next((c for c in held if c.speech), held[0])
    music = next((c for c in held if not c.speech), held[-1])
    audio = _write_audio(out, [speech, music], final_codec.model, bandwidths, anchors[0])

    start_mel = {s.kbps: s.metrics["mel_distance"] for s in curve[:len(bandwidths)]}
    gap = targets["gap_to_reference"]
    verdict = ("at or below Opus 6 kbps" if targets["beats_reference"]
               else f"{gap:+.3f} above Opus 6 kbps (not reached)")
    lines = [
        f"# {title}", "",
        f"Run folder `{run_dir}`; final checkpoint `{kept[-1][1]}` (step {kept[-1][0]}); "
        f"{len(held)} held-out clips of 2 s ({sum(c.speech for c in held)} speech), never seen "
        "in training. Opus: `opusenc --hard-cbr` on the same clips.", "",
        "## Targets", "",
        f"- distances ordered by bitrate (mel {', '.join(f'{k}: {v:.3f}' for k, v in targets['mel_by_kbps'].items())}): "  # noqa: E501
        f"**{'yes' if targets['ordered_by_bitrate'] else 'no'}**",
        f"- 6 kbps mel distance {targets['mel_6kbps']:.3f} vs Opus 6 kbps "
        f"{targets['mel_opus_6kbps']:.3f}: **{verdict}**",
        "- learning: mel distance at the start "
        + ", ".join(f"{k:g} kbps {v:.3f}" for k, v in start_mel.items()) + "; at the end "
        + ", ".join(f"{s.kbps:g} kbps {s.metrics['mel_distance']:.3f}" for s in final), "",
        "## Table", "", table(final + anchor_scores), "",
        f"ViSQOL (audio mode), PESQ and STOI on {heavy_clips} clip(s) (PESQ/STOI: speech only); "
        "the other metrics on all clips.", "",
        "## Figures", "", "![learning curves](learning_curves.png)", "",
        "![rate-distortion](rate_distortion.png)", "",
        "## Audio (final checkpoint)", "", *audio, "",
    ]
    if aim_command:
        lines += ["## Aim", "", f"`{aim_command}`", ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    (out / "report.json").write_text(json.dumps({
        "targets": {k: None if isinstance(v, float) and math.isnan(v) else v
                    for k, v in targets.items()},
        "final": [s.to_json() for s in final], "anchors": [s.to_json() for s in anchor_scores],
        "curve": [s.to_json() for s in curve]}, indent=2))
    return RunReport(path, final, anchor_scores, targets)
