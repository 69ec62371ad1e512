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
    scheme = urlparse(str(path)).scheme
    return len(scheme) > 1 and "://" in str(path)  # len > 1: "C:\\x" is a local Windows path


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
    """First n bytes of a file (to sniff its format)."""
    if not is_uri(path):
        with open(path, "rb") as f:
            return f.read(n)
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
        with open(path, "rb") as f:
            f.seek(start)
            return f.read(size - start)
    fs, p = resolve_uri(path)
    with fs.open_input_file(p) as f:
        return f.read_at(size - start, start)


# An Ogg page: "OggS", version 0, flags, granule (int64 LE), serial, sequence, CRC, segment
# count, lacing values; its body length is the sum of the lacing values.
_OGG_HEADER = 27
_OGG_MAX_PAGE = _OGG_HEADER + 255 + 255 * 255


def ogg_last_page_start(path: str, size: int) -> int | None:
    """Granule position where a file's final Ogg page starts: the end of the page before it.

    libsndfile seeks exactly to positions up to the final page's start, but maps positions
    inside the final page from that page's granule position, which is exactly what a file with
    a short tail gets wrong. None when the file does not end in a clean chain of Ogg pages.
    """
    for n in (1 << 14, 2 * _OGG_MAX_PAGE):  # pages are ~4-8 kB; two maximal pages at worst
        tail = read_tail(path, size, n)
        seen = 0
        for granule in _ogg_granules_backwards(tail):
            seen += 1
            if seen > 1 and granule >= 0:  # -1: no packet ends on that page
                return granule
        if len(tail) >= size:  # the whole file: no earlier page with a position
            return 0 if seen else None
        if seen == 0:
            return None
    return None


def _ogg_granules_backwards(data: bytes) -> Iterator[int]:
    """Granule positions of the chain of whole pages that ends at the end of data, last first."""
    end = len(data)
    while end > 0:
        start = data.rfind(b"OggS", 0, max(0, end - _OGG_HEADER + 4))
        while start >= 0 and not _ogg_page_spans(data, start, end):
            start = data.rfind(b"OggS", 0, start)
        if start < 0:
            return
        yield int.from_bytes(data[start + 6 : start + 14], "little", signed=True)
        end = start


def _ogg_page_spans(data: bytes, start: int, end: int) -> bool:
    """True if a well-formed page header at start describes a page that ends exactly at end."""
    if start + _OGG_HEADER > len(data) or data[start + 4] != 0:
        return False
    nseg = data[start + 26]
    lacing = data[start + _OGG_HEADER : start + _OGG_HEADER + nseg]
    return len(lacing) == nseg and start + _OGG_HEADER + nseg + sum(lacing) == end
