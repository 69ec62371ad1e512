"""Objective quality metrics for codec evaluation."""

from raycodec.metrics.signal import si_snr

__all__ = ["si_snr"]
