"""Fixtures for the data tests: a small varied collection plus deliberately broken files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from raycodec.data import generate_collection, synth_clip

# name -> expected reject reason
BAD_FILES = {
    "corrupt.flac": "corrupt",
    "corrupt_header.wav": "corrupt",
    "empty.wav": "empty",
    "truncated.wav": "truncated",
    "truncated.flac": "truncated",
    "text_named.wav": "not_audio",
    "nan_samples.wav": "nan_or_inf",
    "zero_frames.wav": "zero_frames",
    "movie.m4a": "unsupported_format",
}


def write_bad_files(folder: Path) -> dict[str, str]:
    """Write one file per failure mode into folder; returns {absolute path: expected reason}."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    x = synth_clip(1.0, 16000, 1, seed=3).T
    sf.write(folder / "_good.wav", x, 16000, subtype="PCM_16")
    sf.write(folder / "_good.flac", x, 16000, subtype="PCM_16")
    wav, flac = (folder / "_good.wav").read_bytes(), (folder / "_good.flac").read_bytes()
    (folder / "_good.wav").unlink()
    (folder / "_good.flac").unlink()
    garbage = rng.integers(0, 256, 4000, dtype=np.uint8).tobytes()
    (folder / "corrupt.flac").write_bytes(b"fLaC" + garbage)
    (folder / "corrupt_header.wav").write_bytes(wav[:12] + garbage[:400] + wav[412:])
    (folder / "empty.wav").write_bytes(b"")
    (folder / "truncated.wav").write_bytes(wav[: len(wav) // 2])
    (folder / "truncated.flac").write_bytes(flac[: len(flac) // 2])
    (folder / "text_named.wav").write_text("this is a text file, not audio\n" * 20)
    nan = x.copy()
    nan[100:110] = np.nan
    sf.write(folder / "nan_samples.wav", nan, 16000, subtype="FLOAT")
    sf.write(folder / "zero_frames.wav", np.zeros((0, 1), np.float32), 16000, subtype="PCM_16")
    (folder / "movie.m4a").write_bytes(b"\x00\x00\x00\x20ftypM4A \x00\x00\x02\x00" + garbage)
    return {os.path.abspath(folder / name): reason for name, reason in BAD_FILES.items()}


@pytest.fixture(scope="session")
def good_dir(tmp_path_factory) -> Path:
    """Short files covering every format/subtype, mono and stereo, and all five rates."""
    d = tmp_path_factory.mktemp("good")
    generate_collection(d, minutes=0.3, seed=1, min_duration=0.6, max_duration=2.0)
    return d


@pytest.fixture(scope="session")
def bad_files(tmp_path_factory) -> dict[str, str]:
    """{path: expected reject reason} for one broken file per failure mode."""
    return write_bad_files(tmp_path_factory.mktemp("bad"))


def write_tone(path: Path, *, freq: float, sr: int, seconds: float, channels: int = 1,
               subtype: str | None = None) -> Path:
    """A sine of `freq` Hz at 0.5 amplitude (the same in every channel)."""
    t = np.arange(int(seconds * sr)) / sr
    x = (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    sf.write(path, np.repeat(x[:, None], channels, axis=1), sr, subtype=subtype)
    return path
