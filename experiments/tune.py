"""Sweep training hyperparameters with Ray Tune + ASHA:
`python experiments/tune.py --sweep NAME_OR_FILE [key=value ...] [--resume]`.

NAME is a file of experiments/sweeps/ (`debug`, `adv_balance`); key=value overrides the trials'
training config (`dataset.manifest=...`, `ray.storage_path=...`), and `sweep.<key>=value` the sweep
file itself (`sweep.search.num_samples=16`). Joins the cluster of RAY_ADDRESS, else starts a local
Ray. Ctrl-C stops the sweep; the same command with --resume continues it.
"""

import argparse
import sys

from raycodec.config import ConfigError
from raycodec.train.job import JobError
from raycodec.tune import SweepError, load_sweep, run_sweep, summary


def build_parser() -> argparse.ArgumentParser:
    """--sweep, --resume, --print-sweep and key=value overrides."""
    parser = argparse.ArgumentParser(
        prog="tune.py", description=__doc__.split("\n\n")[0],
        epilog="Example: python experiments/tune.py --sweep debug "
               "dataset.path=data/demo/audio ray.storage_path=results")
    parser.add_argument("--sweep", required=True, metavar="NAME_OR_FILE",
                        help="a sweep of experiments/sweeps/ or a YAML file")
    parser.add_argument("--resume", action="store_true",
                        help="continue the interrupted sweep of the same name (finished trials "
                             "are not run again; one that never started starts); on a finished "
                             "sweep, rebuild its report")
    parser.add_argument("--print-sweep", action="store_true",
                        help="validate the sweep, print its settings and exit")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="training config overrides, or sweep.<key>=value")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Validate, run, print the results table; bad input exits 2 with a one-line message."""
    parser = build_parser()
    args = parser.parse_intermixed_args(argv)
    try:
        spec = load_sweep(args.sweep, args.overrides)
    except (SweepError, ConfigError) as exc:
        parser.error(str(exc))  # exits 2
    if args.print_sweep:
        import yaml

        sys.stdout.write(yaml.safe_dump({k: v for k, v in spec.to_dict().items()
                                         if k != "base_text"}, sort_keys=False))
        return 0
    try:
        result = run_sweep(spec, resume=args.resume)
    except (SweepError, ConfigError, JobError) as exc:
        print(f"tune.py: error: {exc}", file=sys.stderr)
        return 2
    print(summary(result), flush=True)
    return 130 if result.interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
