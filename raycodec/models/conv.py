"""1-D convolutions with causal/symmetric padding and a choice of normalisation.

Module names (`conv.conv`, `convtr.convtr`, `*.norm`) follow the `encodec` package so that
its checkpoints map onto these modules key for key.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import weight_norm

NORMS = ("none", "weight_norm", "time_group_norm")
PAD_MODES = ("constant", "reflect", "replicate", "circular")


def check_norm(norm: str, causal: bool) -> None:
    """Raise a ValueError for an unknown norm or one that would break causality."""
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    if norm == "time_group_norm" and causal:
        raise ValueError("norm='time_group_norm' normalises over time and cannot be causal")


def _wrap(module: nn.Module, norm: str) -> nn.Module:
    return weight_norm(module) if norm == "weight_norm" else module


def _norm_module(channels: int, norm: str) -> nn.Module:
    return nn.GroupNorm(1, channels) if norm == "time_group_norm" else nn.Identity()


def extra_padding_for_conv1d(length: int, kernel_size: int, stride: int, padding_total: int) -> int:
    """Right padding so that the last window is complete and a transposed conv can rebuild it."""
    n_frames = (length - kernel_size + padding_total) / stride + 1
    ideal_length = (math.ceil(n_frames) - 1) * stride + (kernel_size - padding_total)
    return ideal_length - length


def pad1d(x: torch.Tensor, left: int, right: int, mode: str) -> torch.Tensor:
    """F.pad that also allows reflect padding wider than the signal (zero-extends it first)."""
    if mode != "reflect":
        return F.pad(x, (left, right), mode=mode)
    length = x.shape[-1]
    extra = max(0, max(left, right) - length + 1)
    if extra:
        x = F.pad(x, (0, extra))
    padded = F.pad(x, (left, right), mode="reflect")
    return padded[..., : padded.shape[-1] - extra]


class NormConv1d(nn.Module):
    """Conv1d followed by its normalisation."""

    def __init__(self, *args, norm: str = "none", **kwargs):
        super().__init__()
        self.conv = _wrap(nn.Conv1d(*args, **kwargs), norm)
        self.norm = _norm_module(self.conv.out_channels, norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x))


class NormConvTranspose1d(nn.Module):
    """ConvTranspose1d followed by its normalisation."""

    def __init__(self, *args, norm: str = "none", **kwargs):
        super().__init__()
        self.convtr = _wrap(nn.ConvTranspose1d(*args, **kwargs), norm)
        self.norm = _norm_module(self.convtr.out_channels, norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.convtr(x))


class SConv1d(nn.Module):
    """Conv1d that pads itself: left-only when causal, split evenly otherwise."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 dilation: int = 1, groups: int = 1, bias: bool = True, causal: bool = False,
                 norm: str = "none", pad_mode: str = "reflect"):
        super().__init__()
        check_norm(norm, causal)
        if pad_mode not in PAD_MODES:
            raise ValueError(f"pad_mode must be one of {PAD_MODES}, got {pad_mode!r}")
        self.conv = NormConv1d(in_channels, out_channels, kernel_size, stride, dilation=dilation,
                               groups=groups, bias=bias, norm=norm)
        self.causal = causal
        self.pad_mode = pad_mode
        self.kernel_size, self.stride = kernel_size, stride
        self.padding_total = (kernel_size - 1) * dilation - (stride - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        extra = extra_padding_for_conv1d(x.shape[-1], self.kernel_size, self.stride,
                                         self.padding_total)
        if self.causal:
            left, right = self.padding_total, extra
        else:
            right = self.padding_total // 2
            left, right = self.padding_total - right, right + extra
        return self.conv(pad1d(x, left, right, self.pad_mode))


class SConvTranspose1d(nn.Module):
    """ConvTranspose1d that trims its fixed padding (from the right when causal)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 causal: bool = False, norm: str = "none", trim_right_ratio: float = 1.0):
        super().__init__()
        check_norm(norm, causal)
        if not 0.0 <= trim_right_ratio <= 1.0 or (not causal and trim_right_ratio != 1.0):
            raise ValueError("trim_right_ratio must be in [0, 1] and != 1 only for causal convs")
        self.convtr = NormConvTranspose1d(in_channels, out_channels, kernel_size, stride, norm=norm)
        padding_total = kernel_size - stride
        if causal:
            right = math.ceil(padding_total * trim_right_ratio)
        else:
            right = padding_total // 2
        self.trim = (padding_total - right, right)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.convtr(x)
        left, right = self.trim
        return y[..., left : y.shape[-1] - right]
