"""Random search with ASHA against PBT and PB2: best held-out mel distance against compute.

    python benchmarks/bench_pbt.py [--population 4] [--asha-trials 8] [--epochs 4] [--updates 3]
        [--interval 1] [--concurrency 4] [--seed 0] [--cpus 4] [--data DIR] [--out PATH]

The three sweeps search the same space of the `debug` codec (`losses.adv`, `losses.feat`,
`optim.lr`) with the same seed, so PBT and PB2 start from the same population, and ASHA's first
`--population` trials are that population too (ASHA gets `--asha-trials`, so that its
early-stopped budget comes close to the others'). Compute is counted in trial-epochs (one
validation report each, restarts included); the figure shows the best `valid_mel` (validation
files, not trained on) seen so far against trial-epochs, a line per scheduler. The comparison is
read at the smallest total budget of the three. Joins RAY_ADDRESS, else starts a local Ray.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import tempfile
import time
from pathlib import Path

import yaml

SPACE = {"losses.adv": "loguniform [0.5, 8]", "losses.feat": "loguniform [0.5, 8]",
         "optim.lr": "loguniform [1.0e-4, 3.0e-3]"}
SCHEDULERS = ("asha", "pbt", "pb2")


def sweep_file(folder: Path, kind: str, args: argparse.Namespace) -> Path:
    """The sweep YAML of one scheduler: same base, space, seed and resources for all three."""
    scheduler: dict = {"type": kind, "metric": "valid_mel", "mode": "min"}
    if kind == "asha":
        scheduler.update(grace_period=1, reduction_factor=2)
    else:
        scheduler.update(perturbation_interval=args.interval, quantile_fraction=0.25,
                         resample_probability=0.25)
    sweep = {
        "name": f"bench_{kind}", "config": "debug",
        "overrides": {"optim.epochs": args.epochs, "optim.updates_per_epoch": args.updates,
                      "dataset.batch_size": 4, "dataset.valid.num_samples": 8,
                      "tracking.audio_every": 0},
        "search": {"algorithm": "random", "seed": args.seed, "space": SPACE,
                   "num_samples": args.asha_trials if kind == "asha" else args.population},
        "scheduler": scheduler,
        "resources": {"workers": 1, "cpus_per_worker": 0.5},
        "max_concurrent_trials": args.concurrency,
    }
    path = folder / f"{kind}.yaml"
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    return path


def curve(sweep_dir: str) -> list[tuple[int, float]]:
    """(trial-epochs so far, best valid_mel so far) after every report, in time order."""
    from ray.tune import ExperimentAnalysis

    rows = []
    for df in ExperimentAnalysis(sweep_dir).trial_dataframes.values():
        if df is None or "valid_mel" not in df:
            continue
        rows += list(zip(df["timestamp"], df.get("time_total_s", df["timestamp"]),
                         df["valid_mel"]))
    best, out = math.inf, []
    for i, (_, _, value) in enumerate(sorted(rows, key=lambda r: (r[0], r[1])), start=1):
        if math.isfinite(value):
            best = min(best, float(value))
        out.append((i, best))
    return out


def run(kind: str, folder: Path, data: str, args: argparse.Namespace) -> dict:
    """One sweep: its curve, wall time, final table and best trial."""
    from raycodec.tune import load_sweep, run_sweep

    spec = load_sweep(str(sweep_file(folder, kind, args)),
                      [f"dataset.path={data}", f"ray.storage_path={folder / 'results'}"])
    start = time.perf_counter()
    result = run_sweep(spec)
    wall = time.perf_counter() - start
    points = curve(result.sweep_dir)
    best = result.best
    return {"wall_s": round(wall, 1), "trial_epochs": len(points), "curve": points,
            "best_so_far": points[-1][1] if points else math.nan,
            "winner": {"trial": best.trial_id, "last": best.last,
                       "values": {k: float(v) for k, v in best.sampled.items()}} if best else None}


def at_budget(points: list[tuple[int, float]], budget: int) -> float:
    """The best value seen within `budget` trial-epochs."""
    seen = [b for n, b in points if n <= budget]
    return seen[-1] if seen else math.nan


def print_table(report: dict) -> None:
    """Best valid_mel at the common budget and at each run's end."""
    budget = report["common_budget"]
    print(f"\n{'scheduler':<10} {'trial-epochs':>12} {'wall (s)':>9} "
          f"{f'best @ {budget}':>12} {'best @ end':>11}")
    for kind in SCHEDULERS:
        r = report[kind]
        print(f"{kind:<10} {r['trial_epochs']:>12} {r['wall_s']:>9.1f} "
              f"{r['best_at_budget']:>12.4f} {r['best_so_far']:>11.4f}")
    asha = report["asha"]["best_at_budget"]
    for kind in ("pbt", "pb2"):
        gain = 100 * (asha - report[kind]["best_at_budget"]) / abs(asha)
        print(f"{kind} vs ASHA at {budget} trial-epochs: {gain:+.2f}% lower valid_mel "
              f"({'better' if gain > 0 else 'not better'})")


def plot(report: dict, path: Path) -> None:
    """Best-so-far valid_mel against trial-epochs, a line per scheduler."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no figure")
        return
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for kind in SCHEDULERS:
        xs, ys = zip(*report[kind]["curve"]) if report[kind]["curve"] else ((), ())
        ax.step(xs, ys, where="post", label=kind)
    ax.axvline(report["common_budget"], color="grey", lw=0.8, ls="--")
    ax.set_xlabel("trial-epochs (compute)")
    ax.set_ylabel("best valid_mel so far")
    ax.set_title("debug codec: random search + ASHA vs PBT vs PB2")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


def main() -> None:
    """Run the three sweeps, print the comparison, write JSON and the PNG."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--population", type=int, default=4)
    parser.add_argument("--asha-trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--updates", type=int, default=3, help="updates per epoch")
    parser.add_argument("--interval", type=int, default=1, help="perturbation interval")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cpus", type=int, default=4, help="logical CPUs of a local Ray")
    parser.add_argument("--data", default=None, help="audio folder (default: generated)")
    parser.add_argument("--out", default="benchmarks/results/bench_pbt.json")
    args = parser.parse_args()

    import ray

    from raycodec.data import generate_collection
    from raycodec.train.local_ray import start_local_ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if os.environ.get("RAY_ADDRESS"):
        ray.init()
    else:  # "local": never join another session's cluster on a shared machine
        start_local_ray(args.cpus, log_to_driver=False)
    with tempfile.TemporaryDirectory(prefix="bench_pbt_") as tmp:
        folder = Path(tmp)
        data = args.data or str(folder / "audio")
        if args.data is None:
            generate_collection(data, minutes=0.5, seed=0, max_duration=6.0)
        report = {kind: run(kind, folder, data, args) for kind in SCHEDULERS}
    budget = min(report[k]["trial_epochs"] for k in SCHEDULERS)
    for kind in SCHEDULERS:
        report[kind]["best_at_budget"] = at_budget(report[kind]["curve"], budget)
    report.update(common_budget=budget, config={
        **vars(args), "machine": platform.machine(), "cpus": os.cpu_count(),
        "ray": ray.__version__, "space": SPACE})
    print_table(report)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    plot(report, out.with_suffix(".png"))
    print(f"wrote {out}")
    ray.shutdown()


if __name__ == "__main__":
    main()
