"""Evaluate a codec checkpoint on a manifest with Ray Data batch inference.

    python experiments/evaluate.py --checkpoint CK --data MANIFEST [--bandwidths 1.5 3 6 12 24]

Writes summary.csv, summary.md and clips.csv to --out and logs to Aim (experiment `evaluate`).
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, start/connect Ray, run the evaluation, print the Markdown table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True,
                   help="run folder, checkpoint folder, its state.pt, `encodec` .th or "
                        "audiocraft checkpoint")
    p.add_argument("--preset", default="encodec_24khz",
                   help="model preset for a .th or audiocraft file")
    p.add_argument("--data", required=True, help="Parquet manifest")
    p.add_argument("--bandwidths", type=float, nargs="+", default=[1.5, 3.0, 6.0, 12.0, 24.0])
    p.add_argument("--out", default="results/evaluate")
    p.add_argument("--aim-repo", default=None, help="Aim repo (default: no Aim logging)")
    p.add_argument("--concurrency", type=int, default=1, help="model actors")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--max-seconds", type=float, default=None, help="clip length cap")
    p.add_argument("--music", action="store_true", help="skip speech metrics (PESQ/STOI)")
    p.add_argument("--gpu", action="store_true", help="one GPU per actor")
    args = p.parse_args(argv)

    import ray

    from raycodec.evaluate import run_evaluation, to_markdown
    from raycodec.metrics.optional import available
    from raycodec.train.inputs import open_manifest

    ray.init(ignore_reinit_error=True, configure_logging=False)
    try:
        # The training preflight's manifest check; the table is read once and handed on.
        data = open_manifest(args.data, what="--data manifest").table
        table = run_evaluation(args.checkpoint, data, args.bandwidths, args.out,
                               args.preset, args.concurrency, args.batch_size,
                               args.max_seconds, not args.music, args.aim_repo, args.gpu)
    except (ValueError, OSError) as exc:
        print(f"evaluate: error: {exc}", file=sys.stderr)
        return 2
    skipped = [name for name, ok in available().items() if not ok]
    print(to_markdown(table))
    if skipped:
        print(f"skipped (package not installed): {', '.join(skipped)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
