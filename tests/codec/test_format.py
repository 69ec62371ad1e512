"""The .rcdc container: bit packing and header round trips."""

import io

import numpy as np
import pytest

from raycodec.codec.format import (
    BitWriter,
    Header,
    code_bits,
    pack_codes,
    read_header,
    unpack_codes,
)


@pytest.mark.parametrize("bins", [2, 1000, 1024, 4096])
def test_pack_roundtrip(bins):
    codes = np.random.default_rng(0).integers(0, bins, size=(37, 5))
    data = pack_codes(codes, bins)
    assert len(data) == -(-37 * 5 * code_bits(bins) // 8)
    assert np.array_equal(unpack_codes(data, 37, 5, bins), codes)


def test_bitwriter_is_one_continuous_stream():
    rng = np.random.default_rng(1)
    chunks = [rng.integers(0, 1024, size=(n, 3)) for n in (5, 1, 7, 3)]
    f = io.BytesIO()
    w = BitWriter(f, 1024)
    for c in chunks:
        w.write(c)
    w.close()
    whole = np.concatenate(chunks)
    assert f.getvalue() == pack_codes(whole, 1024)
    # Random access at a frame that starts mid-byte (frame 5 -> bit 150).
    got = unpack_codes(f.getvalue()[150 // 8:], 4, 3, 1024, bit_offset=150 % 8)
    assert np.array_equal(got, whole[5:9])


def test_out_of_range_codes_rejected():
    with pytest.raises(ValueError, match="out of range"):
        pack_codes(np.array([[1024]]), 1024)


def test_header_roundtrip():
    h = Header(b"x" * 16, 48000, 2, 320, 150, 8, 1024, 48000, 150, 44100, 1, [0.5, 2.0],
               {"checkpoint": "/ck", "preset": "p"})
    h.payload_size = h.expected_payload_size()
    f = io.BytesIO(h.to_bytes())
    got = read_header(f)
    assert f.tell() == len(h.to_bytes())
    assert got == h
