"""Progress lines from Ray Train workers, shown once by `ray job submit`."""

from __future__ import annotations

import sys


def say(message: str) -> None:
    """Write one line to this process's stdout, flushed.

    Ray Train V2 patches `print` in its workers to tee each line into Train's logger too, and
    `ray job submit` then streams both the worker's stdout and that log: every line twice.
    """
    sys.stdout.write(message + "\n")
    sys.stdout.flush()
