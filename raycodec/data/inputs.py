"""Expand scan inputs (directories, globs, files, URIs, jsonl and Parquet manifests) into paths.

Listing runs in a thread pool (one task per directory; stats come with the listing), so that
network file systems with millions of files are listed in parallel.
"""

from __future__ import annotations

import fnmatch
import glob
import gzip
import json
import math
import os
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import pyarrow as pa

from raycodec.data.audio_io import BUCKET_SCHEMES, is_uri, resolve_uri

AUDIO_EXTENSIONS = (".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff",
                    ".aifc", ".au", ".snd", ".caf", ".w64", ".rf64",
                    # listed so they get probed and reported as unsupported, not silently skipped
                    ".m4a", ".mp4", ".aac", ".wma")
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz")
PARQUET_SUFFIX = ".parquet"  # a manifest (file, or folder of shards) named as an input
CANDIDATE_SCHEMA = pa.schema([("path", pa.string()), ("weight", pa.float64()),
                              ("size", pa.int64()), ("mtime_ns", pa.int64())])
_GLOB_CHARS = set("*?[")
_LIST_THREADS = 16  # listing and stat are I/O-bound: threads overlap network round trips


class InputError(ValueError):
    """A scan input is unusable (nothing found, missing path, bad argument)."""


@dataclass
class ExpandedInputs:
    """Candidate files (CANDIDATE_SCHEMA: path, weight, size, mtime_ns as listed), rejects found
    before probing, manifests named as inputs (their rows can be reused) and counts."""

    candidates: pa.Table = field(default_factory=CANDIDATE_SCHEMA.empty_table)
    rejects: list[dict] = field(default_factory=list)
    previous: list[pa.Table] = field(default_factory=list)
    ignored: int = 0  # files in scanned directories without an audio extension
    duplicates: int = 0
    seconds: float = 0.0


def _has_audio_ext(path: str, extensions: Sequence[str]) -> bool:
    return path.lower().endswith(tuple(extensions))


def _is_jsonl(path: str) -> bool:
    return path.lower().endswith(JSONL_SUFFIXES)


Listed = tuple[str, int | None, int | None]  # (path, size, mtime_ns); None: stat failed


def _list_uri(uri: str, extensions: Sequence[str]) -> tuple[list[Listed], int]:
    """(audio and jsonl files, ignored count) under a URI; a glob lists its literal prefix."""
    from pyarrow import fs as pafs

    fs, path = resolve_uri(uri)
    pattern = None
    if _GLOB_CHARS & set(path):
        pattern = path
        path = path[: min(path.index(c) for c in _GLOB_CHARS if c in path)].rsplit("/", 1)[0]
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.NotFound:
        raise InputError(f"not found: {uri}")
    if info.type == pafs.FileType.File and pattern is None:
        return [(uri, info.size, info.mtime_ns)], 0
    parsed = urlparse(uri)
    # pyarrow lists paths without scheme (and without netloc unless it is a bucket).
    lead = f"{parsed.scheme}://" + ("" if parsed.scheme in BUCKET_SCHEMES else parsed.netloc)
    found, ignored = [], 0
    for entry in fs.get_file_info(pafs.FileSelector(path, recursive=True)):
        if entry.type != pafs.FileType.File:
            continue
        if pattern is not None and not fnmatch.fnmatch(entry.path, pattern):
            continue
        if _has_audio_ext(entry.path, extensions) or _is_jsonl(entry.path):
            found.append((lead + entry.path, entry.size, entry.mtime_ns))
        else:
            ignored += 1
    if pattern is not None and not found and not ignored:
        raise InputError(f"glob matched nothing: {uri}")
    return sorted(found), ignored


def _stat(path: str) -> Listed:
    try:
        st = os.stat(path)
    except OSError:  # reported by the probe as unreadable
        return path, None, None
    return path, st.st_size, st.st_mtime_ns


def _scan_dir(folder: str) -> tuple[list[str], list[Listed]]:
    """(subfolders, files with their stats) of one folder."""
    subdirs, files = [], []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return [], []
    for e in entries:
        try:
            if e.is_dir(follow_symlinks=False):  # like os.walk: no symlinked folders (loops)
                subdirs.append(e.path)
                continue
            st = e.stat()
            files.append((os.path.abspath(e.path), st.st_size, st.st_mtime_ns))
        except OSError:  # a broken link: listed, rejected by the probe as unreadable
            files.append((os.path.abspath(e.path), None, None))
    return subdirs, files


def walk_parallel(roots: Iterable[str], threads: int = _LIST_THREADS) -> list[Listed]:
    """Every file under the roots with its size and mtime, sorted; folders listed in parallel."""
    out: list[Listed] = []
    with ThreadPoolExecutor(threads) as pool:
        pending = {pool.submit(_scan_dir, r) for r in roots}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                subdirs, files = fut.result()
                out.extend(files)
                pending |= {pool.submit(_scan_dir, d) for d in subdirs}
    out.sort()
    return out


def stat_many(paths: Sequence[str], threads: int = _LIST_THREADS) -> list[Listed]:
    """(path, size, mtime_ns) of local paths or URIs, stat'ed in parallel; None on failure."""
    local = [p for p in paths if not is_uri(p)]
    if len(local) == len(paths):
        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(_stat, paths, chunksize=256))
    return [_stat(p) if not is_uri(p) else _stat_uri(p) for p in paths]


def _stat_uri(uri: str) -> Listed:
    from pyarrow import fs as pafs

    try:
        fs, p = resolve_uri(uri)
        info = fs.get_file_info(p)
    except Exception:  # reported by the probe
        return uri, None, None
    if info.type != pafs.FileType.File:
        return uri, None, None
    return uri, info.size, info.mtime_ns


