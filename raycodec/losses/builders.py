"""Turn audiocraft-style config sections (`losses`, `l1`, `mel`, `msspec`, ...) into losses."""

from __future__ import annotations

import copy
import inspect
from collections.abc import Mapping
from typing import Any

import torch.nn.functional as F
from torch import nn

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

# audiocraft `solver/compression/default.yaml` (sample_rate is filled in by the builder).
DEFAULT_LOSS_WEIGHTS = {"adv": 4.0, "feat": 4.0, "l1": 0.1, "mel": 0.0, "msspec": 2.0, "sisnr": 0.0}
DEFAULT_LOSS_KWARGS: dict[str, dict[str, Any]] = {
    "l1": {},
    "l2": {},
    "mrstft": {"factor_sc": 0.5, "factor_mag": 0.5, "normalized": False},
    "mel": {
        "n_fft": 1024, "hop_length": 256, "win_length": 1024, "n_mels": 64, "f_min": 64,
        "f_max": None, "normalized": False, "floor_level": 1e-5,
    },
    "sisnr": {"segment": 5.0},
    "msspec": {
        "range_start": 6, "range_end": 11, "n_mels": 64, "f_min": 64, "f_max": None,
        "normalized": True, "alphas": False, "floor_level": 1e-5,
    },
}


def as_dict(cfg: Any) -> dict:
    """A plain (deep-copied) dict from a dict, an OmegaConf config or None."""
    if cfg is None:
        return {}
    try:
        from omegaconf import DictConfig, OmegaConf

        if isinstance(cfg, DictConfig):
            return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    except ImportError:  # pragma: no cover - omegaconf is a dependency
        pass
    if not isinstance(cfg, Mapping):
        raise ValueError(f"expected a mapping (dict or DictConfig), got {type(cfg).__name__}")
    return copy.deepcopy(dict(cfg))


def check_kwargs(klass: type, kwargs: Mapping[str, Any], section: str) -> None:
    """Raise a ValueError naming the accepted keys when `kwargs` has keys `klass` does not take."""
    params = inspect.signature(klass.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = [n for n in params if n != "self"]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ValueError(f"{section}: unknown keys {unknown}; expected a subset of {accepted}")


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
    weights: Mapping[str, float] | Any,
    sample_rate: int,
    loss_cfgs: Mapping[str, Mapping[str, Any]] | Any = None,
) -> tuple[dict[str, nn.Module], dict[str, nn.Module]]:
    """(aux losses with weight > 0, info losses with weight 0) from `losses` and per-loss sections.

    `adv`/`feat` weights are skipped: they belong to the adversaries. Per-loss kwargs default to
    audiocraft's config values and are overridden key by key by `loss_cfgs[name]`.
    """
    weights = as_dict(weights)
    loss_cfgs = as_dict(loss_cfgs)
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
        kwargs = {**DEFAULT_LOSS_KWARGS.get(name, {}), **as_dict(loss_cfgs.get(name))}
        (aux if float(weight) > 0 else info)[name] = build_loss(name, sample_rate, **kwargs)
    return aux, info
