"""Train a codec: `python experiments/train.py [--config NAME_OR_FILE] key=value ...`.

Submit it to a cluster with `ray job submit --working-dir . -- python experiments/train.py ...`;
without a cluster it starts a local Ray. Re-running the same command resumes the experiment.
"""

import sys

from raycodec.config import parse_train_args
from raycodec.train.job import JobError, train


def main() -> int:
    """Parse, validate and train; bad input exits with status 2 and a one-line message."""
    cfg = parse_train_args(prog="train.py")
    try:
        train(cfg)
    except JobError as exc:
        print(f"train.py: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
