"""Turn audiocraft-style config sections (`losses`, `l1`, `mel`, `msspec`, ...) into losses."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import torch.nn.functional as F
from torch import nn

from raycodec.config.sections import Section, as_dict, check_kwargs
from raycodec.losses.sisnr import SISNR
from raycodec.losses.spectral import (
    MelSpectrogramL1Loss,
    MRSTFTLoss,
    MultiScaleMelSpectrogramLoss,
    check_pair,
)


class L1Loss(nn.Module):
    """`l1`: mean absolute error between waveforms."""

    def forward(self, x, y):
        check_pair(x, y, "l1")
        return F.l1_loss(x, y)


class L2Loss(nn.Module):
    """`l2`: mean squared error between waveforms."""

    def forward(self, x, y):
        check_pair(x, y, "l2")
        return F.mse_loss(x, y)


AUX_LOSSES: dict[str, type[nn.Module]] = {
    "l1": L1Loss,
    "l2": L2Loss,
    "mel": MelSpectrogramL1Loss,
    "mrstft": MRSTFTLoss,
    "msspec": MultiScaleMelSpectrogramLoss,
    "sisnr": SISNR,
}
# Balancer weights that belong to every adversary rather than to an aux loss.
ADVERSARIAL_WEIGHTS = ("adv", "feat")


def build_loss(name: str, sample_rate: int, /, **kwargs: Any) -> nn.Module:
    """One aux loss by name; `sample_rate` is passed to the losses that take it."""
    if name not in AUX_LOSSES:
        raise ValueError(f"unknown loss {name!r}; expected one of {sorted(AUX_LOSSES)}")
    klass = AUX_LOSSES[name]
    if "sample_rate" in inspect.signature(klass.__init__).parameters:
        given = kwargs.setdefault("sample_rate", sample_rate)
        if int(given) != int(sample_rate):
            raise ValueError(
                f"{name}.sample_rate is {given} but the model runs at {sample_rate} Hz"
            )
    else:
        kwargs.pop("sample_rate", None)
    check_kwargs(klass, kwargs, name)
    return klass(**kwargs)


def build_aux_losses(
    weights: Mapping[str, float] | Any, sample_rate: int, cfg: Mapping[str, Any] | Any
) -> tuple[dict[str, nn.Module], dict[str, nn.Module]]:
    """(aux losses with weight > 0, info losses with weight 0) from the `losses` weights and the
    per-loss sections of `cfg` (`l1`, `mel`, `msspec`, ...); `adv`/`feat` belong to the adversaries.
    """
    weights = as_dict(weights)
    cfg = Section(cfg)
    aux: dict[str, nn.Module] = {}
    info: dict[str, nn.Module] = {}
    for name, weight in weights.items():
        if name in ADVERSARIAL_WEIGHTS:
            continue
        if name not in AUX_LOSSES:
            raise ValueError(
                f"unknown loss {name!r} in losses; expected one of "
                f"{sorted(AUX_LOSSES) + list(ADVERSARIAL_WEIGHTS)}"
            )
        if weight is None or float(weight) < 0:
            raise ValueError(f"losses.{name}: expected a weight >= 0, got {weight}")
        (aux if float(weight) > 0 else info)[name] = build_loss(name, sample_rate, **cfg[name])
    return aux, info
