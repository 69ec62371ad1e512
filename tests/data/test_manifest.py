"""Manifest scans: good files in, every bad file rejected with its reason, nothing dropped."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pyarrow.parquet as pq
import pytest
import soundfile as sf

from raycodec.data import (
    MANIFEST_SCHEMA,
    REJECT_REASONS,
    InputError,
    build_manifest,
    expand_inputs,
    read_manifest,
)
from tests.data.conftest import write_bad_files


@pytest.fixture(scope="module")
def mixed_dir(tmp_path_factory, good_dir):
    """Good files of every format plus every kind of bad file, and a non-audio .txt."""
    d = tmp_path_factory.mktemp("mixed")
    for f in good_dir.iterdir():
        shutil.copy(f, d / f.name)
    bad = write_bad_files(d / "sub")  # in a subfolder: the scan is recursive
    (d / "notes.txt").write_text("not an input: wrong extension")
    return d, bad


@pytest.fixture(scope="module")
def scan(ray_local, mixed_dir, tmp_path_factory):
    d, _ = mixed_dir
    out = tmp_path_factory.mktemp("scan")
    result = build_manifest([d], out=out / "m.parquet", rejects_out=out / "r.parquet")
    return result, out


def test_good_files_in_manifest_with_correct_metadata(scan, good_dir):
    result, out = scan
    table = pq.read_table(out / "m.parquet")
    assert table.schema.names == MANIFEST_SCHEMA.names
    rows = {os.path.basename(r["path"]): r for r in table.to_pylist()}
    assert set(rows) == {f.name for f in good_dir.iterdir()}
    for name, row in rows.items():
        info = sf.info(str(good_dir / name))
        assert (row["sample_rate"], row["channels"], row["frames"]) == (
            info.samplerate, info.channels, info.frames)
        assert row["duration"] == pytest.approx(info.frames / info.samplerate)
        assert (row["format"], row["subtype"]) == (info.format, info.subtype)
        assert row["size"] == (good_dir / name).stat().st_size
        assert row["weight"] is None
    assert {r["subtype"] for r in rows.values()} == {"PCM_16", "PCM_24", "FLOAT", "VORBIS"}


def test_each_bad_file_rejected_with_its_reason(scan, mixed_dir):
    result, out = scan
    _, bad = mixed_dir
    rejects = pq.read_table(out / "r.parquet").to_pylist()
    got = {r["path"]: r["reason"] for r in rejects}
    assert got == bad  # exactly the bad files, each with the expected reason
    assert all(r["detail"] for r in rejects)
    assert set(got.values()) <= set(REJECT_REASONS)
    # nothing dropped: every audio-extension file is either in the manifest or rejected
    assert result.manifest.num_rows + result.rejects.num_rows == len(
        [f for f in mixed_dir[0].rglob("*") if f.is_file() and f.suffix != ".txt"]
    )
    assert result.ignored == 1  # notes.txt


def test_summary_counts_per_reason(scan):
    result, _ = scan
    text = result.summary()
    assert f"{result.manifest.num_rows} usable" in text
    for reason, n in result.reasons.items():
        assert reason in text and n >= 1
    assert result.reasons["truncated"] == 2


def test_jsonl_input_converted_and_probed(ray_local, tmp_path, good_dir):
    files = sorted(good_dir.iterdir())[:3]
    shutil.copy(files[0], tmp_path / files[0].name)
    lines = [
        json.dumps({"path": files[0].name, "duration": 1.0, "sample_rate": 1, "weight": 2.5}),
        json.dumps({"path": str(files[1]), "duration": 9.0, "sample_rate": 24000}),
        json.dumps({"path": str(tmp_path / "gone.wav"), "duration": 3.0, "sample_rate": 24000}),
        "{not json",
        json.dumps({"duration": 1.0}),
        json.dumps({"path": str(files[2]), "weight": -1}),
    ]
    (tmp_path / "data.jsonl").write_text("\n".join(lines) + "\n")
    result = build_manifest([tmp_path / "data.jsonl"])
    rows = {r["path"]: r for r in result.manifest.to_pylist()}
    # the relative path resolves next to the jsonl; probed fields replace the jsonl's claims
    first = rows[str(tmp_path / files[0].name)]
    assert first["weight"] == 2.5
    assert first["sample_rate"] == sf.info(str(files[0])).samplerate
    assert rows[str(files[1])]["duration"] == pytest.approx(sf.info(str(files[1])).duration)
    reasons = sorted(r["reason"] for r in result.rejects.to_pylist())
    assert reasons == ["bad_manifest_entry"] * 3 + ["unreadable"]


def test_uri_inputs_through_pyarrow_filesystem(ray_local, good_dir):
    uri = f"file://{good_dir}"
    result = build_manifest([uri])
    assert result.rejects.num_rows == 0
    assert result.manifest.num_rows == len(list(good_dir.iterdir()))
    assert all(p.startswith("file://") for p in result.manifest["path"].to_pylist())


def test_expand_inputs_errors_and_dedup(tmp_path, good_dir):
    with pytest.raises(InputError, match="no such file"):
        expand_inputs([tmp_path / "missing"])
    with pytest.raises(InputError, match="glob matched nothing"):
        expand_inputs([str(tmp_path / "*.wav")])
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(InputError, match="no audio files"):
        expand_inputs([tmp_path / "empty_dir"])
    exp = expand_inputs([good_dir, str(good_dir / "*.flac")])
    assert exp.duplicates == len(list(good_dir.glob("*.flac")))
    assert len(exp.candidates) == len(list(good_dir.iterdir()))


def test_read_manifest_validates(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_manifest(tmp_path / "nope.parquet")
    pq.write_table(MANIFEST_SCHEMA.empty_table().drop_columns(["frames"]), tmp_path / "x.parquet")
    with pytest.raises(ValueError, match="frames"):
        read_manifest(tmp_path / "x.parquet")


def _cli(*args, timeout=420):
    return subprocess.run([sys.executable, "-m", "raycodec.data.manifest", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def test_cli_bad_arguments_exit_cleanly(tmp_path):
    r = _cli(tmp_path / "does-not-exist", "--out", tmp_path / "m.parquet")
    assert r.returncode == 2
    assert "error:" in r.stderr and "does-not-exist" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "m.parquet").exists()
    r = _cli(tmp_path, "--out", tmp_path / "m.parquet")  # an empty folder
    assert r.returncode == 2 and "no audio files" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_cli_scan_writes_outputs(tmp_path, good_dir):
    d = tmp_path / "in"
    shutil.copytree(good_dir, d)
    bad = write_bad_files(d / "bad")
    out = tmp_path / "out" / "manifest.parquet"
    r = _cli(d, "--out", out)
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"{len(bad)} rejected" in r.stdout
    assert "probed" in r.stderr and "ETA" in r.stderr  # progress display
    assert "start-up:" in r.stderr and "files/s" in r.stdout  # both figures
    workers = re.search(r"start-up: [\d.]+s \(Ray [\d.]+s, (\d+) workers", r.stderr)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert workers and int(workers[1]) == cpus, r.stderr  # one warm worker per CPU before
    m = pq.read_table(out)
    rejects = pq.read_table(out.with_suffix(".rejects.parquet"))
    assert m.num_rows == len(list(good_dir.iterdir()))
    assert dict(zip(rejects["path"].to_pylist(), rejects["reason"].to_pylist())) == bad


def test_rescan_reuses_unchanged_entries(ray_local, tmp_path, good_dir):
    d = tmp_path / "grow"
    shutil.copytree(good_dir, d)
    first = build_manifest([d], out=tmp_path / "m.parquet")
    assert first.reused == 0 and first.probed == first.manifest.num_rows
    new = d / "new.wav"
    sf.write(new, [0.1] * 8000, 16000)
    changed = sorted(d.glob("*.wav"))[0]
    sf.write(changed, [0.2] * 12000, 16000)  # rewritten: new size and mtime, probed again
    second = build_manifest([d], out=tmp_path / "m.parquet", previous=[tmp_path / "m.parquet"])
    assert second.probed == 2 and second.reused == first.manifest.num_rows - 1
    rows = {r["path"]: r for r in second.manifest.to_pylist()}
    assert rows[str(changed)]["frames"] == 12000 and rows[str(new)]["frames"] == 8000
    fresh = build_manifest([d]).manifest  # the same manifest as a full probe gives
    assert second.manifest.drop_columns(["mtime_ns"]).equals(fresh.drop_columns(["mtime_ns"]))


def test_parquet_manifest_as_input_is_the_manifest(ray_local, tmp_path, good_dir):
    """A manifest named where audio is expected (dataset.path=m.parquet): its files, reused."""
    build_manifest([good_dir], out=tmp_path / "m.parquet")
    result = build_manifest([tmp_path / "m.parquet"])
    assert result.reused == len(list(good_dir.iterdir())) and result.probed == 0
    assert result.manifest.equals(read_manifest(tmp_path / "m.parquet").select(
        result.manifest.column_names))
    pq.write_table(MANIFEST_SCHEMA.empty_table().drop_columns(["frames"]), tmp_path / "x.parquet")
    with pytest.raises(InputError, match="not a usable manifest"):
        expand_inputs([tmp_path / "x.parquet"])


def test_large_manifest_written_as_shards(ray_local, tmp_path, good_dir):
    out = tmp_path / "m.parquet"
    result = build_manifest([good_dir], out=out, shard_rows=4)
    shards = -(-result.manifest.num_rows // 4)
    assert out.is_dir() and len(list(out.glob("part-*.parquet"))) == shards
    assert read_manifest(out).sort_by("path").equals(result.manifest)
    build_manifest([good_dir], out=out)  # back to one file
    assert out.is_file()
