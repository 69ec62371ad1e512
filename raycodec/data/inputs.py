"""Expand scan inputs (directories, globs, files, URIs, audiocraft jsonl manifests) into paths."""

from __future__ import annotations

import fnmatch
import glob
import gzip
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from raycodec.data.audio_io import BUCKET_SCHEMES, is_uri, resolve_uri

AUDIO_EXTENSIONS = (".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff",
                    ".aifc", ".au", ".snd", ".caf", ".w64", ".rf64",
                    # listed so they get probed and reported as unsupported, not silently skipped
                    ".m4a", ".mp4", ".aac", ".wma")  # fmt: skip
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz")
_GLOB_CHARS = set("*?[")


class InputError(ValueError):
    """A scan input is unusable (nothing found, missing path, bad argument)."""


@dataclass
class ExpandedInputs:
    """Candidate files (path, weight) plus rejects found before probing and bookkeeping counts."""

    candidates: list[dict] = field(default_factory=list)
    rejects: list[dict] = field(default_factory=list)
    ignored: int = 0  # files in scanned directories without an audio extension
    duplicates: int = 0


def _has_audio_ext(path: str, extensions: Sequence[str]) -> bool:
    return path.lower().endswith(tuple(extensions))


def _is_jsonl(path: str) -> bool:
    return path.lower().endswith(JSONL_SUFFIXES)


def _list_uri(uri: str, extensions: Sequence[str]) -> tuple[list[str], int, bool]:
    """(audio files, ignored count, was_expanded) under a URI; a glob lists its literal prefix."""
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
        return [uri], 0, False
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
            found.append(lead + entry.path)
        else:
            ignored += 1
    if pattern is not None and not found and not ignored:
        raise InputError(f"glob matched nothing: {uri}")
    return sorted(found), ignored, True


def _list_local(item: str, extensions: Sequence[str]) -> tuple[list[str], int, bool]:
    """(audio files, ignored count, was_expanded) for a local directory, glob or file."""
    if _GLOB_CHARS & set(item):
        matches = sorted(glob.glob(item, recursive=True))
        if not matches:
            raise InputError(f"glob matched nothing: {item}")
    elif os.path.isdir(item):
        matches = [item]
    elif os.path.exists(item):
        return [os.path.abspath(item)], 0, False
    else:
        raise InputError(f"no such file or directory: {item}")
    found, ignored = [], 0
    for m in matches:
        files = [m] if not os.path.isdir(m) else [
            os.path.join(d, f) for d, _, fs in sorted(os.walk(m)) for f in sorted(fs)
        ]  # fmt: skip
        for f in files:
            if _has_audio_ext(f, extensions) or _is_jsonl(f):
                found.append(os.path.abspath(f))
            else:
                ignored += 1
    return found, ignored, True


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
    """Candidates to probe from directories, globs, files, URIs and jsonl manifests."""
    if isinstance(inputs, str | Path):
        inputs = [inputs]
    if not inputs:
        raise InputError("no input given (expected directories, globs, files or .jsonl manifests)")
    out = ExpandedInputs()
    seen: set[str] = set()
    for item in map(str, inputs):
        lister = _list_uri if is_uri(item) else _list_local
        try:
            files, ignored, _ = lister(item, extensions)
        except InputError:
            raise
        except Exception as e:  # e.g. unreachable bucket, bad credentials, unknown scheme
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise InputError(f"cannot list {item}: {msg}") from e
        out.ignored += ignored
        for f in files:
            if _is_jsonl(f):
                entries, rejects = read_jsonl_manifest(f)
                out.rejects.extend(rejects)
            else:
                entries = [dict(path=f, weight=None)]
            for e in entries:
                if e["path"] in seen:
                    out.duplicates += 1
                    continue
                seen.add(e["path"])
                out.candidates.append(e)
    if not out.candidates and not out.rejects:
        raise InputError(f"no audio files found in: {', '.join(map(str, inputs))}")
    return out
