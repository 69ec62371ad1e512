"""Negative scale-invariant SNR over (overlapping) segments, as audiocraft's `SISNR`."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from raycodec.losses.spectral import check_pair


def _frames(x: torch.Tensor, frame: int, stride: int) -> torch.Tensor:
    """[B, C, T] -> [B, C, n_frames, frame], zero-padding the end so every sample is covered."""
    length = x.shape[-1]
    n_frames = math.ceil(length / stride)
    x = F.pad(x, (0, (n_frames - 1) * stride + frame - length))
    return x.unfold(-1, frame, stride)


class SISNR(nn.Module):
    """`sisnr`: -SI-SNR in dB averaged over batch, channels and segments of `segment` seconds."""

    def __init__(
        self,
        sample_rate: int = 16000,
        segment: float | None = 20,
        overlap: float = 0.5,
        epsilon: float = torch.finfo(torch.float32).eps,
    ):
        super().__init__()
        if not 0 <= overlap < 1:
            raise ValueError(f"sisnr: expected 0 <= overlap < 1, got {overlap}")
        self.sample_rate = sample_rate
        self.segment = segment
        self.overlap = overlap
        self.epsilon = epsilon

    def forward(self, out_sig: torch.Tensor, ref_sig: torch.Tensor) -> torch.Tensor:
        check_pair(out_sig, ref_sig, "sisnr")
        length = ref_sig.shape[-1]
        if self.segment is None:
            frame = stride = length
        else:
            frame = int(self.segment * self.sample_rate)
            stride = int(frame * (1 - self.overlap))
        epsilon = self.epsilon * frame  # proportional to the frame size, as audiocraft
        ref = _frames(ref_sig, frame, stride)
        est = _frames(out_sig, frame, stride)
        ref = ref - ref.mean(-1, keepdim=True)
        est = est - est.mean(-1, keepdim=True)
        dot = (ref * est).sum(-1, keepdim=True)
        proj = dot * ref / (epsilon + ref.pow(2).sum(-1, keepdim=True))
        noise = est - proj
        sisnr = 10 * (
            torch.log10(epsilon + proj.pow(2).sum(-1)) - torch.log10(epsilon + noise.pow(2).sum(-1))
        )
        return -sisnr.mean()
