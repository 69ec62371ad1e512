"""Embedded default dataset: deterministic synthetic audio with structure a codec must learn.

`synth_clip` mixes musical and noisy events (harmonic tones with envelopes and vibrato, chords,
noise bursts, chirps, percussive hits, silence gaps). `generate_collection` writes a small,
varied collection of files (wav/flac/ogg, mono/stereo, 16-48 kHz, int/float subtypes) used by
the demo, the tests and the benchmark.

CLI: ``python -m raycodec.data.synth OUT_DIR --minutes 10 --seed 0``
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLE_RATES = (16000, 22050, 24000, 44100, 48000)
# (container, subtype, extension); ogg only carries vorbis, flac has no float subtype.
FORMATS = (
    ("WAV", "PCM_16", "wav"),
    ("WAV", "PCM_24", "wav"),
    ("WAV", "FLOAT", "wav"),
    ("FLAC", "PCM_16", "flac"),
    ("FLAC", "PCM_24", "flac"),
    ("OGG", "VORBIS", "ogg"),
)
EVENT_KINDS = ("tone", "chord", "noise", "chirp", "hit", "silence")
_EVENT_PROBS = (0.27, 0.17, 0.12, 0.13, 0.17, 0.14)


def _envelope(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Attack-decay-sustain-release envelope of n samples."""
    t = np.arange(n) / sr
    dur = n / sr
    attack = min(rng.uniform(0.005, 0.08), dur / 4)
    release = min(rng.uniform(0.02, 0.3), dur / 3)
    sustain = rng.uniform(0.4, 0.9)
    env = np.minimum(1.0, t / max(attack, 1e-4))
    decay = sustain + (1 - sustain) * np.exp(-np.maximum(t - attack, 0) / rng.uniform(0.05, 0.4))
    env = env * decay
    tail = np.clip((dur - t) / max(release, 1e-4), 0.0, 1.0)
    return env * tail


def _harmonic(n: int, sr: int, f0: float, rng: np.random.Generator) -> np.ndarray:
    """Harmonic tone with vibrato and a decaying harmonic spectrum, below Nyquist."""
    t = np.arange(n) / sr
    vib_rate, vib_depth = rng.uniform(3.0, 7.0), rng.uniform(0.0, 0.012)
    freq = f0 * (1.0 + vib_depth * np.sin(2 * np.pi * vib_rate * t + rng.uniform(0, 2 * np.pi)))
    phase = 2 * np.pi * np.cumsum(freq) / sr
    out = np.zeros(n)
    rolloff = rng.uniform(0.6, 1.6)
    for k in range(1, int(rng.integers(1, 9)) + 1):
        if f0 * k * (1 + vib_depth) >= 0.45 * sr:
            break
        out += np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k**rolloff
    return out


