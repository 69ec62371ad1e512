"""Waveform-domain metrics."""

from __future__ import annotations

import torch


def si_snr(reference: torch.Tensor, estimate: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale-invariant SNR in dB per item, over all channels and samples of [B, C, T] tensors."""
    ref = reference.flatten(1) - reference.flatten(1).mean(dim=1, keepdim=True)
    est = estimate.flatten(1) - estimate.flatten(1).mean(dim=1, keepdim=True)
    proj = (est * ref).sum(1, keepdim=True) / (ref.pow(2).sum(1, keepdim=True) + eps) * ref
    noise = est - proj
    return 10 * torch.log10(proj.pow(2).sum(1) / (noise.pow(2).sum(1) + eps) + eps)
