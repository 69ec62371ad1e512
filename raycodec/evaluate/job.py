"""The evaluation job: Ray Data batch inference over a manifest, summarised per bandwidth."""

from __future__ import annotations

import math
from pathlib import Path

import pyarrow as pa

from raycodec.evaluate.evaluator import METRICS, CodecEvaluator
from raycodec.tracking.names import metric_key


def summarise(rows: list[dict], bandwidths: list[float]) -> list[dict]:
    """Mean of each metric per bandwidth over clips; None where every clip skipped it."""
    table = []
    for bw in bandwidths:
        mine = [r for r in rows if math.isclose(r["bandwidth"], bw)]
        entry = {"bandwidth": bw, "clips": len(mine)}
        for key in METRICS:
            vals = [r[key] for r in mine if not math.isnan(r[key])]
            entry[key] = sum(vals) / len(vals) if vals else None
        table.append(entry)
    return table


def to_markdown(table: list[dict]) -> str:
    """A Markdown table; skipped metrics are shown as `skipped`."""
    cols = ["bandwidth", "clips", *METRICS]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in table:
        cells = ["skipped" if row[c] is None else f"{row[c]:.4g}" for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def to_csv(table: list[dict], path: Path) -> None:
    """Write the summary as CSV (empty cells for skipped metrics)."""
    import csv

    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["bandwidth", "clips", *METRICS])
        writer.writeheader()
        writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in table)


def _log_to_aim(table: list[dict], repo: str, signature: str, checkpoint: str) -> None:
    from raycodec.tracking import AimTracker

    tracker = AimTracker(repo, "evaluate", signature)
    try:
        tracker.set("checkpoint", checkpoint)
        tracker.set("train_signature", signature)
        # Per-bandwidth keys (`mel_distance_6kbps`), as training's validation and background
        # evaluation log them, so that one name means one thing in every Aim run.
        tracker.log_metrics({metric_key(k, row["bandwidth"]): row[k] for row in table
                             for k in METRICS if row[k] is not None}, step=0, subset="evaluate")
    finally:
        tracker.close()


def run_evaluation(checkpoint: str, manifest: str | pa.Table, bandwidths: list[float], out_dir: str,
                   preset: str = "encodec_24khz", concurrency: int = 1, batch_size: int = 4,
                   max_seconds: float | None = None, speech: bool = True,
                   aim_repo: str | None = None, use_gpu: bool = False) -> list[dict]:
    """Evaluate `checkpoint` on every file of `manifest` (a Parquet path, or its table as
    `raycodec.train.inputs.open_manifest` read it); writes CSV/Markdown, logs to Aim."""
    import ray

    from raycodec.codec.loading import load_codec
    from raycodec.data import read_manifest

    codec = load_codec(checkpoint, preset)  # fail early, and learn the run signature
    for bw in bandwidths:
        codec.model.quantizer.n_q_for_bandwidth(bw)  # ValueError for unreachable bandwidths
    paths = read_manifest(manifest).column("path").to_pylist()
    ds = ray.data.from_items([{"path": p} for p in paths])
    results = ds.map_batches(
        CodecEvaluator, batch_size=batch_size, concurrency=concurrency,
        num_gpus=1 if use_gpu else 0,
        fn_constructor_kwargs={"checkpoint": codec.source, "preset": preset,
                               "bandwidths": bandwidths, "max_seconds": max_seconds,
                               "speech": speech})
    rows = results.take_all()
    table = summarise(rows, bandwidths)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    to_csv(table, out / "summary.csv")
    (out / "summary.md").write_text(to_markdown(table))
    with open(out / "clips.csv", "w") as f:  # per-clip rows for closer looks
        f.write(",".join(rows[0]) + "\n" if rows else "")
        for r in rows:
            f.write(",".join(str(v) for v in r.values()) + "\n")
    if aim_repo:
        _log_to_aim(table, aim_repo, codec.signature or Path(codec.source).stem, codec.source)
    return table
