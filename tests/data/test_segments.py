"""Training segments: shapes, determinism, resampling, channels, sharding, read failures."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
import torchaudio

from raycodec.data import (
    build_manifest,
    eligible_files,
    eval_segment_dataset,
    plan_segments,
    segment_dataset,
    segment_dataset_from_config,
    segment_kwargs_from_config,
)
from raycodec.data.reader import resample
from tests.data.conftest import write_tone

SEG = 0.25  # seconds: short segments keep the tests fast


@pytest.fixture(scope="module")
def manifest(ray_local, good_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("seg") / "manifest.parquet"
    build_manifest([good_dir], out=path)
    return path


def _by_id(ds) -> dict[int, np.ndarray]:
    rows = ds.take_all()
    return {int(r["segment_id"]): r["audio"] for r in rows}


@pytest.mark.parametrize(("sample_rate", "channels"), [(24000, 1), (16000, 2)])
def test_segment_shape_rate_channels(manifest, sample_rate, channels):
    ds = segment_dataset(manifest, segment_duration=SEG, sample_rate=sample_rate,
                         channels=channels, num_samples=24, seed=0)
    batches = list(ds.iter_torch_batches(batch_size=8))
    assert sum(len(b["audio"]) for b in batches) == 24
    for b in batches:
        assert b["audio"].dtype == torch.float32
        assert tuple(b["audio"].shape[1:]) == (channels, int(SEG * sample_rate))
        assert torch.isfinite(b["audio"]).all()
        assert (b["read_failures"] == 0).all()
    audio = torch.cat([b["audio"] for b in batches])
    assert audio.abs().amax(dim=(1, 2)).min() > 0  # real audio, not padding


def test_determinism_by_seed_and_epoch(manifest):
    kw = dict(segment_duration=SEG, sample_rate=24000, channels=1, num_samples=16)
    a = _by_id(segment_dataset(manifest, seed=3, epoch=0, **kw))
    b = _by_id(segment_dataset(manifest, seed=3, epoch=0, **kw))
    c = _by_id(segment_dataset(manifest, seed=3, epoch=1, **kw))
    d = _by_id(segment_dataset(manifest, seed=4, epoch=0, **kw))
    assert sorted(a) == list(range(16))
    for i in a:
        np.testing.assert_array_equal(a[i], b[i])
    assert sum(not np.allclose(a[i], c[i]) for i in a) >= 14  # epochs draw anew
    assert sum(not np.allclose(a[i], d[i]) for i in a) >= 14  # so do seeds


def test_eval_dataset_is_fixed_across_epochs(manifest):
    kw = dict(segment_duration=SEG, sample_rate=24000, channels=1, num_samples=12, seed=1)
    a = _by_id(eval_segment_dataset(manifest, epoch=0, **kw))
    b = _by_id(eval_segment_dataset(manifest, epoch=5, **kw))
    for i in a:
        np.testing.assert_array_equal(a[i], b[i])
    files = eligible_files(manifest, segment_duration=SEG)
    p0 = plan_segments(files, segment_duration=SEG, num_samples=12, seed=1, epoch=0, shuffle=False)
    p5 = plan_segments(files, segment_duration=SEG, num_samples=12, seed=1, epoch=5, shuffle=False)
    assert p0.equals(p5)


def test_draws_proportional_to_duration_times_weight(tmp_path, ray_local):
    import pyarrow as pa

    table = pa.table({"path": ["a", "b", "c", "short"], "sample_rate": [24000] * 4,
                      "channels": [1] * 4, "frames": [240000, 240000, 480000, 2400],
                      "duration": [10.0, 10.0, 20.0, 0.1],
                      "weight": [1.0, 3.0, None, 1.0]})
    files = eligible_files(table, segment_duration=1.0, min_segment_ratio=0.5)
    assert list(files["path"]) == ["a", "b", "c"]  # 0.1 s < 0.5 x 1 s: never drawn
    plan = plan_segments(files, segment_duration=1.0, num_samples=20000, seed=0)
    counts = {p: plan["path"].to_pylist().count(p) for p in "abc"}
    # probabilities 10 : 30 : 20 (duration x weight; null weight = 1)
    assert counts["a"] / 20000 == pytest.approx(1 / 6, abs=0.02)
    assert counts["b"] / 20000 == pytest.approx(3 / 6, abs=0.02)
    offsets = np.asarray(plan["offset"])
    assert offsets.min() >= 0 and offsets.max() <= 480000 - 24000
    assert offsets.max() > 0.9 * (480000 - 24000)  # uniform over the whole file


@pytest.mark.parametrize("src_rate", [16000, 44100, 48000])
def test_resampling_keeps_a_sine_frequency(ray_local, tmp_path, src_rate):
    write_tone(tmp_path / "tone.flac", freq=1000.0, sr=src_rate, seconds=3.0, subtype="PCM_24")
    build_manifest([tmp_path], out=tmp_path / "m.parquet")
    ds = segment_dataset(tmp_path / "m.parquet", segment_duration=0.5, sample_rate=24000,
                         channels=1, num_samples=4, seed=0)
    for row in ds.take_all():
        x = row["audio"][0]
        assert x.shape == (12000,)
        spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
        peak_hz = np.argmax(spectrum) * 24000 / len(x)
        assert peak_hz == pytest.approx(1000.0, abs=2 * 24000 / len(x))
        assert np.sqrt(np.mean(x[500:-500] ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.02)


@pytest.mark.parametrize(("src", "dst"), [(44100, 24000), (48000, 24000), (16000, 24000),
                                          (22050, 16000)])
def test_resample_matches_torchaudio(src, dst):
    x = torch.randn(5, 3001)
    ref = torchaudio.functional.resample(x, src, dst)
    got = resample(x, src, dst)
    assert got.shape == ref.shape
    assert torch.allclose(got, ref, atol=1e-4)


def test_channel_conversion_and_padding(ray_local, tmp_path):
    import soundfile as sf

    t = np.arange(24000) / 24000
    left, right = 0.6 * np.sin(2 * np.pi * 300 * t), 0.2 * np.sin(2 * np.pi * 700 * t)
    sf.write(tmp_path / "stereo.wav", np.stack([left, right], 1), 24000, subtype="FLOAT")
    build_manifest([tmp_path], out=tmp_path / "s.parquet")
    kw = dict(segment_duration=1.0, sample_rate=24000, num_samples=2, return_info=True)
    mono = segment_dataset(tmp_path / "s.parquet", channels=1, **kw).take_all()[0]
    np.testing.assert_allclose(mono["audio"][0], (left + right) / 2, atol=1e-6)

    short = tmp_path / "short"
    short.mkdir()
    write_tone(short / "mono.wav", freq=440.0, sr=24000, seconds=0.7, subtype="FLOAT")
    write_tone(short / "tiny.wav", freq=440.0, sr=24000, seconds=0.3, subtype="FLOAT")
    build_manifest([short], out=tmp_path / "m.parquet")
    rows = segment_dataset(tmp_path / "m.parquet", channels=2, **kw).take_all()
    assert all(r["path"].endswith("mono.wav") for r in rows)  # 0.3 s < 0.5 x 1 s: skipped
    audio = rows[0]["audio"]
    assert audio.shape == (2, 24000)
    np.testing.assert_array_equal(audio[0], audio[1])  # mono duplicated
    assert np.abs(audio[:, :16800]).max() > 0.4
    assert np.abs(audio[:, 16800:]).max() == 0.0  # zero padding after the 0.7 s file


def test_streaming_split_two_workers_disjoint_equal(manifest):
    ds = segment_dataset(manifest, segment_duration=SEG, sample_rate=24000, channels=1,
                         num_samples=40, seed=2, batch_size=4)
    shards = ds.streaming_split(2, equal=True)
    seen: list[list[int]] = [[], []]

    def consume(rank: int) -> None:
        for batch in shards[rank].iter_torch_batches(batch_size=4, drop_last=True):
            assert batch["audio"].shape[1:] == (1, int(SEG * 24000))
            seen[rank].extend(batch["segment_id"].tolist())

    threads = [threading.Thread(target=consume, args=(r,)) for r in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(seen[0]) == len(seen[1]) == 20
    assert not set(seen[0]) & set(seen[1])
    assert set(seen[0]) | set(seen[1]) == set(range(40))


def test_deleted_or_truncated_file_is_replaced_and_counted(ray_local, tmp_path):
    for i, sr in enumerate([16000, 24000, 44100]):
        write_tone(tmp_path / f"f{i}.wav", freq=300.0 + 100 * i, sr=sr, seconds=2.0)
    build_manifest([tmp_path], out=tmp_path / "m.parquet")
    # after the scan: f1 is deleted, f2 loses all but its first 0.5 s (44.1 kHz, 16-bit mono)
    gone, cut = str(tmp_path / "f1.wav"), str(tmp_path / "f2.wav")
    (tmp_path / "f1.wav").unlink()
    data = (tmp_path / "f2.wav").read_bytes()
    (tmp_path / "f2.wav").write_bytes(data[: 44 + 2 * 22050])
    kw = dict(segment_duration=0.5, sample_rate=24000, channels=1, num_samples=40, seed=5)
    files = eligible_files(tmp_path / "m.parquet", segment_duration=0.5)
    plan = plan_segments(files, segment_duration=0.5, num_samples=40, seed=5).to_pylist()
    doomed = sum(p["path"] == gone or (p["path"] == cut and p["offset"] > 0) for p in plan)
    assert sum(p["path"] == gone for p in plan) > 0 and sum(p["path"] == cut for p in plan) > 0
    rows = segment_dataset(tmp_path / "m.parquet", return_info=True, **kw).take_all()
    assert len(rows) == 40  # the run survives: every failed draw was replaced
    assert all(r["path"] != gone for r in rows)
    assert all(np.abs(r["audio"]).max() > 0.1 for r in rows)
    assert sum(int(r["read_failures"]) for r in rows) >= doomed


def test_config_builder(manifest):
    cfg = {"sample_rate": 16000, "channels": 1,
           "dataset": {"segment_duration": SEG, "num_samples": 10, "min_segment_ratio": 0.5,
                       "manifest": str(manifest), "valid": {"num_samples": 6}}}
    kw = segment_kwargs_from_config(cfg, split="train")
    assert kw == {"segment_duration": SEG, "num_samples": 10, "min_segment_ratio": 0.5,
                  "sample_rate": 16000, "channels": 1, "shuffle": True}
    assert segment_kwargs_from_config(cfg, split="valid")["num_samples"] == 6
    assert segment_kwargs_from_config(cfg, split="valid")["shuffle"] is False
    ds = segment_dataset_from_config(cfg, split="valid")
    assert ds.count() == 6
    with pytest.raises(ValueError, match="dataset.segment_duration"):
        segment_kwargs_from_config({"dataset": {"num_samples": 3}, "sample_rate": 1, "channels": 1})
    from omegaconf import OmegaConf

    assert segment_kwargs_from_config(OmegaConf.create(cfg)) == kw


def test_bad_arguments_raise_clear_errors(manifest):
    with pytest.raises(ValueError, match="no file in the manifest"):
        segment_dataset(manifest, segment_duration=600.0, sample_rate=24000, channels=1,
                        num_samples=4)
    with pytest.raises(ValueError, match="num_samples"):
        segment_dataset(manifest, segment_duration=SEG, sample_rate=24000, channels=1,
                        num_samples=0)
    with pytest.raises(FileNotFoundError):
        segment_dataset("/nonexistent/m.parquet", segment_duration=SEG, sample_rate=24000,
                        channels=1, num_samples=4)