def _noise(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Band-limited noise burst (one-pole low-pass or high-pass of white noise, via FFT)."""
    white = rng.standard_normal(n)
    spec = np.fft.rfft(white)
    freqs = np.fft.rfftfreq(n, 1 / sr)
    cutoff = rng.uniform(300, 0.4 * sr)
    if rng.random() < 0.5:
        shape = 1 / np.sqrt(1 + (freqs / cutoff) ** 4)
    else:
        shape = 1 / np.sqrt(1 + (cutoff / np.maximum(freqs, 1.0)) ** 4)
    out = np.fft.irfft(spec * shape, n)
    return out / (np.abs(out).max() + 1e-9)


def _chirp(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Exponential frequency sweep, up or down, between 60 Hz and 0.4 * Nyquist-safe limit."""
    f_lo, f_hi = 60.0, min(8000.0, 0.4 * sr)
    f_a, f_b = np.exp(rng.uniform(np.log(f_lo), np.log(f_hi), size=2))
    freq = f_a * (f_b / f_a) ** (np.arange(n) / max(n - 1, 1))
    return np.sin(2 * np.pi * np.cumsum(freq) / sr)


def _hit(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Percussive transient: a pitched thump plus a noise click, both decaying fast."""
    t = np.arange(n) / sr
    f = rng.uniform(50, 200)
    thump = np.sin(2 * np.pi * f * t * (1 + 1.5 * np.exp(-t / 0.02)))
    thump *= np.exp(-t / rng.uniform(0.04, 0.2))
    click = rng.standard_normal(n) * np.exp(-t / rng.uniform(0.003, 0.03))
    return thump + rng.uniform(0.2, 0.8) * click


def _event(kind: str, n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """One event of the given kind, n samples long, before gain and panning."""
    if kind == "tone":
        f0 = float(np.exp(rng.uniform(np.log(80), np.log(1200))))
        return _harmonic(n, sr, f0, rng) * _envelope(n, sr, rng)
    if kind == "chord":
        root = float(np.exp(rng.uniform(np.log(100), np.log(600))))
        ratios = [1.0, 1.25, 1.5] if rng.random() < 0.5 else [1.0, 1.2, 1.5, 1.8]
        env = _envelope(n, sr, rng)
        return sum(_harmonic(n, sr, root * r, rng) for r in ratios) / len(ratios) * env
    if kind == "noise":
        return _noise(n, sr, rng) * _envelope(n, sr, rng)
    if kind == "chirp":
        return _chirp(n, sr, rng) * _envelope(n, sr, rng)
    if kind == "hit":
        return _hit(n, sr, rng)
    return np.zeros(n)


def synth_clip(
    duration: float, sample_rate: int = 24000, channels: int = 1, seed: int = 0
) -> np.ndarray:
    """Deterministic synthetic audio, float32 [channels, round(duration * sample_rate)]."""
    if not duration > 0:
        raise ValueError(f"duration must be > 0 seconds, got {duration}")
    if sample_rate < 1000:
        raise ValueError(f"sample_rate must be >= 1000 Hz, got {sample_rate}")
    if channels < 1:
        raise ValueError(f"channels must be >= 1, got {channels}")
    rng = np.random.default_rng([int(seed), 0x5EED])
    total = max(1, int(round(duration * sample_rate)))
    out = np.zeros((channels, total))
    cursor, last_end = 0.0, 0.0
    while cursor < duration:
        kind = EVENT_KINDS[rng.choice(len(EVENT_KINDS), p=_EVENT_PROBS)]
        length = rng.uniform(0.04, 0.25) if kind == "hit" else rng.uniform(0.15, 1.6)
        if kind == "silence":  # a real gap: starts after every running event has ended
            cursor = max(cursor, last_end) + rng.uniform(0.1, 0.8)
            continue
        last_end = max(last_end, cursor + length)
        start = int(cursor * sample_rate)
        n = min(int(length * sample_rate), total - start)
        if n > 8:
            sig = _event(kind, n, sample_rate, rng) * rng.uniform(0.3, 1.0)
            pan = rng.uniform(0.15, 0.85) if channels > 1 else 0.5
            gains = np.linspace(1 - pan, pan, channels) * 2 if channels > 1 else np.ones(1)
            out[:, start : start + n] += gains[:, None] * sig[None, :]
        cursor += length * rng.uniform(0.5, 1.0)  # the next event often overlaps this one
    peak = np.abs(out).max()
    if peak < 1e-6:  # very short clips can land in a silence gap: fall back to one tone
        out[:] = _harmonic(total, sample_rate, 440.0, rng)[None, :]
        peak = np.abs(out).max()
    out *= rng.uniform(0.5, 0.9) / peak
    return out.astype(np.float32)


def collection_plan(
    *, minutes: float = 10.0, seed: int = 0, min_duration: float = 0.2, max_duration: float = 60.0
) -> list[dict]:
    """The (name, format, subtype, sample_rate, channels, duration, seed) of each file to write."""
    if minutes <= 0:
        raise ValueError(f"minutes must be > 0, got {minutes}")
    if not 0 < min_duration <= max_duration:
        raise ValueError(
            f"need 0 < min_duration <= max_duration, got {min_duration} and {max_duration}"
        )
    rng = np.random.default_rng([int(seed), 0xC011])
    budget = minutes * 60.0
    plan: list[dict] = []
    i = 0
    while budget > 1e-9:
        # Cycle through every (format, subtype) with varied rates and channel counts; the first
        # two files take the extreme durations so short and long files are always present.
        container, subtype, ext = FORMATS[i % len(FORMATS)]
        rate = SAMPLE_RATES[(i + 2 * (i // len(FORMATS))) % len(SAMPLE_RATES)]
        channels = 1 + (i // len(FORMATS)) % 2
        if i == 0:
            dur = min_duration
        elif i == 1:
            dur = max_duration
        else:
            dur = float(np.exp(rng.uniform(np.log(min_duration), np.log(max_duration))))
        dur = round(min(dur, max(budget, min_duration)), 3)
        name = f"{i:04d}_{ext}_{subtype.lower()}_{rate}hz_{channels}ch.{ext}"
        plan.append(
            dict(
                name=name,
                format=container,
                subtype=subtype,
                sample_rate=rate,
                channels=channels,
                duration=dur,
                seed=int(seed) * 100003 + i,
            )
        )
        budget -= dur
        i += 1
    return plan


def generate_collection(
    out_dir: str | Path,
    minutes: float = 10.0,
    seed: int = 0,
    *,
    min_duration: float = 0.2,
    max_duration: float = 60.0,
    overwrite: bool = False,
) -> list[Path]:
    """Write a deterministic, varied audio collection into out_dir; returns the file paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    plan = collection_plan(
        minutes=minutes, seed=seed, min_duration=min_duration, max_duration=max_duration
    )
    for spec in plan:
        path = out / spec["name"]
        paths.append(path)
        if path.exists() and path.stat().st_size > 0 and not overwrite:
            continue  # same name => same content (deterministic), so reruns are cheap
        audio = synth_clip(spec["duration"], spec["sample_rate"], spec["channels"], spec["seed"])
        tmp = path.with_name(path.name + ".part")
        sf.write(tmp, audio.T, spec["sample_rate"], subtype=spec["subtype"], format=spec["format"])
        tmp.replace(path)  # atomic, so an interrupted run never leaves a half-written file
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    p = argparse.ArgumentParser(
        prog="python -m raycodec.data.synth", description="Write a synthetic audio collection."
    )
    p.add_argument("out_dir", help="directory to write the collection into")
    p.add_argument("--minutes", type=float, default=10.0, help="total audio duration (default 10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--min-duration", type=float, default=0.2, help="shortest file, seconds")
    p.add_argument("--max-duration", type=float, default=60.0, help="longest file, seconds")
    p.add_argument("--overwrite", action="store_true", help="rewrite files that already exist")
    args = p.parse_args(argv)
    try:
        paths = generate_collection(
            args.out_dir,
            args.minutes,
            args.seed,
            min_duration=args.min_duration,
            max_duration=args.max_duration,
            overwrite=args.overwrite,
        )
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    total = sum(sf.info(str(q)).duration for q in paths)
    print(f"wrote {len(paths)} files ({total / 60:.2f} min) to {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
