"""Spectrogram reconstruction losses: mel L1, multi-scale mel and multi-resolution STFT.

Formulas, argument names and defaults follow audiocraft's `specloss.py` / `stftloss.py`.
Windows and filterbanks are built once and registered as buffers, so they move with `.to()`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchaudio.transforms import MelSpectrogram, Spectrogram


def check_pair(x: torch.Tensor, y: torch.Tensor, name: str) -> None:
    """Raise a ValueError unless x and y are [B, C, T] waveforms of identical shape."""
    if x.dim() != 3 or x.shape != y.shape:
        raise ValueError(
            f"{name}: expected two [B, C, T] waveforms of the same shape, "
            f"got {tuple(x.shape)} and {tuple(y.shape)}"
        )


def pad_for_full_frames(x: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """Right zero-pad so that the last STFT frame (center=False) is full."""
    length = x.shape[-1]
    n_frames = math.ceil((length - n_fft) / hop + 1)
    return F.pad(x, (0, (n_frames - 1) * hop + n_fft - length))


class MelSpectrogramWrapper(nn.Module):
    """Mel power spectrogram with audiocraft's padding; `log=True` gives log10(floor + mel)."""

    def __init__(
        self,
        n_fft: int = 1024,
        hop_length: int = 256,
        win_length: int | None = None,
        n_mels: int = 80,
        sample_rate: float = 22050,
        f_min: float = 0.0,
        f_max: float | None = None,
        log: bool = True,
        normalized: bool = False,
        floor_level: float = 1e-5,
    ):
        super().__init__()
        self.n_fft = n_fft
        self.hop_length = int(hop_length)
        self.log = log
        self.floor_level = floor_level
        with warnings.catch_warnings():
            # Small n_fft with 64 mels leaves empty filters (audiocraft's msspec at 2^6 does too).
            warnings.filterwarnings("ignore", message=".*mel filterbank has all zero values.*")
            self.mel_transform = MelSpectrogram(
                sample_rate=int(sample_rate), n_fft=n_fft, win_length=win_length,
                hop_length=self.hop_length, f_min=f_min, f_max=f_max, n_mels=n_mels,
                window_fn=torch.hann_window, normalized=normalized, center=False,
            )

    def mel(self, x: torch.Tensor) -> torch.Tensor:
        """Linear mel power spectrogram [B, C * n_mels, frames] of a [B, C, T] waveform."""
        if x.dim() == 2:
            x = x.unsqueeze(1)
        p = (self.n_fft - self.hop_length) // 2
        x = F.pad(x, (p, p), mode="reflect")
        x = pad_for_full_frames(x, self.n_fft, self.hop_length)
        spec = self.mel_transform(x)
        b, c, freqs, frames = spec.shape
        return spec.reshape(b, c * freqs, frames)

    def to_log(self, mel: torch.Tensor) -> torch.Tensor:
        """log10(floor + mel), audiocraft's log compression."""
        return torch.log10(self.floor_level + mel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mel = self.mel(x)
        return self.to_log(mel) if self.log else mel


class MelSpectrogramL1Loss(nn.Module):
    """`mel`: L1 distance between (log) mel spectrograms of estimate and reference."""

    def __init__(
        self,
        sample_rate: int,
        n_fft: int = 1024,
        hop_length: int = 256,
        win_length: int = 1024,
        n_mels: int = 80,
        f_min: float = 0.0,
        f_max: float | None = None,
        log: bool = True,
        normalized: bool = False,
        floor_level: float = 1e-5,
    ):
        super().__init__()
        self.melspec = MelSpectrogramWrapper(
            n_fft=n_fft, hop_length=hop_length, win_length=win_length, n_mels=n_mels,
            sample_rate=sample_rate, f_min=f_min, f_max=f_max, log=log, normalized=normalized,
            floor_level=floor_level,
        )

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        check_pair(x, y, "mel")
        return F.l1_loss(self.melspec(x), self.melspec(y))


class MultiScaleMelSpectrogramLoss(nn.Module):
    """`msspec`: sum over scales 2^i of L1(mel) + alpha_i * MSE(log10(floor + mel))."""

    def __init__(
        self,
        sample_rate: int,
        range_start: int = 6,
        range_end: int = 11,
        n_mels: int = 64,
        f_min: float = 0.0,
        f_max: float | None = None,
        normalized: bool = False,
        alphas: bool = True,
        floor_level: float = 1e-5,
    ):
        super().__init__()
        if range_end <= range_start:
            raise ValueError(
                f"msspec: expected range_start < range_end, got {range_start}, {range_end}"
            )
        self.normalized = normalized
        scales = range(range_start, range_end)
        # One transform per scale: audiocraft builds two (linear, log) and computes each mel twice.
        self.mels = nn.ModuleList(
            MelSpectrogramWrapper(
                n_fft=2**i, hop_length=2**i // 4, win_length=2**i, n_mels=n_mels,
                sample_rate=sample_rate, f_min=f_min, f_max=f_max, log=False,
                normalized=normalized, floor_level=floor_level,
            )
            for i in scales
        )
        self.alphas = [math.sqrt(2**i - 1) if alphas else 1.0 for i in scales]
        self.total = sum(a + 1 for a in self.alphas)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        check_pair(x, y, "msspec")
        loss = x.new_zeros(())
        for melspec, alpha in zip(self.mels, self.alphas):
            mel_x, mel_y = melspec.mel(x), melspec.mel(y)
            loss = loss + F.l1_loss(mel_x, mel_y)
            loss = loss + alpha * F.mse_loss(melspec.to_log(mel_x), melspec.to_log(mel_y))
        if self.normalized:
            loss = loss / self.total
        return loss


class MRSTFTLoss(nn.Module):
    """`mrstft`: factor_sc * spectral convergence + factor_mag * log-magnitude L1."""

    def __init__(
        self,
        n_ffts: Sequence[int] = (1024, 2048, 512),
        hop_lengths: Sequence[int] = (120, 240, 50),
        win_lengths: Sequence[int] = (600, 1200, 240),
        window: str = "hann_window",
        factor_sc: float = 0.1,
        factor_mag: float = 0.1,
        normalized: bool = False,
        epsilon: float = torch.finfo(torch.float32).eps,
    ):
        super().__init__()
        if not len(n_ffts) == len(hop_lengths) == len(win_lengths):
            raise ValueError(
                "mrstft: expected n_ffts, hop_lengths and win_lengths of the same length, got "
                f"{list(n_ffts)}, {list(hop_lengths)}, {list(win_lengths)}"
            )
        window_fn = getattr(torch, window, None)
        if window_fn is None or not window.endswith("_window"):
            raise ValueError(
                f"mrstft: expected a torch window name like 'hann_window', got {window!r}"
            )
        # torch.stft(normalized=True) scales by n_fft^-0.5: torchaudio's "frame_length" mode.
        self.specs = nn.ModuleList(
            Spectrogram(
                n_fft=n, hop_length=h, win_length=w, window_fn=window_fn, power=None,
                normalized="frame_length" if normalized else False, center=True,
                pad_mode="reflect",
            )
            for n, h, w in zip(n_ffts, hop_lengths, win_lengths)
        )
        self.factor_sc = factor_sc
        self.factor_mag = factor_mag
        self.epsilon = epsilon

    @staticmethod
    def _magnitude(spec: torch.Tensor) -> torch.Tensor:
        # Clamp before the sqrt: its gradient is infinite at zero.
        return torch.view_as_real(spec).pow(2).sum(-1).clamp(min=1e-7).sqrt()

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        check_pair(x, y, "mrstft")
        sc_loss = x.new_zeros(())
        mag_loss = x.new_zeros(())
        for spec in self.specs:
            x_mag, y_mag = self._magnitude(spec(x)), self._magnitude(spec(y))
            sc_loss = sc_loss + torch.linalg.vector_norm(y_mag - x_mag) / (
                torch.linalg.vector_norm(y_mag) + self.epsilon
            )
            mag_loss = mag_loss + F.l1_loss(
                torch.log(self.epsilon + y_mag), torch.log(self.epsilon + x_mag)
            )
        n = len(self.specs)
        return self.factor_sc * sc_loss / n + self.factor_mag * mag_loss / n
