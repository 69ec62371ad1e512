"""The manifest CLI: ``python -m raycodec.data.manifest DIR_OR_GLOB... --out manifest.parquet``.

Starts (or joins) Ray, pays the one-off start-up before the scan and reports both figures, the
scan's throughput and progress with an ETA.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from raycodec.data.inputs import InputError, expand_inputs
from raycodec.data.manifest import SHARD_ROWS, build_manifest, read_manifest


def _progress_printer(stream=sys.stderr) -> Callable[[int, int, int], None]:
    """A progress callback: one updating line on a terminal, a line every 5 s otherwise."""
    start, last = time.time(), [0.0]
    tty = stream.isatty()

    def show(done: int, total: int, bad: int) -> None:
        now = time.time()
        if not tty and done < total and now - last[0] < 5:
            return
        last[0] = now
        rate = done / max(now - start, 1e-9)
        eta = (total - done) / max(rate, 1e-9)
        msg = (f"probed {done}/{total} files ({bad} rejected, {rate:.0f} files/s, "
               f"ETA {_duration(eta)})")
        stream.write(("\r" + msg + (" " * 8)) if tty else msg + "\n")
        if tty and done >= total:
            stream.write("\n")
        stream.flush()

    return show


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else (
        f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s")


def _start_workers(timeout: float = 15.0) -> int:
    """Bring up one worker per CPU, each having imported the probe; returns how many came up.

    Ray starts workers on demand, and a local one starts the second only once two tasks wait
    at the same time: without this the first seconds of a scan ran on one worker while the
    other was still starting (seen on 2 loaded cores: 6 s of a 12 s scan).
    """
    import ray

    want = max(1, int(ray.cluster_resources().get("CPU", 1)))
    ready = ray.remote(num_cpus=1)(_worker_ready)
    pids: set[int] = set()
    deadline = time.perf_counter() + timeout
    hold = 0.2  # each round's tasks overlap for this long, so they need `want` workers
    while len(pids) < want and time.perf_counter() < deadline:
        pids |= set(ray.get([ready.remote(hold) for _ in range(want)]))
        hold = min(2 * hold, 2.0)
    return len(pids)


def _warm_up_data(workers: int) -> None:
    """Scan `workers` missing paths, one per task: Ray Data's own start-up, and each worker's
    import of the probe task's function, are then paid before the real scan."""
    from raycodec.data.manifest import scan_files

    missing = [dict(path=f"/nonexistent/raycodec-warm-up-{i}.wav") for i in range(workers)]
    scan_files(missing, per_task=1)


def _worker_ready(hold: float) -> int:
    import raycodec.data.manifest  # noqa: F401  (the worker imports soundfile, pyarrow... here)

    time.sleep(hold)
    return os.getpid()


def _is_manifest_output(path: Path) -> bool:
    """A path --out/--rejects may name: a file, or a folder of shards ending in .parquet."""
    return not path.is_dir() or (path.suffix == ".parquet" and all(
        p.name.startswith("part-") for p in path.iterdir()))


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status."""
    t0 = time.perf_counter()
    p = argparse.ArgumentParser(
        prog="python -m raycodec.data.manifest",
        description="Scan audio (dirs, globs, files, s3:// URIs, .jsonl/.parquet manifests) to "
                    "a Parquet manifest. Files unchanged since the previous scan are reused.",
    )
    p.add_argument("inputs", nargs="+", help="directories, globs, files, URIs or manifests")
    p.add_argument("--out", required=True, help="manifest Parquet file to write")
    p.add_argument("--rejects", help="rejects Parquet file (default: OUT with .rejects.parquet)")
    p.add_argument("--previous", action="append", default=[],
                   help="manifest whose unchanged entries (path, size, mtime) are reused "
                        "(default: the existing OUT); repeatable")
    p.add_argument("--rescan", action="store_true", help="probe every file again")
    p.add_argument("--check-frames", type=int, default=4096, help="frames decoded per check")
    p.add_argument("--full-check", action="store_true",
                   help="decode every frame (slow); by default lossy files (Ogg Vorbis/Opus, "
                        "MP3) are decoded at their end only, PCM and FLAC at both ends")
    p.add_argument("--shard-rows", type=int, default=SHARD_ROWS,
                   help="larger manifests are written as a folder of Parquet shards")
    p.add_argument("--address", help="Ray cluster address (default: start a local one)")
    args = p.parse_args(argv)
    out = Path(args.out)
    rejects_out = Path(args.rejects) if args.rejects else out.with_suffix(".rejects.parquet")
    if not (_is_manifest_output(out) and _is_manifest_output(rejects_out)):
        print(f"error: --out/--rejects must be files, got a directory: {out}", file=sys.stderr)
        return 2
    if args.check_frames < 1 or args.shard_rows < 1:
        print("error: --check-frames and --shard-rows must be >= 1", file=sys.stderr)
        return 2
    previous = [] if args.rescan else list(args.previous) or ([out] if out.exists() else [])
    try:  # expand first: bad arguments fail fast, before a Ray cluster starts
        expanded = expand_inputs(args.inputs)
        old = [read_manifest(p) for p in previous]
    except (InputError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    t_ray = time.perf_counter()
    import ray

    if not ray.is_initialized():
        # A fresh local Ray unless a cluster is named: joining whatever runs on this machine
        # (another job's or a test session's) would share its CPUs unexpectedly. No dashboard:
        # a scan needs none, and it costs seconds of start-up and a core's share on small hosts.
        address = args.address or os.environ.get("RAY_ADDRESS") or "local"
        kw = {}
        if address == "local":  # CPUs this process may use (taskset, cpusets), not the host's
            cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
            kw = dict(include_dashboard=False, num_cpus=len(cpus) if cpus else None)
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False, **kw)
    ray.data.DataContext.get_current().enable_progress_bars = False  # ours is simpler
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    t_workers = time.perf_counter()
    workers = _start_workers()
    t_data = time.perf_counter()
    _warm_up_data(workers)
    startup = time.perf_counter() - t_ray
    print(f"start-up: {startup:.1f}s (Ray {t_workers - t_ray:.1f}s, {workers} workers "
          f"{t_data - t_workers:.1f}s, Ray Data {time.perf_counter() - t_data:.1f}s); listing: "
          f"{expanded.seconds:.1f}s for "
          f"{expanded.candidates.num_rows} files", file=sys.stderr)
    try:
        result = build_manifest(
            expanded, out=out, rejects_out=rejects_out, previous=old,
            check_frames=args.check_frames, full_check=args.full_check,
            shard_rows=args.shard_rows, on_progress=_progress_printer(),
        )
    except (InputError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(result.summary())
    print(f"manifest: {out} ({result.manifest.num_rows} files)")
    print(f"rejects:  {rejects_out} ({result.rejects.num_rows} files)")
    print(f"start-up {startup:.1f}s; scan {result.seconds:.1f}s at "
          f"{result.files_per_second:.0f} files/s; total {time.perf_counter() - t0:.1f}s")
    if result.manifest.num_rows == 0:
        print("error: no usable audio file found", file=sys.stderr)
        return 1
    return 0
