"""Opening audio on local disks and on pyarrow filesystems (``s3://``, ``gs://``, ``file://``...)."""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from urllib.parse import urlparse

import soundfile as sf

# Object stores put the bucket in the URI's netloc and pyarrow wants "bucket/key" as the path.
BUCKET_SCHEMES = {"s3", "gs", "gcs", "abfs", "abfss", "az"}


def is_uri(path: str) -> bool:
    """True for ``scheme://...`` paths, which are opened through a pyarrow filesystem."""
    path = str(path)
    if "://" not in path:  # the common case, without urlparse (the probe asks per file)
        return False
    return len(urlparse(path).scheme) > 1  # len > 1: "C:\\x" is a local Windows path


@functools.lru_cache(maxsize=64)
def _filesystem(root: str):
    """One pyarrow filesystem per ``scheme://netloc`` (from_uri may do network calls)."""
    from pyarrow import fs as pafs

    return pafs.FileSystem.from_uri(root)[0]


def resolve_uri(uri: str):
    """(pyarrow filesystem, path inside it) for a ``scheme://`` URI."""
    parsed = urlparse(uri)
    scheme = parsed.scheme.lower()
    fs = _filesystem(f"{scheme}://{parsed.netloc}/")
    if scheme in BUCKET_SCHEMES:
        return fs, f"{parsed.netloc}{parsed.path}"
    return fs, parsed.path


def file_size(path: str) -> int:
    """Size in bytes; raises FileNotFoundError / OSError like os.stat."""
    if not is_uri(path):
        return os.stat(path).st_size
    from pyarrow import fs as pafs

    fs, p = resolve_uri(path)
    info = fs.get_file_info(p)
    if info.type == pafs.FileType.NotFound:
        raise FileNotFoundError(f"no such file: {path}")
    if info.type != pafs.FileType.File:
        raise IsADirectoryError(f"not a regular file: {path}")
    return int(info.size)


def read_head(path: str, n: int = 16) -> bytes:
    """First n bytes of a file (to sniff its format, or parse its headers)."""
    if not is_uri(path):
        return _pread(path, n, 0)
    fs, p = resolve_uri(path)
    with fs.open_input_file(p) as f:
        return f.read(n)


@contextlib.contextmanager
def open_audio(path: str) -> Iterator[sf.SoundFile]:
    """A seekable soundfile.SoundFile for a local path or a pyarrow-filesystem URI."""
    if not is_uri(path):
        with sf.SoundFile(path) as f:
            yield f
        return
    fs, p = resolve_uri(path)
    # Random-access input file: seeks become ranged reads on object stores, no full download.
    with fs.open_input_file(p) as raw, sf.SoundFile(raw) as f:
        yield f


def read_tail(path: str, size: int, n: int) -> bytes:
    """The last n bytes of a file of `size` bytes (fewer when the file is shorter)."""
    start = max(0, size - n)
    if not is_uri(path):
        return _pread(path, size - start, start)
    fs, p = resolve_uri(path)
    with fs.open_input_file(p) as f:
        return f.read_at(size - start, start)


def _pread(path: str, n: int, offset: int) -> bytes:
    """n bytes at offset of a local file: no buffered file object (the probe reads per file)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.pread(fd, n, offset)
    finally:
        os.close(fd)
