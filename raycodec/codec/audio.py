"""Random-access reads of any soundfile-readable file, converted to a target rate and channels.

Only the requested span (plus a resampling margin) is read from disk, so memory stays bounded
by the span, not by the file.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import soundfile as sf
import torch


def convert_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """[C, T] -> [channels, T]: downmix to mono, duplicate mono, or keep the first channels."""
    have = x.shape[0]
    if have == channels:
        return x
    if channels == 1:
        return x.mean(dim=0, keepdim=True)
    if have == 1:
        return x.expand(channels, -1).contiguous()
    if have > channels:
        return x[:channels]
    raise ValueError(f"cannot convert {have} channels to {channels}")


class AudioSource:
    """A file seen at `sample_rate` Hz with `channels` channels; `read(start, stop)` in samples."""

    def __init__(self, path: str | Path, sample_rate: int, channels: int):
        try:
            self.file = sf.SoundFile(str(path))
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            raise ValueError(f"cannot read audio {path}: {exc}") from None
        self.sample_rate, self.channels = sample_rate, channels
        self.orig_sample_rate, self.orig_channels = self.file.samplerate, self.file.channels
        self.orig_length = self.file.frames
        g = math.gcd(self.orig_sample_rate, sample_rate)
        # A source offset that is a multiple of `down` maps to an exact target offset (x up/down).
        self.up, self.down = sample_rate // g, self.orig_sample_rate // g
        self.length = math.ceil(self.orig_length * self.up / self.down)
        # Margin for the resampling filter (torchaudio's sinc spans ~6 zero crossings per side).
        self.margin = self.down * math.ceil(512 / self.down) if self.up != self.down else 0

    def _raw(self, start: int, stop: int) -> torch.Tensor:
        self.file.seek(start)
        data = self.file.read(stop - start, dtype="float32", always_2d=True)
        return torch.from_numpy(np.ascontiguousarray(data.T))

    def read(self, start: int, stop: int) -> torch.Tensor:
        """Samples [start, stop) at the target rate as float32 [channels, stop - start]."""
        start, stop = max(0, start), min(stop, self.length)
        if self.up == self.down:
            x = self._raw(start, stop)
        else:
            import torchaudio.functional as AF

            s0 = max(0, (start // self.up) * self.down - self.margin)
            s1 = min(self.orig_length, math.ceil(stop / self.up) * self.down + self.margin)
            y = AF.resample(self._raw(s0, s1), self.orig_sample_rate, self.sample_rate)
            offset = s0 * self.up // self.down
            x = y[:, start - offset: stop - offset]
            if x.shape[-1] < stop - start:  # the resampler's own rounding at the file end
                x = torch.nn.functional.pad(x, (0, stop - start - x.shape[-1]))
        return convert_channels(x, self.channels)

    def close(self) -> None:
        """Close the underlying file."""
        self.file.close()

    def __enter__(self) -> AudioSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
