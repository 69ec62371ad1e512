"""Ogg page surgery for tests: files whose header length exceeds their decodable frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else r << 1
        table.append(r & 0xFFFFFFFF)
    return table


_CRC = _crc_table()


def ogg_crc(page: bytes) -> int:
    """Ogg's page checksum (CRC-32, polynomial 0x04C11DB7, no reflection, zero init)."""
    c = 0
    for b in page:
        c = ((c << 8) & 0xFFFFFFFF) ^ _CRC[((c >> 24) & 0xFF) ^ b]
    return c


def pages(data: bytes) -> list[tuple[int, int, int]]:
    """(offset, length, granule position) of every page of an Ogg stream."""
    out, i = [], 0
    while i < len(data):
        assert data[i : i + 4] == b"OggS", f"no page at byte {i}"
        nseg = data[i + 26]
        length = 27 + nseg + sum(data[i + 27 : i + 27 + nseg])
        out.append((i, length, int.from_bytes(data[i + 6 : i + 14], "little", signed=True)))
        i += length
    return out


def set_granule(data: bytes, page_offset: int, granule: int) -> bytes:
    """data with one page's granule position replaced (checksum recomputed)."""
    nseg = data[page_offset + 26]
    end = page_offset + 27 + nseg + sum(data[page_offset + 27 : page_offset + 27 + nseg])
    page = bytearray(data[page_offset:end])
    page[6:14] = granule.to_bytes(8, "little", signed=True)
    page[22:26] = b"\0\0\0\0"
    page[22:26] = ogg_crc(bytes(page)).to_bytes(4, "little")
    return data[:page_offset] + bytes(page) + data[end:]


def write_short_tail_ogg(path: Path, x: np.ndarray, sr: int, *, slack: int,
                         last_page: int = 2000) -> tuple[int, int]:
    """Write x [frames, C] as Ogg Vorbis whose final page is about `last_page` frames long and
    whose final granule position claims `slack` more frames than decode (as some encoders do).

    Returns (header frames, decodable frames), both as soundfile reports them.
    """
    sf.write(path, x, sr, format="OGG", subtype="VORBIS")
    boundaries = [g for _, _, g in pages(Path(path).read_bytes()) if g > 0]
    assert len(boundaries) >= 3, "signal too short for a multi-page file"
    # Re-encode just past an inner page boundary: the final page is then short, so a read of
    # the last 4096 frames starts before it (where libsndfile seeks exactly) and sees the gap.
    sf.write(path, x[: boundaries[-3] + last_page], sr, format="OGG", subtype="VORBIS")
    data = Path(path).read_bytes()
    last_offset, _, last_granule = pages(data)[-1]
    Path(path).write_bytes(set_granule(data, last_offset, last_granule + slack))
    with sf.SoundFile(path) as f:
        return f.frames, len(f.read(dtype="float32"))
