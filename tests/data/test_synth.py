"""The embedded synthetic dataset: deterministic, structured clips and a varied collection."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from raycodec.data import collection_plan, generate_collection, synth_clip
from raycodec.data.synth import FORMATS, SAMPLE_RATES


@pytest.mark.parametrize("channels", [1, 2])
def test_synth_clip_shape_dtype_peak(channels):
    x = synth_clip(1.5, sample_rate=22050, channels=channels, seed=4)
    assert x.shape == (channels, round(1.5 * 22050))
    assert x.dtype == np.float32
    assert 0.5 <= np.abs(x).max() <= 0.9 + 1e-6
    assert np.isfinite(x).all()


def test_synth_clip_deterministic_and_seed_dependent():
    a = synth_clip(2.0, seed=7)
    np.testing.assert_array_equal(a, synth_clip(2.0, seed=7))
    assert not np.allclose(a, synth_clip(2.0, seed=8))


def test_synth_clip_has_structure():
    # A codec must learn events: loudness varies over time (events, gaps), spectrum is not flat.
    x = synth_clip(8.0, sample_rate=24000, seed=0)[0]
    frames = x[: len(x) // 1200 * 1200].reshape(-1, 1200)  # 50 ms frames
    rms = np.sqrt((frames**2).mean(axis=1))
    assert (rms < 1e-4).any(), "no silence gap"
    assert rms.max() > 0.1 and np.percentile(rms, 50) > 0.01  # mostly events, some gaps
    spec = np.abs(np.fft.rfft(x))
    assert spec.max() > 50 * np.median(spec)  # tonal peaks, not white noise


def test_synth_clip_rejects_bad_arguments():
    with pytest.raises(ValueError, match="duration"):
        synth_clip(0.0)
    with pytest.raises(ValueError, match="channels"):
        synth_clip(1.0, channels=0)


def test_collection_plan_covers_formats_rates_channels_and_budget():
    plan = collection_plan(minutes=3.0, seed=0, min_duration=0.2, max_duration=60.0)
    assert {(p["format"], p["subtype"]) for p in plan} == {f[:2] for f in FORMATS}
    assert {p["sample_rate"] for p in plan} == set(SAMPLE_RATES)
    assert {(p["format"], p["subtype"], p["channels"]) for p in plan} == {
        (f[0], f[1], c) for f in FORMATS for c in (1, 2)
    }
    durations = [p["duration"] for p in plan]
    assert min(durations) == pytest.approx(0.2) and max(durations) == pytest.approx(60.0)
    assert sum(durations) == pytest.approx(180.0, abs=0.5)
    assert plan == collection_plan(minutes=3.0, seed=0)


def test_generate_collection_writes_readable_files(good_dir):
    files = sorted(p for p in good_dir.iterdir())
    assert len(files) >= 12
    infos = [sf.info(str(f)) for f in files]
    assert {(i.format, i.subtype, i.channels) for i in infos} == {
        (f[0], f[1], c) for f in FORMATS for c in (1, 2)
    }
    assert {i.samplerate for i in infos} == set(SAMPLE_RATES)
    # float wav files hold exactly the synth clip of their plan entry
    plan = collection_plan(minutes=0.3, seed=1, min_duration=0.6, max_duration=2.0)
    spec = next(p for p in plan if p["subtype"] == "FLOAT")
    data, sr = sf.read(str(good_dir / spec["name"]), dtype="float32", always_2d=True)
    assert sr == spec["sample_rate"]
    expected = synth_clip(spec["duration"], spec["sample_rate"], spec["channels"], spec["seed"])
    np.testing.assert_array_equal(data.T, expected)


def test_synth_cli(tmp_path):
    out = tmp_path / "coll"
    r = subprocess.run(
        [sys.executable, "-m", "raycodec.data.synth", str(out), "--minutes", "0.05",
         "--min-duration", "0.2", "--max-duration", "1.0"],
        capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "wrote" in r.stdout
    assert len(list(out.iterdir())) >= 3
    bad = subprocess.run(
        [sys.executable, "-m", "raycodec.data.synth", str(out), "--minutes", "-1"],
        capture_output=True, text=True, timeout=120,
    )
    assert bad.returncode == 2
    assert "error:" in bad.stderr and "Traceback" not in bad.stderr


def test_generate_collection_is_deterministic(tmp_path):
    kw = dict(minutes=0.02, seed=3, min_duration=0.2, max_duration=0.5)
    a = generate_collection(tmp_path / "a", **kw)
    b = generate_collection(tmp_path / "b", **kw)
    assert [p.name for p in a] == [p.name for p in b]
    for pa_, pb_ in zip(a, b):
        np.testing.assert_array_equal(sf.read(str(pa_))[0], sf.read(str(pb_))[0])
