"""The end of a sweep: one row per trial, as a printed table, CSV, Markdown and the best config.

Everything is read back from the sweep folder (Tune's experiment state and per-trial results),
so a report can be rebuilt for any sweep, finished or interrupted.
"""

from __future__ import annotations

import csv
import math
import os
import re
from dataclasses import dataclass
from typing import Any

from raycodec.config import format_config
from raycodec.tune.spec import plain_value
from raycodec.tune.trial import ERRORED, SweepContext, trial_status

RESULTS_CSV, RESULTS_MD, BEST_CONFIG = "results.csv", "results.md", "best_config.yaml"
_EXCEPTION_LINE = re.compile(r"^\s*(\w+\.)*\w+(Error|Exception): .+")


@dataclass
class TrialRow:
    """What a sweep's table shows of one trial."""

    trial_id: str
    sampled: dict[str, Any]
    best: float
    last: float
    epochs: int
    status: str
    error: str = ""


def _error_message(trial) -> str:
    """The root exception line of an errored trial (e.g. the divergence message)."""
    # The copy synced to the sweep folder outlives the Ray session's staging copy.
    name = trial.run_metadata.error_filename
    candidates = [os.path.join(trial.path, name) if name and trial.path else None,
                  trial.error_file]
    path = next((p for p in candidates if p and os.path.exists(p)), None)
    if path is None:
        return ""
    lines = [ln.strip() for ln in open(path, errors="replace").read().splitlines() if ln.strip()]
    raised = [ln for ln in lines if _EXCEPTION_LINE.match(ln) and "TrainingFailedError" not in ln]
    return (raised[-1] if raised else lines[0] if lines else "")[:200]


def _metric_values(df, metric: str) -> list[float]:
    if df is None or df.empty or metric not in df:
        return []
    return [float(v) for v in df[metric].tolist()]


def collect(sweep_dir: str, context: SweepContext) -> list[TrialRow]:
    """One row per trial, best first (by the last reported metric; errored trials last)."""
    from ray.tune import ExperimentAnalysis

    analysis = ExperimentAnalysis(sweep_dir)
    spec = context.spec
    metric, sign = spec.metric, 1.0 if spec.mode == "min" else -1.0
    rows = []
    for trial in analysis.trials:
        df = analysis.trial_dataframes.get(trial.trial_id)
        values = _metric_values(df, metric)
        finite = [v for v in values if math.isfinite(v)]
        best = min(finite, key=lambda v: sign * v) if finite else math.nan
        epochs = int(df["epoch"].max()) if df is not None and "epoch" in df else 0
        status = trial_status(trial.status, trial.last_result, spec.max_t)
        rows.append(TrialRow(trial.trial_id, dict(trial.config), best,
                             values[-1] if values else math.nan, epochs, status,
                             _error_message(trial) if status == ERRORED else ""))

    def rank(row: TrialRow) -> tuple:
        usable = row.status != ERRORED and math.isfinite(row.last)
        return (not usable, sign * row.last if usable else 0.0, -row.epochs, row.trial_id)

    return sorted(rows, key=rank)


def best_row(rows: list[TrialRow]) -> TrialRow | None:
    """The best trial that did not error (rows come sorted by `collect`)."""
    usable = [r for r in rows if r.status != ERRORED and math.isfinite(r.last)]
    return usable[0] if usable else None


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def table(rows: list[TrialRow], context: SweepContext) -> tuple[list[str], list[list[str]]]:
    """(header, cells) of the results table."""
    keys = [p.key for p in context.spec.params]
    metric = context.spec.metric
    header = ["trial", *keys, f"best_{metric}", f"last_{metric}", "epochs", "status"]
    cells = [[r.trial_id, *[_fmt(plain_value(r.sampled.get(k, ""))) for k in keys], _fmt(r.best),
              _fmt(r.last), str(r.epochs), r.status] for r in rows]
    if context.spec.population_based:  # the values are the last ones: show the clones too
        from raycodec.tune.lineage import read_lineage

        lineages = [read_lineage(context.trials_dir, r.trial_id) for r in rows]
        header.append("lineage")
        for row, lineage in zip(cells, lineages):
            row.append(lineage.describe() if lineage else "-")
    return header, cells


def format_table(header: list[str], cells: list[list[str]]) -> str:
    """A plain-text table with aligned columns."""
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h)
              for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def markdown_table(header: list[str], cells: list[list[str]]) -> str:
    """The same table in Markdown."""
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(out) + "\n"


def write_reports(sweep_dir: str, rows: list[TrialRow], context: SweepContext) -> dict[str, str]:
    """Write results.csv, results.md and best_config.yaml; returns their paths by kind."""
    header, cells = table(rows, context)
    paths = {"csv": os.path.join(sweep_dir, RESULTS_CSV),
             "markdown": os.path.join(sweep_dir, RESULTS_MD)}
    with open(paths["csv"], "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*header, "error"])
        writer.writerows([*row, r.error] for row, r in zip(cells, rows))
    errors = [f"- `{r.trial_id}`: {r.error}" for r in rows if r.error]
    with open(paths["markdown"], "w") as f:
        f.write(f"# Sweep `{context.spec.name}`\n\n"
                f"Ranked by the last reported `{context.spec.metric}` ({context.spec.mode}).\n\n")
        f.write(markdown_table(header, cells))
        if errors:
            f.write("\nErrored trials:\n\n" + "\n".join(errors) + "\n")
    best = best_row(rows)
    if best is not None:
        paths["best_config"] = write_best_config(sweep_dir, best, context)
    return paths


def write_best_config(sweep_dir: str, best: TrialRow, context: SweepContext) -> str:
    """The best trial's full config, loadable by `train.py --config FILE`."""
    sampled = dict(best.sampled)
    if context.spec.population_based:  # its hyperparameter history, to replay from scratch
        from raycodec.tune.lineage import read_lineage, schedule_override
        from raycodec.tune.pbt import trial_values

        lineage = read_lineage(context.trials_dir, best.trial_id)
        sampled = trial_values(sampled, context.spec)
        if lineage is not None:
            sampled["schedule"] = schedule_override(lineage)
    cfg = context.trial_config(sampled, experiment=False)
    path = os.path.join(sweep_dir, BEST_CONFIG)
    run_dir = os.path.join(context.trials_dir, best.trial_id)
    with open(path, "w") as f:
        f.write(f"# Best trial {best.trial_id} of sweep {context.spec.name}: "
                f"{context.spec.metric} {_fmt(best.last)} after {best.epochs} epochs "
                f"({best.status}); checkpoints in {run_dir}\n"
                f"# Train it: python experiments/train.py --config {path}\n")
        f.write(format_config(cfg))
    return path
