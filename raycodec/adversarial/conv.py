"""Convolutions with weight/spectral norm that load audiocraft's (old-style) state dict keys.

audiocraft applies `torch.nn.utils.weight_norm` / `spectral_norm`, which store `weight_g`,
`weight_v` (resp. `weight_orig`, `weight_u`, `weight_v`). We use the parametrization API and
rename those keys on load, so `<prefix>.conv.*` checkpoints load unchanged. Parameter order is
the same in both APIs (bias, then g, v), so audiocraft optimizer states line up too.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn
from torch.nn.utils import parametrizations

CONV_NORMS = ("none", "weight_norm", "spectral_norm")

# Old-style suffix -> parametrization suffix, per norm.
LEGACY_KEYS = {
    "weight_norm": {
        "weight_g": "parametrizations.weight.original0",
        "weight_v": "parametrizations.weight.original1",
    },
    "spectral_norm": {
        "weight_orig": "parametrizations.weight.original",
        "weight_u": "parametrizations.weight.0._u",
        "weight_v": "parametrizations.weight.0._v",
    },
}


def apply_norm(conv: nn.Module, norm: str) -> nn.Module:
    """Wrap `conv.weight` with the parametrization named by `norm`."""
    if norm not in CONV_NORMS:
        raise ValueError(f"unknown conv norm {norm!r}; expected one of {list(CONV_NORMS)}")
    if norm == "weight_norm":
        return parametrizations.weight_norm(conv)
    if norm == "spectral_norm":
        return parametrizations.spectral_norm(conv)
    return conv


class _NormConv(nn.Module):
    """Holds `self.conv` (audiocraft's layout `<name>.conv.*`) and maps legacy keys on load."""

    def __init__(self, conv: nn.Module, norm: str):
        super().__init__()
        self.conv = apply_norm(conv, norm)
        self.norm_type = norm
        self.register_load_state_dict_pre_hook(_rename_legacy_keys)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def _rename_legacy_keys(module: _NormConv, state_dict: dict, prefix: str, *args) -> None:
    for old, new in LEGACY_KEYS.get(module.norm_type, {}).items():
        key = f"{prefix}conv.{old}"
        if key in state_dict:
            state_dict[f"{prefix}conv.{new}"] = state_dict.pop(key)


class NormConv1d(_NormConv):
    """nn.Conv1d (same arguments) with an optional weight/spectral norm."""

    def __init__(self, *args, norm: str = "none", **kwargs):
        super().__init__(nn.Conv1d(*args, **kwargs), norm)


class NormConv2d(_NormConv):
    """nn.Conv2d (same arguments) with an optional weight/spectral norm."""

    def __init__(self, *args, norm: str = "none", **kwargs):
        super().__init__(nn.Conv2d(*args, **kwargs), norm)


def to_legacy_state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    """`module.state_dict()` with audiocraft's old-style weight/spectral norm key names."""
    renames: dict[str, str] = {}
    for name, sub in module.named_modules():
        if isinstance(sub, _NormConv):
            base = f"{name}.conv." if name else "conv."
            for old, new in LEGACY_KEYS.get(sub.norm_type, {}).items():
                renames[base + new] = base + old
    return {renames.get(k, k): v for k, v in module.state_dict().items()}


def make_activation(activation: str, activation_params: Mapping | None) -> nn.Module:
    """`getattr(torch.nn, activation)(**activation_params)` with a clear error."""
    klass = getattr(nn, activation, None)
    if not (isinstance(klass, type) and issubclass(klass, nn.Module)):
        raise ValueError(f"unknown activation {activation!r}; expected a torch.nn module name")
    return klass(**dict(activation_params or {}))
