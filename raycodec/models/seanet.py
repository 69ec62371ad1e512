"""SEANet encoder and decoder (the convolutional autoencoder of EnCodec)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from raycodec.models.conv import SConv1d, SConvTranspose1d


def _activation(name: str, params: dict | None) -> nn.Module:
    if not hasattr(nn, name):
        raise ValueError(f"unknown activation {name!r}: expected a torch.nn class name such as ELU")
    return getattr(nn, name)(**(params or {}))


class SLSTM(nn.Module):
    """LSTM over time on [B, C, T] tensors, with a skip connection."""

    def __init__(self, dimension: int, num_layers: int = 2, skip: bool = True):
        super().__init__()
        self.skip = skip
        self.lstm = nn.LSTM(dimension, dimension, num_layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(2, 0, 1)
        y, _ = self.lstm(x)
        if self.skip:
            y = y + x
        return y.permute(1, 2, 0)


class SEANetResnetBlock(nn.Module):
    """Residual block: act -> dilated conv -> act -> 1x1 conv, plus identity or 1x1 shortcut."""

    def __init__(self, dim: int, kernel_sizes: Sequence[int] = (3, 1),
                 dilations: Sequence[int] = (1, 1), activation: str = "ELU",
                 activation_params: dict | None = None, norm: str = "weight_norm",
                 causal: bool = False, pad_mode: str = "reflect", compress: int = 2,
                 true_skip: bool = True):
        super().__init__()
        hidden = dim // compress
        layers: list[nn.Module] = []
        for i, (k, d) in enumerate(zip(kernel_sizes, dilations)):
            cin = dim if i == 0 else hidden
            cout = dim if i == len(kernel_sizes) - 1 else hidden
            layers += [_activation(activation, activation_params),
                       SConv1d(cin, cout, k, dilation=d, norm=norm, causal=causal,
                               pad_mode=pad_mode)]
        self.block = nn.Sequential(*layers)
        self.shortcut: nn.Module = (
            nn.Identity() if true_skip
            else SConv1d(dim, dim, 1, norm=norm, causal=causal, pad_mode=pad_mode)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.block(x)


class _SEANetBase(nn.Module):
    """Shared bookkeeping for the encoder and decoder (layer factories, hop length)."""

    def __init__(self, *, channels: int, dimension: int, n_filters: int,
                 n_residual_layers: int, ratios: Sequence[int], activation: str,
                 activation_params: dict | None, norm: str, residual_kernel_size: int,
                 dilation_base: int, causal: bool, pad_mode: str, true_skip: bool,
                 compress: int):
        super().__init__()
        self.channels, self.dimension, self.n_filters = channels, dimension, n_filters
        self.ratios = list(ratios)
        self.hop_length = int(np.prod(self.ratios))
        self._activation = (activation, activation_params or {"alpha": 1.0})
        self._conv = dict(norm=norm, causal=causal, pad_mode=pad_mode)
        self._res = dict(activation=activation, activation_params=self._activation[1],
                         norm=norm, causal=causal, pad_mode=pad_mode, compress=compress,
                         true_skip=true_skip)
        self._res_kernel, self._dilation_base = residual_kernel_size, dilation_base
        self._n_residual_layers = n_residual_layers

    def _act(self) -> nn.Module:
        return _activation(*self._activation)

    def _res_blocks(self, dim: int) -> list[nn.Module]:
        return [SEANetResnetBlock(dim, kernel_sizes=(self._res_kernel, 1),
                                  dilations=(self._dilation_base ** j, 1), **self._res)
                for j in range(self._n_residual_layers)]


class SEANetEncoder(_SEANetBase):
    """Waveform [B, channels, T] -> latent [B, dimension, ceil(T / hop_length)]."""

    def __init__(self, channels: int = 1, dimension: int = 128, n_filters: int = 32,
                 n_residual_layers: int = 1, ratios: Sequence[int] = (8, 5, 4, 2),
                 activation: str = "ELU", activation_params: dict | None = None,
                 norm: str = "weight_norm", kernel_size: int = 7, last_kernel_size: int = 7,
                 residual_kernel_size: int = 3, dilation_base: int = 2, causal: bool = False,
                 pad_mode: str = "reflect", true_skip: bool = False, compress: int = 2,
                 lstm: int = 2):
        super().__init__(channels=channels, dimension=dimension, n_filters=n_filters,
                         n_residual_layers=n_residual_layers, ratios=ratios,
                         activation=activation, activation_params=activation_params, norm=norm,
                         residual_kernel_size=residual_kernel_size, dilation_base=dilation_base,
                         causal=causal, pad_mode=pad_mode, true_skip=true_skip,
                         compress=compress)
        mult = 1
        model: list[nn.Module] = [SConv1d(channels, n_filters, kernel_size, **self._conv)]
        # The encoder downsamples with the ratios reversed (2, 4, 5, 8 for EnCodec).
        for ratio in reversed(self.ratios):
            model += self._res_blocks(mult * n_filters)
            model += [self._act(), SConv1d(mult * n_filters, mult * n_filters * 2, ratio * 2,
                                           stride=ratio, **self._conv)]
            mult *= 2
        if lstm:
            model += [SLSTM(mult * n_filters, num_layers=lstm)]
        model += [self._act(), SConv1d(mult * n_filters, dimension, last_kernel_size, **self._conv)]
        self.model = nn.Sequential(*model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class SEANetDecoder(_SEANetBase):
    """Latent [B, dimension, T'] -> waveform [B, channels, T' * hop_length]."""

    def __init__(self, channels: int = 1, dimension: int = 128, n_filters: int = 32,
                 n_residual_layers: int = 1, ratios: Sequence[int] = (8, 5, 4, 2),
                 activation: str = "ELU", activation_params: dict | None = None,
                 final_activation: str | None = None,
                 final_activation_params: dict | None = None, norm: str = "weight_norm",
                 kernel_size: int = 7, last_kernel_size: int = 7,
                 residual_kernel_size: int = 3, dilation_base: int = 2, causal: bool = False,
                 pad_mode: str = "reflect", true_skip: bool = False, compress: int = 2,
                 lstm: int = 2, trim_right_ratio: float = 1.0):
        super().__init__(channels=channels, dimension=dimension, n_filters=n_filters,
                         n_residual_layers=n_residual_layers, ratios=ratios,
                         activation=activation, activation_params=activation_params, norm=norm,
                         residual_kernel_size=residual_kernel_size, dilation_base=dilation_base,
                         causal=causal, pad_mode=pad_mode, true_skip=true_skip,
                         compress=compress)
        mult = 2 ** len(self.ratios)
        model: list[nn.Module] = [SConv1d(dimension, mult * n_filters, kernel_size, **self._conv)]
        if lstm:
            model += [SLSTM(mult * n_filters, num_layers=lstm)]
        for ratio in self.ratios:
            model += [self._act(),
                      SConvTranspose1d(mult * n_filters, mult * n_filters // 2, ratio * 2,
                                       stride=ratio, norm=norm, causal=causal,
                                       trim_right_ratio=trim_right_ratio)]
            model += self._res_blocks(mult * n_filters // 2)
            mult //= 2
        model += [self._act(), SConv1d(n_filters, channels, last_kernel_size, **self._conv)]
        if final_activation is not None:
            model += [_activation(final_activation, final_activation_params)]
        self.model = nn.Sequential(*model)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model(z)
