"""Objective quality metrics for codec evaluation."""

from raycodec.metrics.signal import bitrate_kbps, si_snr

__all__ = ["si_snr", "bitrate_kbps"]
