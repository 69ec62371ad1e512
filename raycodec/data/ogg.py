"""Ogg page parsing for the probe: where the final page starts and, for Vorbis, how many frames
the final page really decodes to, counted from its packets' block sizes without decoding them.

Vorbis lengths come from the final page's granule position, which some encoders leave a little
past the samples that actually decode. libvorbis outputs (previous block + this block) / 4
samples per audio packet, and a packet's block size is given by its mode number (its first
byte) and the setup header's mode table, so the final page's true sample count needs no decode.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from itertools import accumulate

# A page: "OggS", version 0, flags, granule (int64 LE), serial, sequence, CRC, segment count,
# lacing values; its body length is the sum of the lacing values.
HEADER = 27
MAX_PAGE = HEADER + 255 + 255 * 255
_CONTINUED, _EOS = 0x01, 0x04
_MODE_BITS = 41  # blockflag 1, windowtype 16, transformtype 16, mapping 8


@dataclass(frozen=True)
class Page:
    """One Ogg page: its granule position and the first byte of each packet ending on it."""

    granule: int
    flags: int
    serial: int
    packets: tuple[int | None, ...]  # None: the packet began before the bytes we have; -1: empty


@dataclass(frozen=True)
class VorbisSetup:
    """What the block size of an audio packet depends on: the two sizes and the mode table."""

    blocksizes: tuple[int, int]
    long_modes: tuple[bool, ...]  # per mode: True when it uses the long block

    def by_first_byte(self) -> tuple[int | None, ...]:
        """Block size of an audio packet for each value of its first byte; None for a header
        packet (low bit set) or a mode number the table does not have."""
        return _size_table(self.blocksizes, self.long_modes)


@functools.lru_cache(maxsize=64)  # a collection has a handful of encoder set-ups
def _size_table(blocksizes: tuple[int, int], long_modes: tuple[bool, ...]) -> tuple:
    bits = (len(long_modes) - 1).bit_length()
    out: list[int | None] = []
    for b in range(256):
        mode = (b >> 1) & ((1 << bits) - 1)
        ok = not b & 1 and mode < len(long_modes)
        out.append(blocksizes[long_modes[mode]] if ok else None)
    return tuple(out)


def page_chain(data: bytes) -> list[int]:
    """Offsets of the chain of whole pages that ends exactly at the end of data, in file order."""
    starts, end = [], len(data)
    while end > 0:
        start = data.rfind(b"OggS", 0, max(0, end - HEADER + 4))
        while start >= 0 and not _page_spans(data, start, end):
            start = data.rfind(b"OggS", 0, start)
        if start < 0:
            break
        starts.append(start)
        end = start
    return starts[::-1]


def _page_spans(data: bytes, start: int, end: int) -> bool:
    """True if a well-formed page header at start describes a page that ends exactly at end."""
    if start + HEADER > len(data) or data[start + 4] != 0:
        return False
    nseg = data[start + 26]
    lacing = data[start + HEADER : start + HEADER + nseg]
    return len(lacing) == nseg and start + HEADER + nseg + sum(lacing) == end


@dataclass(frozen=True)
class FinalPages:
    """The end of an Ogg file: its bytes, the chain of whole pages in them, and granules."""

    tail: bytes
    starts: list[int]  # offsets in tail of the pages that end exactly at the end of the file
    final_granule: int
    prev_granule: int  # where the final page starts: the last earlier position (0: none)


def final_pages(read_tail: Callable[[int], bytes], size: int) -> FinalPages | None:
    """The final page's granule and the granule where it starts, from the file's last bytes.

    libsndfile seeks exactly to positions up to the final page's start, but maps positions
    inside the final page from that page's granule position, which is exactly what a file with
    a short tail gets wrong. None when the file does not end in a clean chain of Ogg pages.
    `read_tail(n)` returns the last n bytes of the file.
    """
    for n in (1 << 14, 2 * MAX_PAGE):  # pages are ~4-8 kB; two maximal pages at worst
        tail = read_tail(n)
        starts = page_chain(tail)
        granules = [_granule(tail, s) for s in starts]
        earlier = [g for g in granules[:-1] if g >= 0]  # -1: no packet ends on that page
        if starts and earlier:
            return FinalPages(tail, starts, granules[-1], earlier[-1])
        if len(tail) >= size:  # the whole file: no earlier page with a position
            return FinalPages(tail, starts, granules[-1], 0) if starts else None
        if not starts:
            return None
    return None


def _granule(data: bytes, start: int) -> int:
    return int.from_bytes(data[start + 6 : start + 14], "little", signed=True)


def parse_pages(data: bytes, starts: list[int]) -> list[Page] | None:
    """The pages at `starts` (consecutive, in order) with their packets; None if inconsistent."""
    pages, carry = [], None  # carry: first byte of a packet continued onto the next page
    pending = False
    for i, s in enumerate(starts):
        flags, nseg = data[s + 5], data[s + 26]
        continued = bool(flags & _CONTINUED)
        if nseg == 0 or (i > 0 and continued != pending):
            return None  # a continuation without a started packet, or the reverse
        body = s + HEADER + nseg
        lacing = data[s + HEADER : body]
        offsets = list(accumulate(lacing, initial=0))  # segment k starts at body + offsets[k]
        # A lacing value < 255 ends a packet; the next packet starts at the next segment.
        starts_at = [0] + [k + 1 for k, v in enumerate(lacing) if v < 255]
        firsts = [data[body + offsets[k]] if lacing[k] else -1 for k in starts_at if k < nseg]
        if continued:
            firsts[0] = carry  # the packet at segment 0 began on the previous page
        pending = starts_at[-1] < nseg  # the last packet does not end on this page
        carry = firsts.pop() if pending else None
        serial = int.from_bytes(data[s + 14 : s + 18], "little")
        pages.append(Page(_granule(data, s), flags, serial, tuple(firsts)))
    return pages


def header_packets(data: bytes, n: int = 3) -> list[bytes] | None:
    """The first n packets of an Ogg stream from its first bytes; None if they are not all there."""
    packets, cur, s = [], bytearray(), 0
    while len(packets) < n:
        if data[s : s + 4] != b"OggS" or s + HEADER > len(data):
            return None
        nseg = data[s + 26]
        pos = s + HEADER + nseg
        lacing = data[s + HEADER : pos]
        if len(lacing) < nseg:
            return None
        for v in lacing:
            cur += data[pos : pos + v]
            pos += v
            if v < 255:
                packets.append(bytes(cur))
                cur = bytearray()
        if pos > len(data):
            return None
        s = pos
    return packets[:n]


def vorbis_setup(head: bytes) -> VorbisSetup | None:
    """Block sizes and mode table of a Vorbis stream from its first bytes; None if not found.

    The mode table is the last field of the setup header, so it is read backwards from the
    framing bit, as ffmpeg's and liboggz's parsers do: each mode is 41 bits whose window and
    transform types are zero and whose mapping is < 64, preceded by a 6-bit mode count. The
    largest consistent count wins; a wrong guess is caught by the caller's granule check.
    """
    packets = header_packets(head)
    if packets is None:
        return None
    ident, _, setup = packets
    if len(ident) < 30 or not ident.startswith(b"\x01vorbis") or not setup.startswith(
            b"\x05vorbis"):
        return None
    blocksizes = (1 << (ident[28] & 0x0F), 1 << (ident[28] >> 4))
    tail = setup[-400:]  # 64 modes of 41 bits + count + framing: < 340 bytes
    bits = int.from_bytes(tail, "little")
    framing = bits.bit_length() - 1
    if framing < 0:
        return None
    count, m = 0, 1
    while m <= 64 and framing - _MODE_BITS * m - 6 >= 0:
        at = framing - _MODE_BITS * m
        if (bits >> (at + 1)) & 0xFFFFFFFF or (bits >> (at + 33)) & 0xFF > 63:
            break
        if (bits >> (at - 6)) & 0x3F == m - 1:
            count = m
        m += 1
    if count == 0:
        return None
    flags = tuple(bool((bits >> (framing - _MODE_BITS * (count - j))) & 1) for j in range(count))
    return VorbisSetup(blocksizes=blocksizes, long_modes=flags)


def _durations(pages: list[Page], setup: VorbisSetup) -> list[int | None]:
    """Samples each page adds, from its packets' block sizes; None where it cannot be told.

    Each audio packet adds (previous block + its block) / 4 samples; the stream's first audio
    packet (after the header packets) adds none, it only primes the decoder.
    """
    sizes = setup.by_first_byte()
    out: list[int | None] = []
    prev: int | None = None
    for page in pages:
        total: int | None = 0
        for first in page.packets:
            if first == -1:  # an empty packet decodes to nothing
                continue
            size = None if first is None else sizes[first]
            if size is None and first is not None and first & 1:  # a header packet: the
                prev, total = 0, None  # next audio packet starts the stream; nothing to check
                continue
            if size is None or prev is None or total is None:
                total = None
            else:
                total += (prev + size) >> 2 if prev else 0
            prev = size
        out.append(total)
    return out


def vorbis_shortfall(setup: VorbisSetup, tail: bytes,
                     starts: list[int] | None = None) -> int | None:
    """Frames the final page's granule claims beyond what its packets decode to (0 when none).

    None when that cannot be told with certainty (not Vorbis, a chained or multiplexed stream,
    too few pages, or the mode table fails to reproduce an earlier page's granule delta):
    the caller then measures the length by decoding the final page.
    """
    starts = page_chain(tail) if starts is None else starts
    # The last 4 pages: the final one, two to check the mode table on, one for their context.
    pages = parse_pages(tail, starts[-4:]) if len(starts) >= 3 else None
    if pages is None or len({p.serial for p in pages}) != 1:
        return None
    final = pages[-1]
    if not final.flags & _EOS or any(p.flags & _EOS for p in pages[:-1]) or any(
            p.granule < 0 for p in pages):
        return None
    durations = _durations(pages, setup)
    checked = 0
    for k in range(1, len(pages) - 1):  # every inner page whose length is known must agree
        if durations[k] is None:
            continue
        if pages[k].granule - pages[k - 1].granule != durations[k]:
            return None
        checked += 1
    if checked == 0 or durations[-1] is None:
        return None
    return max(0, final.granule - pages[-2].granule - durations[-1])
