"""Waveform discriminators of HiFi-GAN: multi-period (MPD) and multi-scale (MSD).

audiocraft layouts and defaults; same `(logits, fmaps)` convention as the MS-STFT discriminator.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from raycodec.adversarial.conv import NormConv1d, NormConv2d, make_activation
from raycodec.adversarial.msstftd import DiscriminatorOutput, check_input


class PeriodDiscriminator(nn.Module):
    """Waveform folded by `period` into [B, C, T / period, period], then (k, 1) convs."""

    def __init__(
        self,
        period: int,
        in_channels: int = 1,
        out_channels: int = 1,
        n_layers: int = 5,
        kernel_sizes: Sequence[int] = (5, 3),
        stride: int = 3,
        filters: int = 8,
        filters_scale: int = 4,
        max_filters: int = 1024,
        norm: str = "weight_norm",
        activation: str = "LeakyReLU",
        activation_params: dict | None = None,
    ):
        super().__init__()
        self.period = period
        self.activation = make_activation(activation, activation_params or {"negative_slope": 0.2})
        self.convs = nn.ModuleList()
        in_chs = in_channels
        k0, k1 = kernel_sizes
        for i in range(n_layers):
            out_chs = min(filters * filters_scale ** (i + 1), max_filters)
            layer_stride = 1 if i == n_layers - 1 else stride
            self.convs.append(NormConv2d(in_chs, out_chs, (k0, 1), stride=(layer_stride, 1),
                                         padding=((k0 - 1) // 2, 0), norm=norm))
            in_chs = out_chs
        self.conv_post = NormConv2d(in_chs, out_channels, (k1, 1), padding=((k1 - 1) // 2, 0),
                                    norm=norm)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        b, c, t = x.shape
        if t % self.period:
            x = F.pad(x, (0, self.period - t % self.period), mode="reflect")
        x = x.view(b, c, -1, self.period)
        fmap = []
        for conv in self.convs:
            x = self.activation(conv(x))
            fmap.append(x)
        x = self.conv_post(x)
        fmap.append(x)  # audiocraft keeps the logits as the last feature map here
        return x, fmap


class MultiPeriodDiscriminator(nn.Module):
    """MPD (HiFi-GAN): one `PeriodDiscriminator` per period."""

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        periods: Sequence[int] = (2, 3, 5, 7, 11),
        **kwargs,
    ):
        super().__init__()
        self.in_channels = in_channels
        self.discriminators = nn.ModuleList(
            PeriodDiscriminator(p, in_channels, out_channels, **kwargs) for p in periods
        )

    @property
    def num_discriminators(self) -> int:
        return len(self.discriminators)

    def forward(self, x: torch.Tensor) -> DiscriminatorOutput:
        check_input(x, self.in_channels, "mpd")
        logits, fmaps = [], []
        for disc in self.discriminators:
            logit, fmap = disc(x)
            logits.append(logit)
            fmaps.append(fmap)
        return logits, fmaps


class ScaleDiscriminator(nn.Module):
    """Waveform discriminator of MelGAN/HiFi-GAN: grouped strided 1D convs."""

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        kernel_sizes: Sequence[int] = (5, 3),
        filters: int = 16,
        max_filters: int = 1024,
        downsample_scales: Sequence[int] = (4, 4, 4, 4),
        inner_kernel_sizes: Sequence[int] | None = None,
        groups: Sequence[int] | None = None,
        strides: Sequence[int] | None = None,
        paddings: Sequence[int] | None = None,
        norm: str = "weight_norm",
        activation: str = "LeakyReLU",
        activation_params: dict | None = None,
        pad: str = "ReflectionPad1d",
        pad_params: dict | None = None,
    ):
        super().__init__()
        if len(kernel_sizes) != 2 or any(k % 2 == 0 for k in kernel_sizes):
            raise ValueError(f"msd: expected two odd kernel_sizes, got {list(kernel_sizes)}")
        n = len(downsample_scales)
        for name, value in [("inner_kernel_sizes", inner_kernel_sizes), ("groups", groups),
                            ("strides", strides), ("paddings", paddings)]:
            if value is not None and len(value) != n:
                raise ValueError(f"msd: expected {name} of length {n}, got {list(value)}")
        self.activation = make_activation(activation, activation_params or {"negative_slope": 0.2})
        first_kernel = kernel_sizes[0] * kernel_sizes[1]
        self.convs = nn.ModuleList([nn.Sequential(
            make_activation(pad, {"padding": (first_kernel - 1) // 2, **(pad_params or {})}),
            NormConv1d(in_channels, filters, kernel_size=first_kernel, norm=norm),
        )])
        in_chs = filters
        for i, scale in enumerate(downsample_scales):
            out_chs = min(in_chs * scale, max_filters)
            kernel = inner_kernel_sizes[i] if inner_kernel_sizes else scale * 10 + 1
            self.convs.append(NormConv1d(
                in_chs, out_chs, kernel_size=kernel,
                stride=strides[i] if strides else scale,
                groups=groups[i] if groups else in_chs // 4,
                padding=paddings[i] if paddings else (kernel - 1) // 2,
                norm=norm,
            ))
            in_chs = out_chs
        out_chs = min(in_chs * 2, max_filters)
        k0, k1 = kernel_sizes
        self.convs.append(NormConv1d(in_chs, out_chs, k0, padding=(k0 - 1) // 2, norm=norm))
        self.conv_post = NormConv1d(out_chs, out_channels, k1, padding=(k1 - 1) // 2, norm=norm)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        fmap = []
        for layer in self.convs:
            x = self.activation(layer(x))
            fmap.append(x)
        x = self.conv_post(x)
        fmap.append(x)
        return x, fmap


class MultiScaleDiscriminator(nn.Module):
    """MSD: `ScaleDiscriminator`s on the waveform average-pooled 1x, 2x, 4x...

    audiocraft drops the pooled signal (`self.downsample(x)` without assignment) so all its
    scales see the raw waveform; here each scale really sees the pooled one (MelGAN's design).
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        downsample_factor: int = 2,
        scale_norms: Sequence[str] = ("weight_norm", "weight_norm", "weight_norm"),
        **kwargs,
    ):
        super().__init__()
        self.in_channels = in_channels
        self.discriminators = nn.ModuleList(
            ScaleDiscriminator(in_channels, out_channels, norm=norm, **kwargs)
            for norm in scale_norms
        )
        self.downsample = nn.AvgPool1d(downsample_factor * 2, downsample_factor,
                                       padding=downsample_factor)

    @property
    def num_discriminators(self) -> int:
        return len(self.discriminators)

    def forward(self, x: torch.Tensor) -> DiscriminatorOutput:
        check_input(x, self.in_channels, "msd")
        logits, fmaps = [], []
        for i, disc in enumerate(self.discriminators):
            if i:
                x = self.downsample(x)
            logit, fmap = disc(x)
            logits.append(logit)
            fmaps.append(fmap)
        return logits, fmaps
