"""MS-STFT discriminator (EnCodec; audiocraft layout, defaults and checkpoint keys).

Every discriminator maps a [B, C, T] waveform to `(logits, fmaps)`: one logits tensor and one
list of feature maps per sub-discriminator.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torchaudio.transforms import Spectrogram

from raycodec.adversarial.conv import NormConv2d, make_activation
from raycodec.adversarial.losses import at_least_fp32

DiscriminatorOutput = tuple[list[torch.Tensor], list[list[torch.Tensor]]]


def check_input(x: torch.Tensor, channels: int, name: str) -> None:
    """Raise a ValueError unless x is a [B, channels, T] waveform."""
    if x.dim() != 3 or x.shape[1] != channels:
        raise ValueError(f"{name}: expected a [B, {channels}, T] waveform, got {tuple(x.shape)}")


def _same_padding(kernel_size: Sequence[int], dilation: Sequence[int] = (1, 1)) -> tuple[int, int]:
    return tuple(((k - 1) * d) // 2 for k, d in zip(kernel_size, dilation))  # type: ignore


def _inplace(activation: nn.Module) -> nn.Module:
    """Switch ReLU/ELU/LeakyReLU (slope >= 0) to in-place: each follows a conv whose output
    nothing else reads, and their backward needs only the result. Same values, half the
    activation memory and allocations of the discriminator."""
    slope = getattr(activation, "negative_slope", 0.0)
    if isinstance(activation, (nn.ReLU, nn.ELU, nn.LeakyReLU)) and slope >= 0:
        activation.inplace = True
    return activation


class DiscriminatorSTFT(nn.Module):
    """One STFT scale: complex spectrogram as [B, 2C, time, freq] through 2D convs."""

    def __init__(
        self,
        filters: int,
        in_channels: int = 1,
        out_channels: int = 1,
        n_fft: int = 1024,
        hop_length: int = 256,
        win_length: int = 1024,
        max_filters: int = 1024,
        filters_scale: int = 1,
        kernel_size: Sequence[int] = (3, 9),
        dilations: Sequence[int] = (1, 2, 4),
        stride: Sequence[int] = (1, 2),
        normalized: bool = True,
        norm: str = "weight_norm",
        activation: str = "LeakyReLU",
        activation_params: dict | None = None,
    ):
        super().__init__()
        if len(kernel_size) != 2 or len(stride) != 2:
            raise ValueError(
                f"msstftd: expected 2D kernel_size and stride, got {kernel_size}, {stride}"
            )
        self.in_channels = in_channels
        self.activation = _inplace(
            make_activation(activation, activation_params or {"negative_slope": 0.2})
        )
        self.spec_transform = Spectrogram(
            n_fft=n_fft, hop_length=hop_length, win_length=win_length, window_fn=torch.hann_window,
            normalized=normalized, center=False, power=None,
        )
        kernel_size, stride = tuple(kernel_size), tuple(stride)
        # The first conv has no norm, as in audiocraft.
        self.convs = nn.ModuleList(
            [NormConv2d(2 * in_channels, filters, kernel_size, padding=_same_padding(kernel_size))]
        )
        # audiocraft starts from min(filters_scale * filters, max_filters) here, which only
        # matches the first conv's output when filters_scale == 1 (its default and only
        # working value); chaining from `filters` is identical there and correct otherwise.
        in_chs = filters
        for i, dilation in enumerate(dilations):
            out_chs = min(filters_scale ** (i + 1) * filters, max_filters)
            self.convs.append(NormConv2d(
                in_chs, out_chs, kernel_size, stride=stride, dilation=(dilation, 1),
                padding=_same_padding(kernel_size, (dilation, 1)), norm=norm,
            ))
            in_chs = out_chs
        out_chs = min(filters_scale ** (len(dilations) + 1) * filters, max_filters)
        square = (kernel_size[0], kernel_size[0])
        self.convs.append(
            NormConv2d(in_chs, out_chs, square, padding=_same_padding(square), norm=norm)
        )
        self.conv_post = NormConv2d(
            out_chs, out_channels, square, padding=_same_padding(square), norm=norm
        )

    def _spectrogram(self, x: torch.Tensor) -> torch.Tensor:
        # torchaudio's Spectrogram(center=False, power=None) computed with torch.stft directly:
        # its functional form graph-breaks under torch.compile. The transform is kept for its
        # window buffer (`spec_transform.window` is in audiocraft checkpoints) and settings.
        spec = self.spec_transform
        b, c, t = x.shape
        z = torch.stft(x.reshape(b * c, t), spec.n_fft, spec.hop_length, spec.win_length,
                       spec.window, center=False, onesided=True, return_complex=True)
        if spec.normalized:  # torchaudio's `normalized=True` divides by the window's L2 norm
            z = z / spec.window.pow(2).sum().sqrt()
        return z.view(b, c, *z.shape[-2:])  # [B, C, freq, frames]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        # The STFT stays in fp32 under autocast (no half-precision FFT on every backend).
        with torch.autocast(x.device.type, enabled=False):
            z = self._spectrogram(at_least_fp32(x))
        z = torch.cat([z.real, z.imag], dim=1).transpose(-1, -2)  # [B, 2C, frames, freq]
        # Channels-last convs run ~1.5-3x faster here (oneDNN, forward and backward) with the
        # same values; the feature maps keep that layout.
        z = z.contiguous(memory_format=torch.channels_last)
        fmap = []
        for conv in self.convs:
            z = self.activation(conv(z))
            fmap.append(z)
        return self.conv_post(z), fmap


class MultiScaleSTFTDiscriminator(nn.Module):
    """MS-STFT discriminator (EnCodec): one `DiscriminatorSTFT` per (n_fft, hop, win)."""

    def __init__(
        self,
        filters: int,
        in_channels: int = 1,
        out_channels: int = 1,
        sep_channels: bool = False,
        n_ffts: Sequence[int] = (1024, 2048, 512),
        hop_lengths: Sequence[int] = (256, 512, 128),
        win_lengths: Sequence[int] = (1024, 2048, 512),
        **kwargs,
    ):
        super().__init__()
        if not len(n_ffts) == len(hop_lengths) == len(win_lengths):
            raise ValueError(
                "msstftd: expected n_ffts, hop_lengths, win_lengths of equal length, got "
                f"{list(n_ffts)}, {list(hop_lengths)}, {list(win_lengths)}"
            )
        self.in_channels = in_channels
        self.sep_channels = sep_channels
        disc_channels = 1 if sep_channels else in_channels
        self.discriminators = nn.ModuleList(
            DiscriminatorSTFT(filters, in_channels=disc_channels, out_channels=out_channels,
                              n_fft=n, hop_length=h, win_length=w, **kwargs)
            for n, h, w in zip(n_ffts, hop_lengths, win_lengths)
        )

    @property
    def num_discriminators(self) -> int:
        return len(self.discriminators)

    def forward(self, x: torch.Tensor) -> DiscriminatorOutput:
        check_input(x, self.in_channels, "msstftd")
        if self.sep_channels:  # every channel judged as a separate mono item
            x = x.reshape(-1, 1, x.shape[-1])
        logits, fmaps = [], []
        for disc in self.discriminators:
            logit, fmap = disc(x)
            logits.append(logit)
            fmaps.append(fmap)
        return logits, fmaps
