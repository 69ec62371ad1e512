"""Experiment tracking in Aim (rank 0 only)."""

from raycodec.tracking.aim_tracker import AimTracker, mel_image, resolve_repo

__all__ = ["AimTracker", "mel_image", "resolve_repo"]
