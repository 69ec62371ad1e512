"""Objective quality metrics for codec evaluation."""

from raycodec.metrics.signal import si_snr
from raycodec.metrics.spectral import mel_distance, stft_distance

__all__ = ["mel_distance", "si_snr", "stft_distance"]
