"""The `.rcdc` compressed-audio container (version 1). Byte layout, all little-endian:

    offset  size  field
    0       4     magic b"RCDC"
    4       2     version (1)
    6       4     header_size: bytes before the payload (fixed part + scales + hint + crc)
    10      16    model identity: BLAKE2b-128 of the model settings and weights
    26      4     sample_rate of the model (Hz)
    30      2     channels of the model
    32      4     hop_length (samples per frame)
    36      4     frame_rate (frames per second, ceil(sample_rate / hop_length))
    40      2     n_q: codebooks stored per frame
    42      4     bins: codebook size
    46      1     bits per code = ceil(log2(bins))
    47      8     length: samples (at the model rate) of the decoded audio
    55      8     num_frames
    63      4     original sample rate of the input (decompress resamples back to it)
    67      2     original channels of the input
    71      4     n_scales: per-segment scales (renormalizing models; 0 otherwise)
    75      8     payload_size (bytes)
    83      4     payload CRC32
    87      2     hint_size: bytes of the UTF-8 JSON model hint that follows the scales
    89      4*n   scales (float32), one per segment in order
    ..      h     hint: {"checkpoint": path, "preset": name} used when no checkpoint is given
    ..      4     CRC32 of every header byte before it
    header_size   payload: codes bit-packed LSB-first at `bits` bits per code, frame-major
                  (frame 0 codebooks 0..n_q-1, then frame 1, ...), zero-padded to a byte.

The payload is `ceil(num_frames * n_q * bits / 8)` bytes, so the file size is the nominal
bitrate (n_q * bits * frame_rate) times the duration plus the header. See FORMAT.md.
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from dataclasses import dataclass, field

import numpy as np

MAGIC = b"RCDC"
VERSION = 1
_FIXED = struct.Struct("<4sHI16sIHIIHIBQQIHIQIH")


def code_bits(bins: int) -> int:
    """Bits per code: ceil(log2(bins))."""
    return max(1, math.ceil(math.log2(bins)))


@dataclass
class Header:
    """Everything in an `.rcdc` header."""

    model_id: bytes
    sample_rate: int
    channels: int
    hop_length: int
    frame_rate: int
    n_q: int
    bins: int
    length: int
    num_frames: int
    orig_sample_rate: int
    orig_channels: int
    scales: list[float] = field(default_factory=list)
    hint: dict = field(default_factory=dict)
    payload_size: int = 0
    payload_crc: int = 0

    @property
    def bits(self) -> int:
        """Bits per code."""
        return code_bits(self.bins)

    def expected_payload_size(self) -> int:
        """Bytes of bit-packed codes for num_frames x n_q codes."""
        return math.ceil(self.num_frames * self.n_q * self.bits / 8)

    def to_bytes(self) -> bytes:
        """Serialise, including the trailing header CRC."""
        hint = json.dumps(self.hint, sort_keys=True).encode()
        scales = np.asarray(self.scales, dtype="<f4").tobytes()
        size = _FIXED.size + len(scales) + len(hint) + 4
        fixed = _FIXED.pack(MAGIC, VERSION, size, self.model_id, self.sample_rate, self.channels,
                            self.hop_length, self.frame_rate, self.n_q, self.bins, self.bits,
                            self.length, self.num_frames, self.orig_sample_rate,
                            self.orig_channels, len(self.scales), self.payload_size,
                            self.payload_crc, len(hint))
        body = fixed + scales + hint
        return body + struct.pack("<I", zlib.crc32(body))


def read_header(f) -> Header:
    """Parse and validate a header from a binary file object positioned at its start."""
    head = f.read(_FIXED.size)
    if len(head) < 4 or head[:4] != MAGIC:
        raise ValueError("not a raycodec .rcdc file (bad magic)")
    if len(head) < 6:
        raise ValueError("truncated .rcdc header")
    (version,) = struct.unpack_from("<H", head, 4)
    if version != VERSION:
        raise ValueError(f"unsupported .rcdc version {version} (this raycodec reads {VERSION})")
    if len(head) < _FIXED.size:
        raise ValueError("truncated .rcdc header")
    (_, _, size, model_id, sr, ch, hop, fr, n_q, bins, bits, length, frames, osr, och,
     n_scales, psize, pcrc, hint_size) = _FIXED.unpack(head)
    rest = f.read(4 * n_scales + hint_size + 4)
    if len(rest) < 4 * n_scales + hint_size + 4 or size != _FIXED.size + len(rest):
        raise ValueError("truncated .rcdc header")
    (crc,) = struct.unpack("<I", rest[-4:])
    if zlib.crc32(head + rest[:-4]) != crc:
        raise ValueError("corrupted .rcdc header (CRC mismatch)")
    if bins < 2 or bits != code_bits(bins) or n_q < 1 or sr < 1 or ch < 1:
        raise ValueError("corrupted .rcdc header (inconsistent fields)")
    scales = np.frombuffer(rest[: 4 * n_scales], dtype="<f4").tolist()
    hint = json.loads(rest[4 * n_scales: 4 * n_scales + hint_size] or b"{}")
    header = Header(model_id, sr, ch, hop, fr, n_q, bins, length, frames, osr, och, scales, hint,
                    psize, pcrc)
    if psize != header.expected_payload_size():
        raise ValueError("corrupted .rcdc header (payload size does not match the frames)")
    return header


def code_bit_array(codes: np.ndarray, bins: int) -> np.ndarray:
    """Codes [frames, n_q] (ints in [0, bins)) -> flat uint8 bit array, LSB-first, frame-major."""
    bits = code_bits(bins)
    values = np.ascontiguousarray(codes, dtype=np.int64).reshape(-1)
    if values.size and (values.min() < 0 or values.max() >= bins):
        raise ValueError(f"codes out of range [0, {bins})")
    shifts = np.arange(bits, dtype=np.uint32)
    return ((values.astype(np.uint32)[:, None] >> shifts) & 1).astype(np.uint8).reshape(-1)


def pack_codes(codes: np.ndarray, bins: int) -> bytes:
    """Codes [frames, n_q] -> bit-packed bytes (zero-padded to a whole byte)."""
    return np.packbits(code_bit_array(codes, bins), bitorder="little").tobytes()


def unpack_codes(data: bytes, frames: int, n_q: int, bins: int, bit_offset: int = 0) -> np.ndarray:
    """Inverse of `pack_codes`: bytes -> codes [frames, n_q] (int64), skipping `bit_offset` bits."""
    bits = code_bits(bins)
    count = frames * n_q * bits
    if len(data) * 8 < bit_offset + count:
        raise ValueError("truncated .rcdc payload")
    flat = np.unpackbits(np.frombuffer(data, dtype=np.uint8), count=bit_offset + count,
                         bitorder="little")[bit_offset:]
    weights = np.uint32(1) << np.arange(bits, dtype=np.uint32)
    values = flat.reshape(-1, bits).astype(np.uint32) @ weights
    return values.astype(np.int64).reshape(frames, n_q)


class BitWriter:
    """Appends code chunks to a file as one continuous bitstream (chunks need not end on a byte)."""

    def __init__(self, f, bins: int):
        self.f, self.bins = f, bins
        self.pending = np.zeros(0, dtype=np.uint8)
        self.crc, self.size = 0, 0

    def _emit(self, bits: np.ndarray) -> None:
        data = np.packbits(bits, bitorder="little").tobytes()
        self.f.write(data)
        self.crc = zlib.crc32(data, self.crc)
        self.size += len(data)

    def write(self, codes: np.ndarray) -> None:
        """Append codes [frames, n_q]."""
        bits = np.concatenate([self.pending, code_bit_array(codes, self.bins)])
        whole = len(bits) - len(bits) % 8
        self._emit(bits[:whole])
        self.pending = bits[whole:]

    def close(self) -> None:
        """Flush the last partial byte (zero-padded)."""
        if len(self.pending):
            self._emit(self.pending)
            self.pending = np.zeros(0, dtype=np.uint8)
