"""Scan audio files into a Parquet manifest (plus a rejects file) with a parallel Ray Data job.

CLI: ``python -m raycodec.data.manifest DIR_OR_GLOB... --out manifest.parquet [--rejects R]``
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from raycodec.data.inputs import AUDIO_EXTENSIONS, ExpandedInputs, InputError, expand_inputs
from raycodec.data.probe import REJECT_REASONS, probe_file

MANIFEST_SCHEMA = pa.schema([
    ("path", pa.string()), ("sample_rate", pa.int64()), ("channels", pa.int64()),
    ("frames", pa.int64()), ("duration", pa.float64()), ("format", pa.string()),
    ("subtype", pa.string()), ("size", pa.int64()), ("weight", pa.float64()),
])  # fmt: skip
REJECTS_SCHEMA = pa.schema([("path", pa.string()), ("reason", pa.string()),
                            ("detail", pa.string())])  # fmt: skip
_PROBE_SCHEMA = pa.schema(list(MANIFEST_SCHEMA) + [
    ("ok", pa.bool_()), ("reason", pa.string()), ("detail", pa.string()),
])  # fmt: skip


@dataclass
class ScanResult:
    """Outcome of a scan: the manifest and rejects tables and what happened to every input."""

    manifest: pa.Table
    rejects: pa.Table
    ignored: int = 0
    duplicates: int = 0
    seconds: float = 0.0
    reasons: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        """Human-readable counts per reject reason."""
        hours = pc.sum(self.manifest["duration"]).as_py() or 0.0
        n_in = self.manifest.num_rows + self.rejects.num_rows
        lines = [f"scanned {n_in} inputs in {self.seconds:.1f}s: {self.manifest.num_rows} usable "
                 f"({hours / 3600:.2f} h), {self.rejects.num_rows} rejected"]  # fmt: skip
        for reason, n in sorted(self.reasons.items(), key=lambda kv: -kv[1]):
            lines.append(f"  {reason:<20} {n:>7}  {REJECT_REASONS.get(reason, '')}")
        if self.duplicates:
            lines.append(f"  (skipped {self.duplicates} duplicate paths)")
        if self.ignored:
            lines.append(f"  (ignored {self.ignored} files without an audio extension)")
        return "\n".join(lines)


def _probe_batch(batch: pa.Table, *, check_frames: int, full_check: bool) -> pa.Table:
    """Ray Data map_batches function: probe each path of the batch."""
    rows = []
    for path, weight in zip(batch["path"].to_pylist(), batch["weight"].to_pylist()):
        row = probe_file(path, check_frames=check_frames, full_check=full_check)
        row["weight"] = weight
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=_PROBE_SCHEMA)


def scan_files(
    candidates: Sequence[dict],
    *,
    check_frames: int = 4096,
    full_check: bool = False,
    batch_size: int = 16,
    on_progress: Callable[[int, int, int], None] | None = None,
) -> tuple[pa.Table, pa.Table]:
    """Probe {path, weight} candidates in parallel on Ray; returns (manifest, rejects), by path."""
    import ray

    n = len(candidates)
    if n == 0:
        return MANIFEST_SCHEMA.empty_table(), REJECTS_SCHEMA.empty_table()
    items = pa.table({
        "path": pa.array([c["path"] for c in candidates], pa.string()),
        "weight": pa.array([c.get("weight") for c in candidates], pa.float64()),
    })  # fmt: skip
    # Enough blocks for every CPU to work and for progress to move; not one task per file.
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1))) if ray.is_initialized() else 4
    n_blocks = max(1, min(-(-n // batch_size), 4 * cpus + n // 2000))
    step = -(-n // n_blocks)
    ds = ray.data.from_arrow([items.slice(i, step) for i in range(0, n, step)])
    ds = ds.map_batches(
        _probe_batch, batch_size=batch_size, batch_format="pyarrow",
        fn_kwargs=dict(check_frames=check_frames, full_check=full_check),
    )  # fmt: skip
    parts, done, bad = [], 0, 0
    for part in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
        parts.append(part)
        done += part.num_rows
        bad += part.num_rows - pc.sum(part["ok"]).as_py()
        if on_progress is not None:
            on_progress(done, n, bad)
    table = pa.concat_tables(parts).cast(_PROBE_SCHEMA).sort_by("path")
    if table.num_rows != n:  # guard the "never drop a file silently" promise
        raise RuntimeError(f"scan returned {table.num_rows} rows for {n} inputs")
    ok = table["ok"]
    manifest = table.filter(ok).select(MANIFEST_SCHEMA.names)
    rejects = table.filter(pc.invert(ok)).select(REJECTS_SCHEMA.names)
    return manifest, rejects


def build_manifest(
    inputs: Sequence[str | Path] | ExpandedInputs,
    *,
    out: str | Path | None = None,
    rejects_out: str | Path | None = None,
    extensions: Sequence[str] = AUDIO_EXTENSIONS,
    check_frames: int = 4096,
    full_check: bool = False,
    on_progress: Callable[[int, int, int], None] | None = None,
) -> ScanResult:
    """Scan inputs into manifest/rejects tables; writes them as Parquet when paths are given."""
    start = time.time()
    if isinstance(inputs, ExpandedInputs):
        expanded = inputs
    else:
        expanded = expand_inputs(inputs, extensions=extensions)
    manifest, rejects = scan_files(
        expanded.candidates, check_frames=check_frames, full_check=full_check,
        on_progress=on_progress,
    )  # fmt: skip
    if expanded.rejects:
        early = pa.Table.from_pylist(expanded.rejects, schema=REJECTS_SCHEMA)
        rejects = pa.concat_tables([rejects, early])
    result = ScanResult(
        manifest=manifest, rejects=rejects, ignored=expanded.ignored,
        duplicates=expanded.duplicates, seconds=time.time() - start,
        reasons=dict(Counter(rejects["reason"].to_pylist())),
    )  # fmt: skip
    if out is not None:
        write_table(manifest, out)
    if rejects_out is not None:
        write_table(rejects, rejects_out)
    return result


def write_table(table: pa.Table, path: str | Path) -> None:
    """Write a table as one Parquet file, creating parent directories."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, str(path))


