"""A realistic embedded corpus for quality runs: espeak-ng speech plus synthetic music/effects,
split by FILE into training and held-out validation files (a clip is never from a training file).

CLI (one folder per split, e.g. the demo's): ``python -m raycodec.data.corpus OUT --seed 1``
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from raycodec.data.speech import generate_speech
from raycodec.data.synth import generate_collection


@dataclass(frozen=True)
class Corpus:
    """Training and held-out file lists (speech files are those under `speech/`)."""

    train: list[Path]
    valid: list[Path]


@dataclass(frozen=True)
class Clip:
    """One held-out validation clip, mono at the codec's rate."""

    name: str
    audio: torch.Tensor  # [1, T]
    speech: bool


def is_speech(path: Path) -> bool:
    """Whether a corpus file is speech (PESQ/STOI apply)."""
    return path.parent.name == "speech"


def write_corpus(root: str | Path, speech_files: int = 48, music_minutes: float = 4.0,
                 seed: int = 0) -> tuple[list[Path], list[Path]]:
    """Write (or reuse) root/speech (espeak-ng) and root/music (synth); (speech, music) paths."""
    root = Path(root)
    speech = generate_speech(root / "speech", speech_files, seed)
    music = generate_collection(root / "music", music_minutes, seed, min_duration=2.5,
                                max_duration=20.0)
    return speech, music


def make_corpus(root: str | Path, speech_files: int = 48, music_minutes: float = 4.0,
                seed: int = 0, holdout_every: int = 4) -> Corpus:
    """Write (or reuse) the corpus under root/{speech,music}; every `holdout_every`-th file of
    each kind is held out for validation."""
    speech, music = write_corpus(root, speech_files, music_minutes, seed)
    train, valid = [], []
    for paths in (speech, music):
        for i, path in enumerate(sorted(paths)):
            (valid if i % holdout_every == holdout_every - 1 else train).append(path)
    return Corpus(train, valid)


def load_mono(path: str | Path, sample_rate: int) -> torch.Tensor:
    """A whole file as mono float32 [1, T] at `sample_rate`."""
    import torchaudio.functional as AF

    audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    x = torch.from_numpy(audio.T.copy()).mean(0, keepdim=True)
    return AF.resample(x, rate, sample_rate) if rate != sample_rate else x


def valid_clips(paths: list[Path], sample_rate: int, seconds: float, count: int,
                seed: int = 0) -> list[Clip]:
    """`count` clips of `seconds`, alternating speech and music files, from the loudest part
    of each file (a codec is not judged on silence gaps)."""
    n = int(seconds * sample_rate)
    kinds = [[p for p in paths if is_speech(p)], [p for p in paths if not is_speech(p)]]
    order = [p for pair in zip(*kinds) for p in pair] + kinds[0][len(kinds[1]):] \
        + kinds[1][len(kinds[0]):]
    clips = []
    rng = np.random.default_rng([seed, 0xC11F])
    for path in order:
        x = load_mono(path, sample_rate)
        if x.shape[-1] < n:
            continue
        hop = max(1, n // 2)
        starts = list(range(0, x.shape[-1] - n + 1, hop))
        energy = [float(x[:, s:s + n].pow(2).mean()) for s in starts]
        best = sorted(range(len(starts)), key=energy.__getitem__)[-max(1, len(starts) // 3):]
        start = starts[int(rng.choice(best))]
        clips.append(Clip(path.stem, x[:, start:start + n].contiguous(), is_speech(path)))
        if len(clips) == count:
            break
    if not clips:
        raise ValueError(f"no held-out file is at least {seconds} s long")
    return clips


class SegmentSampler:
    """Random training segments [B, 1, T] from in-memory training files, with random gain
    (-20..0 dB) so that levels vary as they do in real collections."""

    def __init__(self, paths: list[Path], sample_rate: int, seconds: float, seed: int = 0):
        self.audio = [load_mono(p, sample_rate) for p in paths]
        self.length = int(seconds * sample_rate)
        self.audio = [a for a in self.audio if a.shape[-1] >= self.length]
        if not self.audio:
            raise ValueError(f"no training file is at least {seconds} s long")
        weights = np.array([a.shape[-1] for a in self.audio], dtype=np.float64)
        self.weights = weights / weights.sum()
        self.rng = np.random.default_rng([seed, 0x5E6])

    def batch(self, size: int) -> torch.Tensor:
        """One batch of `size` segments."""
        out = []
        for i in self.rng.choice(len(self.audio), size=size, p=self.weights):
            a = self.audio[i]
            start = int(self.rng.integers(0, a.shape[-1] - self.length + 1))
            gain = 10 ** (self.rng.uniform(-20.0, 0.0) / 20)
            out.append(a[:, start:start + self.length] * gain)
        return torch.stack(out)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point: write one corpus folder."""
    p = argparse.ArgumentParser(prog="python -m raycodec.data.corpus",
                                description="Write espeak-ng speech + synthetic music/effects.")
    p.add_argument("out_dir")
    p.add_argument("--speech-files", type=int, default=48)
    p.add_argument("--music-minutes", type=float, default=4.0)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    try:
        speech, music = write_corpus(args.out_dir, args.speech_files, args.music_minutes,
                                     args.seed)
    except (ValueError, OSError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    total = sum(sf.info(str(q)).duration for q in speech + music)
    print(f"wrote {len(speech)} speech and {len(music)} music/effects files "
          f"({total / 60:.2f} min) to {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