def _list_local(item: str, extensions: Sequence[str]) -> tuple[list[Listed], int]:
    """(audio and jsonl files, ignored count) for a local directory, glob or file."""
    if _GLOB_CHARS & set(item):
        matches = sorted(glob.glob(item, recursive=True))
        if not matches:
            raise InputError(f"glob matched nothing: {item}")
    elif os.path.isdir(item):
        matches = [item]
    elif os.path.exists(item):
        return [_stat(os.path.abspath(item))], 0
    else:
        raise InputError(f"no such file or directory: {item}")
    dirs = [m for m in matches if os.path.isdir(m)]
    listed = walk_parallel(dirs) + [_stat(os.path.abspath(m)) for m in matches if m not in dirs]
    found = [x for x in listed if _has_audio_ext(x[0], extensions) or _is_jsonl(x[0])]
    return found, len(listed) - len(found)


def _is_parquet_manifest(item: str) -> bool:
    return item.lower().rstrip("/").endswith(PARQUET_SUFFIX) and (
        is_uri(item) or os.path.exists(item))


def read_parquet_manifest(path: str) -> pa.Table:
    """A Parquet manifest named as an input, its relative paths resolved next to it."""
    from raycodec.data.manifest import read_manifest

    try:
        table = read_manifest(path)
    except (OSError, ValueError, pa.ArrowException) as e:
        raise InputError(f"{path} is not a usable manifest: {str(e).splitlines()[0]}") from e
    if not is_uri(path):
        base = os.path.dirname(os.path.abspath(path.rstrip("/")))
        paths = [p if is_uri(p) or os.path.isabs(p) else os.path.join(base, p)
                 for p in table["path"].to_pylist()]
        table = table.set_column(table.schema.get_field_index("path"), "path",
                                 pa.array(paths, pa.string()))
    return table


def _valid_weight(w: object) -> bool:
    return isinstance(w, int | float) and not isinstance(w, bool) and math.isfinite(w) and w >= 0


def read_jsonl_manifest(path: str | Path) -> tuple[list[dict], list[dict]]:
    """Entries {path, weight} and rejects of an audiocraft jsonl(.gz) manifest."""
    path = str(path)
    base = os.path.dirname(os.path.abspath(path)) if not is_uri(path) else None
    if is_uri(path):
        fs, p = resolve_uri(path)
        with fs.open_input_stream(p) as f:
            raw = f.read()
        raw = gzip.decompress(raw) if path.lower().endswith(".gz") else raw
        lines = raw.decode("utf-8", errors="replace").splitlines()
    else:
        opener = gzip.open if path.lower().endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    entries, rejects = [], []
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{i}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            rejects.append(dict(path=where, reason="bad_manifest_entry", detail=f"bad JSON: {e}"))
            continue
        if not isinstance(obj, dict) or not isinstance(obj.get("path"), str) or not obj["path"]:
            rejects.append(dict(path=where, reason="bad_manifest_entry", detail="no 'path' string"))
            continue
        p = obj["path"]
        if base is not None and not is_uri(p) and not os.path.isabs(p):
            p = os.path.join(base, p)  # relative paths are relative to the manifest file
        weight = obj.get("weight")
        if weight is not None and not _valid_weight(weight):
            detail = f"{where}: weight must be a finite number >= 0, got {weight!r}"
            rejects.append(dict(path=p, reason="bad_manifest_entry", detail=detail))
            continue
        entries.append(dict(path=p, weight=None if weight is None else float(weight)))
    return entries, rejects


def expand_inputs(
    inputs: Sequence[str | Path], *, extensions: Sequence[str] = AUDIO_EXTENSIONS
) -> ExpandedInputs:
    """Candidates to probe from directories, globs, files, URIs and jsonl/Parquet manifests."""
    start = time.perf_counter()
    if isinstance(inputs, str | Path):
        inputs = [inputs]
    if not inputs:
        raise InputError("no input given (expected directories, globs, files or manifests)")
    out = ExpandedInputs()
    seen: set[str] = set()
    rows: list[Listed] = []
    weights: list[float | None] = []

    def add(entries: Iterable[Listed], entry_weights: Iterable[float | None]) -> None:
        for e, w in zip(entries, entry_weights):
            if e[0] in seen:
                out.duplicates += 1
                continue
            seen.add(e[0])
            rows.append(e)
            weights.append(w)

    for item in map(str, inputs):
        try:
            if _is_parquet_manifest(item):
                table = read_parquet_manifest(item)
                out.previous.append(table)
                add(stat_many(table["path"].to_pylist()), table["weight"].to_pylist())
                continue
            lister = _list_uri if is_uri(item) else _list_local
            files, ignored = lister(item, extensions)
        except InputError:
            raise
        except Exception as e:  # e.g. unreachable bucket, bad credentials, unknown scheme
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise InputError(f"cannot list {item}: {msg}") from e
        out.ignored += ignored
        plain = [f for f in files if not _is_jsonl(f[0])]
        add(plain, [None] * len(plain))
        for f in files:
            if _is_jsonl(f[0]):
                entries, rejects = read_jsonl_manifest(f[0])
                out.rejects.extend(rejects)
                add(stat_many([e["path"] for e in entries]), [e["weight"] for e in entries])
    if not rows and not out.rejects:
        raise InputError(f"no audio files found in: {', '.join(map(str, inputs))}")
    cols = list(zip(*rows)) if rows else [[], [], []]
    out.candidates = pa.table([pa.array(cols[0], pa.string()), pa.array(weights, pa.float64()),
                               pa.array(cols[1], pa.int64()), pa.array(cols[2], pa.int64())],
                              schema=CANDIDATE_SCHEMA)
    out.seconds = time.perf_counter() - start
    return out