def read_manifest(manifest: str | Path | pa.Table) -> pa.Table:
    """Load and validate a manifest (Parquet path or table); weight defaults to null."""
    table = manifest if isinstance(manifest, pa.Table) else None
    if table is None:
        if "://" not in str(manifest) and not os.path.exists(manifest):  # URIs: pyarrow reads
            raise FileNotFoundError(f"manifest not found: {manifest}")
        table = pq.read_table(str(manifest))
    required = ["path", "sample_rate", "channels", "frames", "duration"]
    missing = [c for c in required if c not in table.column_names]
    if missing:
        raise ValueError(f"manifest lacks columns {missing} (has {table.column_names})")
    if "weight" not in table.column_names:
        table = table.append_column("weight", pa.nulls(table.num_rows, pa.float64()))
    return table


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
        msg = f"probed {done}/{total} files ({bad} rejected, {rate:.0f} files/s)"
        stream.write(("\r" + msg + (" " * 8)) if tty else msg + "\n")
        if tty and done >= total:
            stream.write("\n")
        stream.flush()

    return show


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status."""
    p = argparse.ArgumentParser(
        prog="python -m raycodec.data.manifest",
        description="Scan audio (dirs, globs, files, s3:// URIs, audiocraft .jsonl) to Parquet.",
    )
    p.add_argument("inputs", nargs="+", help="directories, globs, files, URIs or .jsonl manifests")
    p.add_argument("--out", required=True, help="manifest Parquet file to write")
    p.add_argument("--rejects", help="rejects Parquet file (default: OUT with .rejects.parquet)")
    p.add_argument("--check-frames", type=int, default=4096, help="frames decoded per check")
    p.add_argument("--full-check", action="store_true", help="decode every frame (slow)")
    p.add_argument("--address", help="Ray cluster address (default: start a local one)")
    args = p.parse_args(argv)
    out = Path(args.out)
    rejects_out = Path(args.rejects) if args.rejects else out.with_suffix(".rejects.parquet")
    if out.is_dir() or rejects_out.is_dir():
        print(f"error: --out/--rejects must be files, got a directory: {out}", file=sys.stderr)
        return 2
    if args.check_frames < 1:
        print("error: --check-frames must be >= 1", file=sys.stderr)
        return 2
    try:  # expand first: bad arguments fail fast, before a Ray cluster starts
        expanded = expand_inputs(args.inputs)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    import ray

    if not ray.is_initialized():
        # A fresh local Ray unless a cluster is named: joining whatever runs on this machine
        # (another job's or a test session's) would share its CPUs unexpectedly.
        address = args.address or os.environ.get("RAY_ADDRESS") or "local"
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False  # ours is simpler
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    try:
        result = build_manifest(
            expanded, out=out, rejects_out=rejects_out, check_frames=args.check_frames,
            full_check=args.full_check, on_progress=_progress_printer(),
        )  # fmt: skip
    except (InputError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(result.summary())
    print(f"manifest: {out} ({result.manifest.num_rows} files)")
    print(f"rejects:  {rejects_out} ({result.rejects.num_rows} files)")
    if result.manifest.num_rows == 0:
        print("error: no usable audio file found", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
