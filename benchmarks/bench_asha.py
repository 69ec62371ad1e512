"""ASHA against training every trial to completion, on the same fixed set of configs.

    python benchmarks/bench_asha.py [--trials 8] [--epochs 8] [--updates 4] [--concurrency 2]
        [--grace 1] [--reduction-factor 2] [--seed 0] [--data DIR] [--out PATH]

Samples `--trials` configs of the `debug` sweep's space (fixed seed, so both runs get the same
configs; every trial is seeded, so a config trains identically in both) and runs them twice:
with ASHA (time_attr = epoch) and with no early stopping. Reports total trial-epochs, wall time,
and whether ASHA's best config is the full run's best, else the gap between the full run's
metric for ASHA's pick and the true best. Targets (issue 6): ASHA <= 40% of the trial-epochs,
pick within 2% of the best. Joins RAY_ADDRESS, else starts a local Ray with `--cpus` logical
CPUs (fractional workers oversubscribe small machines, like the tests).
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

SPACE = {"adversarial.every": "choice [1, 2, 3, 4]", "losses.adv": "loguniform [0.5, 8]",
         "losses.feat": "loguniform [0.5, 8]"}


def sweep_file(folder: Path, name: str, args: argparse.Namespace, asha: bool) -> Path:
    """A sweep YAML of the `debug` codec: the same space, seed and trials for both runs."""
    sweep = {
        "name": name, "config": "debug",
        "overrides": {"optim.epochs": args.epochs, "optim.updates_per_epoch": args.updates,
                      "dataset.batch_size": 4, "dataset.valid.num_samples": 8,
                      "tracking.audio_every": 0, "checkpoint.keep_last": 1},
        "search": {"algorithm": "random", "num_samples": args.trials, "seed": args.seed,
                   "space": SPACE},
        "scheduler": {"type": "asha" if asha else "none", "metric": "valid_mel", "mode": "min",
                      "grace_period": args.grace, "reduction_factor": args.reduction_factor},
        "resources": {"workers": 1, "cpus_per_worker": 0.5},
        "max_concurrent_trials": args.concurrency,
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    return path


def _key(sampled: dict) -> tuple:
    """A config's identity across the two runs (trial ids differ)."""
    return tuple(sorted((k, round(float(v), 9)) for k, v in sampled.items()))


def run(name: str, folder: Path, data: str, args: argparse.Namespace, asha: bool) -> dict:
    """One sweep; its trial-epochs, wall time and per-config last metric."""
    from raycodec.tune import load_sweep, run_sweep

    spec = load_sweep(str(sweep_file(folder, name, args, asha)),
                      [f"dataset.path={data}", f"ray.storage_path={folder / 'results'}"])
    start = time.perf_counter()
    result = run_sweep(spec)
    wall = time.perf_counter() - start
    trials = [{"trial": r.trial_id, "sampled": {k: float(v) for k, v in r.sampled.items()},
               "epochs": r.epochs, "last": r.last, "status": r.status} for r in result.rows]
    return {"wall_s": round(wall, 1), "trial_epochs": sum(r.epochs for r in result.rows),
            "best": trials[0] if result.best else None, "trials": trials,
            "statuses": {s: sum(t["status"] == s for t in trials)
                         for s in sorted({t["status"] for t in trials})}}


def compare(asha: dict, full: dict) -> dict:
    """Epoch ratio, and how good ASHA's pick is when trained to the end (the full run's value)."""
    by_config = {_key(t["sampled"]): t for t in full["trials"]}
    if set(by_config) != {_key(t["sampled"]) for t in asha["trials"]}:
        raise RuntimeError("the two runs sampled different configs; rerun with the same seed")
    best = full["best"]
    picked = by_config[_key(asha["best"]["sampled"])]
    gap = (picked["last"] - best["last"]) / abs(best["last"])
    return {"epochs_ratio": asha["trial_epochs"] / full["trial_epochs"],
            "same_best": _key(asha["best"]["sampled"]) == _key(best["sampled"]),
            "picked_full_metric": picked["last"], "best_full_metric": best["last"],
            "gap_pct": 100 * gap}


def print_table(report: dict) -> None:
    """The comparison as a small table, then every config's metric in both runs."""
    asha, full, cmp_ = report["asha"], report["full"], report["comparison"]
    print(f"\n{'run':<6} {'trial-epochs':>12} {'wall (s)':>9} {'best valid_mel':>15}  statuses")
    for name, r in (("asha", asha), ("full", full)):
        print(f"{name:<6} {r['trial_epochs']:>12} {r['wall_s']:>9.1f} {r['best']['last']:>15.4f}"
              f"  {r['statuses']}")
    ok_epochs = cmp_["epochs_ratio"] <= 0.40
    ok_gap = cmp_["gap_pct"] <= 2.0
    print(f"ASHA trial-epochs / full: {100 * cmp_['epochs_ratio']:.0f}% (target <= 40%: "
          f"{'met' if ok_epochs else 'NOT met'}); ASHA's pick is the full run's best: "
          f"{cmp_['same_best']}; gap {cmp_['gap_pct']:.2f}% (target <= 2%: "
          f"{'met' if ok_gap else 'NOT met'}); wall time {asha['wall_s'] / full['wall_s']:.0%}")
    print(f"\n{'config (every, adv, feat)':<28} {'full: epochs':>12} {'last':>8} "
          f"{'asha: epochs':>13} {'last':>8}")
    asha_by = {_key(t["sampled"]): t for t in asha["trials"]}
    for t in sorted(full["trials"], key=lambda t: t["last"] if math.isfinite(t["last"]) else 1e9):
        a = asha_by[_key(t["sampled"])]
        s = t["sampled"]
        label = f"{s['adversarial.every']:.0f}, {s['losses.adv']:.2f}, {s['losses.feat']:.2f}"
        print(f"{label:<28} {t['epochs']:>12} {t['last']:>8.4f} {a['epochs']:>13} "
              f"{a['last']:>8.4f}")


def main() -> None:
    """Run both sweeps, print the comparison and write it as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--updates", type=int, default=4, help="updates per epoch")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--grace", type=int, default=1)
    parser.add_argument("--reduction-factor", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cpus", type=int, default=4, help="logical CPUs of a local Ray")
    parser.add_argument("--data", default=None, help="audio folder (default: generated)")
    parser.add_argument("--out", default="benchmarks/results/bench_asha.json")
    args = parser.parse_args()

    import ray

    from raycodec.data import generate_collection
    from raycodec.train.local_ray import start_local_ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if os.environ.get("RAY_ADDRESS"):
        ray.init()
    else:  # "local": never join another session's cluster on a shared machine
        start_local_ray(args.cpus, log_to_driver=False)
    with tempfile.TemporaryDirectory(prefix="bench_asha_") as tmp:
        folder = Path(tmp)
        data = args.data or str(folder / "audio")
        if args.data is None:
            generate_collection(data, minutes=0.5, seed=0, max_duration=6.0)
        asha = run("bench_asha", folder, data, args, asha=True)
        full = run("bench_full", folder, data, args, asha=False)
    report = {"config": {**vars(args), "machine": platform.machine(), "cpus": os.cpu_count(),
                         "ray": ray.__version__, "space": SPACE},
              "asha": asha, "full": full, "comparison": compare(asha, full)}
    print_table(report)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    ray.shutdown()


if __name__ == "__main__":
    main()
