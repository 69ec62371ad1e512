"""Spectral distances used to report codec quality (DAC/EnCodec-style mel and STFT distances)."""

from __future__ import annotations

import functools

import torch


@functools.lru_cache(maxsize=8)
def _mel(sample_rate: int, n_fft: int, hop: int, n_mels: int):
    import torchaudio

    return torchaudio.transforms.MelSpectrogram(sample_rate, n_fft=n_fft, hop_length=hop,
                                                n_mels=n_mels, f_min=0.0, power=1.0)


def mel_distance(reference: torch.Tensor, estimate: torch.Tensor, sample_rate: int,
                 n_ffts: tuple[int, ...] = (512, 2048), n_mels: int = 80,
                 floor: float = 1e-5) -> float:
    """Mean L1 between log10 mel magnitudes over several resolutions; [C, T] tensors."""
    total = 0.0
    for n_fft in n_ffts:
        mel = _mel(sample_rate, n_fft, n_fft // 4, n_mels)
        a = torch.log10(mel(reference.float()).clamp_min(floor))
        b = torch.log10(mel(estimate.float()).clamp_min(floor))
        total += (a - b).abs().mean().item()
    return total / len(n_ffts)


def stft_distance(reference: torch.Tensor, estimate: torch.Tensor,
                  n_ffts: tuple[int, ...] = (512, 2048), floor: float = 1e-5) -> float:
    """Mean L1 between log10 STFT magnitudes over several resolutions; [C, T] tensors."""
    total = 0.0
    for n_fft in n_ffts:
        window = torch.hann_window(n_fft)

        def mag(x: torch.Tensor, n_fft: int = n_fft, window: torch.Tensor = window):
            spec = torch.stft(x.float(), n_fft, n_fft // 4, window=window, return_complex=True)
            return torch.log10(spec.abs().clamp_min(floor))

        total += (mag(reference) - mag(estimate)).abs().mean().item()
    return total / len(n_ffts)
