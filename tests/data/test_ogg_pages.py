"""The Vorbis final page's length counted from its packets' block sizes (the probe's fast path)
agrees with a full decode; when it cannot be told, the probe still measures it by decoding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from raycodec.data import probe_file, synth_clip
from raycodec.data.ogg import final_pages, vorbis_setup, vorbis_shortfall
from tests.data.oggtools import pages, set_granule, write_short_tail_ogg

SR = 44100


def _ends(path: Path) -> tuple[bytes, bytes]:
    data = path.read_bytes()
    return data[: 1 << 16], data


def _decoded(path: Path) -> int:
    with sf.SoundFile(path) as f:
        return len(f.read(dtype="float32"))


@pytest.fixture(scope="module")
def long_oggs(tmp_path_factory) -> dict[str, tuple[Path, int, int]]:
    """6 s files (the tail read starts > 2 s in) whose final page is longer than the 4096
    frames read: {name: (path, header frames, decodable frames)}."""
    d = tmp_path_factory.mktemp("long_ogg")
    out = {}
    for channels, sr in ((2, SR), (1, 22050)):
        x = synth_clip(6.0, sr, channels, seed=11).T
        for slack in (0, 700, 20000):
            path = d / f"c{channels}_s{slack}.ogg"
            header, decodable = write_short_tail_ogg(path, x, sr, slack=slack, last_page=12000)
            out[path.stem] = (path, header, decodable)
    return out


def test_short_final_page_is_measured_by_the_tail_read(tmp_path):
    # The final page claims < 4096 frames: the loop-sized tail read starts before it, where
    # libsndfile seeks exactly, so the read itself measures the decodable length.
    x = synth_clip(6.0, SR, 2, seed=12).T
    path = tmp_path / "short_final.ogg"
    header, decodable = write_short_tail_ogg(path, x, SR, slack=700, last_page=1500)
    end = final_pages(lambda n: path.read_bytes()[-n:], path.stat().st_size)
    assert header - end.prev_granule < 4096 and header > decodable
    row = probe_file(str(path))
    assert row["ok"] and row["frames"] == decodable == _decoded(path), row


def test_mode_table_of_libsndfile_vorbis(tmp_path):
    path = tmp_path / "a.ogg"
    sf.write(path, synth_clip(1.0, SR, 2, seed=1).T, SR, format="OGG", subtype="VORBIS")
    setup = vorbis_setup(_ends(path)[0])
    assert setup is not None and setup.blocksizes[0] < setup.blocksizes[1]
    assert setup.long_modes == (False, True)  # libvorbis: mode 0 short blocks, mode 1 long
    assert vorbis_setup(b"OggS" + bytes(100)) is None  # not a whole Vorbis header: no guess


def test_shortfall_from_packets_matches_a_full_decode(long_oggs):
    for name, (path, header, decodable) in long_oggs.items():
        head, data = _ends(path)
        end = final_pages(lambda n, d=data: d[-n:], len(data))
        assert end is not None and header - end.prev_granule > 4096, name  # a long final page
        setup = vorbis_setup(head)
        assert vorbis_shortfall(setup, end.tail, end.starts) == header - decodable, name


def test_probe_on_long_files_takes_the_decodable_length(long_oggs):
    for name, (path, header, decodable) in long_oggs.items():
        row = probe_file(str(path))
        assert _decoded(path) == decodable
        if name.endswith("s20000"):  # pages lost, not slack: still a reject
            assert not row["ok"] and row["reason"] == "truncated", row
            continue
        assert row["ok"] and row["frames"] == decodable, row
        assert (row["note"] is not None) == (header != decodable), row
        full = probe_file(str(path), full_check=True)
        assert (full["ok"], full["frames"]) == (True, decodable)


def test_unverifiable_mode_table_falls_back_to_decoding(long_oggs, tmp_path):
    path, header, decodable = long_oggs["c2_s700"]
    data = path.read_bytes()
    offset, _, granule = pages(data)[-3]  # two pages before the end: breaks the check only
    bad = tmp_path / "bad_granule.ogg"
    bad.write_bytes(set_granule(data, offset, granule + 1))
    head, data = _ends(bad)
    end = final_pages(lambda n: data[-n:], len(data))
    assert vorbis_shortfall(vorbis_setup(head), end.tail, end.starts) is None
    row = probe_file(str(bad))
    assert row["ok"] and row["frames"] == _decoded(bad) == decodable, row


def test_head_decode_skipped_only_for_compressed_files(tmp_path):
    x = np.zeros((SR * 3, 1), np.float32)
    x[10] = np.nan  # in the first frames only: the tail read does not see it
    sf.write(tmp_path / "nan.wav", x, SR, subtype="FLOAT")
    assert probe_file(str(tmp_path / "nan.wav"))["reason"] == "nan_or_inf"  # PCM: head kept
    assert probe_file(str(tmp_path / "nan.wav"), full_check=True)["reason"] == "nan_or_inf"
