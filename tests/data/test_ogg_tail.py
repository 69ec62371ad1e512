"""Ogg files whose header claims a few more frames than decode are kept, with their real length;
truncated and damaged files are still rejected."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import soundfile as sf

from raycodec.data import build_manifest, probe_file, segment_dataset, synth_clip
from raycodec.data.probe import ogg_slack_tolerance
from tests.data.oggtools import pages, write_short_tail_ogg

SR = 44100


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    return synth_clip(4.0, SR, 2, seed=5).T


@pytest.fixture(scope="module")
def ogg_dir(tmp_path_factory, clip):
    """short.ogg: 852 frames of slack (kept); lost.ogg: ~20k frames missing (truncated)."""
    d = tmp_path_factory.mktemp("ogg")
    lengths = {name: write_short_tail_ogg(d / f"{name}.ogg", clip, SR, slack=slack)
               for name, slack in (("short", 900), ("lost", 20000), ("exact", 0))}
    return d, lengths


def test_recipe_reproduces_a_header_longer_than_the_data(ogg_dir):
    d, lengths = ogg_dir
    header, decodable = lengths["short"]
    assert 0 < header - decodable <= ogg_slack_tolerance(header)
    with sf.SoundFile(d / "short.ogg") as f:  # the symptom users saw: the last 4096 frames
        f.seek(f.frames - 4096)  # come back short, so the file looked truncated
        assert len(f.read(4096)) == 4096 - (header - decodable)
    assert lengths["exact"][0] == lengths["exact"][1]
    assert lengths["lost"][0] - lengths["lost"][1] > ogg_slack_tolerance(lengths["lost"][0])


def test_probe_measures_the_decodable_length(ogg_dir):
    d, lengths = ogg_dir
    row = probe_file(str(d / "short.ogg"))
    assert row["ok"] and row["frames"] == lengths["short"][1]
    assert row["duration"] == pytest.approx(lengths["short"][1] / SR)
    assert row["note"].startswith("length_corrected")
    exact = probe_file(str(d / "exact.ogg"))
    assert exact["ok"] and exact["frames"] == lengths["exact"][0] and exact["note"] is None
    lost = probe_file(str(d / "lost.ogg"))
    assert not lost["ok"] and lost["reason"] == "truncated"


def test_damaged_middle_page_rejected_by_full_check(tmp_path, clip):
    path = tmp_path / "hole.ogg"
    sf.write(path, clip, SR, format="OGG", subtype="VORBIS")
    data = bytearray(path.read_bytes())
    offset, length, _ = pages(bytes(data))[len(pages(bytes(data))) // 2]
    data[offset + 40 : offset + length - 10] = bytes(length - 50)  # checksum fails: page lost
    path.write_bytes(bytes(data))
    row = probe_file(str(path), full_check=True)
    assert not row["ok"] and row["reason"] == "truncated", row


def test_scan_keeps_short_tail_files_as_a_warning(ray_local, ogg_dir):
    d, lengths = ogg_dir
    result = build_manifest([d])
    rows = {r["path"].rsplit("/", 1)[1]: r for r in result.manifest.to_pylist()}
    assert set(rows) == {"short.ogg", "exact.ogg"}
    assert rows["short.ogg"]["frames"] == lengths["short"][1]
    assert result.warnings == {"length_corrected": 1}
    assert "length_corrected" in result.summary()
    assert result.reasons == {"truncated": 1}


def test_segments_never_read_past_the_decodable_end(ray_local, ogg_dir):
    d, lengths = ogg_dir
    m = build_manifest([d / "short.ogg"]).manifest
    # 1.9 s segments of a ~2.1 s file: every crop ends in the last 0.2 s, where the slack is
    kw = dict(segment_duration=1.9, sample_rate=24000, channels=1, num_samples=48, batch_size=16)
    batches = list(segment_dataset(m, **kw).iter_batches(batch_size=None))
    assert sum(int(b["read_failures"].sum()) for b in batches) == 0
    assert sum(len(b["audio"]) for b in batches) == 48
    # the header's length would make those reads fail (the reader redraws and counts them)
    header = m.set_column(m.schema.get_field_index("frames"), "frames",
                          pa.array([lengths["short"][0]], pa.int64()))
    failed = sum(int(b["read_failures"].sum())
                 for b in segment_dataset(header, **kw).iter_batches(batch_size=None))
    assert failed > 0
