"""Write a training run's report: `python experiments/demo_report.py --heldout DIR --out DIR
[--start CKPT] [--config NAME] key=value ...` (the same config and overrides as train.py, which
locate the run folder by its experiment signature)."""

import argparse
import sys

from raycodec.config import load_config
from raycodec.evaluate.run_report import write_run_report
from raycodec.train.plan import JobError, run_info


def main() -> int:
    """Parse, locate the run, write the report; bad input exits 2 with a one-line message."""
    p = argparse.ArgumentParser(prog="demo_report.py", description=__doc__.split("\n")[0])
    p.add_argument("--config", default=None)
    p.add_argument("--heldout", required=True, help="folder of held-out audio files")
    p.add_argument("--out", required=True, help="report folder")
    p.add_argument("--start", default=None, help="the run's starting checkpoint (step 0)")
    p.add_argument("--clips", type=int, default=8)
    p.add_argument("--heavy-clips", type=int, default=2)
    p.add_argument("overrides", nargs="*")
    args = p.parse_intermixed_args()
    try:
        cfg = load_config(args.config, args.overrides)
        run = run_info(cfg)
        report = write_run_report(
            run.run_dir, args.heldout, args.out, start=args.start, clips=args.clips,
            heavy_clips=args.heavy_clips, aim_command=f"aim up --repo {run.aim_repo}",
            title=f"raycodec demo: {cfg.tracking.experiment} ({run.signature})")
    except (JobError, ValueError) as exc:
        print(f"demo_report.py: error: {exc}", file=sys.stderr)
        return 2
    t = report.targets
    print(f"[raycodec] report: {report.path}")
    print(f"[raycodec] mel distance by kbps {', '.join(f'{k}: {v:.3f}' for k, v in t['mel_by_kbps'].items())}"  # noqa: E501
          f" (ordered: {'yes' if t['ordered_by_bitrate'] else 'no'}); 6 kbps vs Opus 6 kbps "
          f"{t['mel_6kbps']:.3f} vs {t['mel_opus_6kbps']:.3f} (gap {t['gap_to_reference']:+.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
