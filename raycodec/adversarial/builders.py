"""Build adversaries and optimizers from audiocraft-style config sections.

Sections: `adversarial: {every, adversaries, adv_loss, feat_loss, normalize}`, one section per
adversary (`msstftd`, `mpd`, `msd`) and `optim: {lr, optimizer, adam: {betas, weight_decay}}`
(flat `betas`/`weight_decay`/`eps` keys are accepted too). Missing keys take audiocraft's
`solver/compression/default.yaml` values.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from raycodec.adversarial.losses import AdversarialLoss
from raycodec.adversarial.msstftd import DiscriminatorSTFT, MultiScaleSTFTDiscriminator
from raycodec.adversarial.waveform import (
    MultiPeriodDiscriminator,
    MultiScaleDiscriminator,
    PeriodDiscriminator,
    ScaleDiscriminator,
)
from raycodec.losses.builders import as_dict, check_kwargs

ADVERSARIES: dict[str, type[nn.Module]] = {
    "msstftd": MultiScaleSTFTDiscriminator,
    "mpd": MultiPeriodDiscriminator,
    "msd": MultiScaleDiscriminator,
}

_LEAKY = {"activation": "LeakyReLU", "activation_params": {"negative_slope": 0.3}}
DEFAULT_ADVERSARY_KWARGS: dict[str, dict[str, Any]] = {
    "msstftd": {
        "in_channels": 1, "out_channels": 1, "filters": 32, "norm": "weight_norm",
        "n_ffts": [1024, 2048, 512, 256, 128], "hop_lengths": [256, 512, 128, 64, 32],
        "win_lengths": [1024, 2048, 512, 256, 128], **_LEAKY,
    },
    "msd": {
        "in_channels": 1, "out_channels": 1,
        "scale_norms": ["spectral_norm", "weight_norm", "weight_norm"], "kernel_sizes": [5, 3],
        "filters": 16, "max_filters": 1024, "downsample_scales": [4, 4, 4, 4],
        "inner_kernel_sizes": None, "groups": [4, 4, 4, 4], "strides": None, "paddings": None,
        **_LEAKY,
    },
    "mpd": {
        "in_channels": 1, "out_channels": 1, "periods": [2, 3, 5, 7, 11], "n_layers": 5,
        "kernel_sizes": [5, 3], "stride": 3, "filters": 8, "filters_scale": 4,
        "max_filters": 1024, "norm": "weight_norm", **_LEAKY,
    },
}
DEFAULT_ADVERSARIAL = {"every": 1, "adversaries": ["msstftd"], "adv_loss": "hinge",
                       "feat_loss": "l1", "normalize": True}
DEFAULT_OPTIM = {"lr": 3e-4, "optimizer": "adam",
                 "adam": {"betas": [0.5, 0.9], "weight_decay": 0.0}}

# Sub-discriminator classes that receive the wrappers' **kwargs (checked for unknown keys).
_INNER = {"msstftd": DiscriminatorSTFT, "mpd": PeriodDiscriminator, "msd": ScaleDiscriminator}


def _mpd_aliases(kwargs: dict) -> dict:
    # audiocraft's mpd config says `kernel_size`/`filter_scales` while its class takes
    # `kernel_sizes`/`filters_scale`; accept both spellings.
    if "filter_scales" in kwargs:
        kwargs["filters_scale"] = kwargs.pop("filter_scales")
    if "kernel_size" in kwargs:
        kwargs["kernel_sizes"] = [kwargs.pop("kernel_size"), kwargs.get("kernel_sizes", [5, 3])[1]]
    return kwargs


def build_adversary(name: str, **kwargs: Any) -> nn.Module:
    """One discriminator by name (`msstftd`, `mpd`, `msd`) with audiocraft's config defaults."""
    if name not in ADVERSARIES:
        raise ValueError(f"unknown adversary {name!r}; expected one of {sorted(ADVERSARIES)}")
    given = _mpd_aliases(dict(kwargs)) if name == "mpd" else dict(kwargs)
    kwargs = {**DEFAULT_ADVERSARY_KWARGS[name], **given}
    outer = ADVERSARIES[name]
    own = set(inspect.signature(outer.__init__).parameters)
    check_kwargs(_INNER[name], {k: v for k, v in kwargs.items() if k not in own}, name)
    return outer(**kwargs)


def build_optimizer(params: Iterable[nn.Parameter], optim_cfg: Any = None) -> torch.optim.Optimizer:
    """Adam/AdamW from an audiocraft `optim` section (`lr`, `optimizer`, `adam: {...}`)."""
    cfg = {**DEFAULT_OPTIM, **as_dict(optim_cfg)}
    name = cfg["optimizer"]
    klass = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}.get(name)
    if klass is None:
        raise ValueError(f"unknown optim.optimizer {name!r}; expected 'adam' or 'adamw'")
    kwargs = dict(as_dict(cfg.get("adam")))
    for key in ("betas", "weight_decay", "eps"):
        if key in cfg:
            kwargs[key] = cfg[key]
    if "betas" in kwargs:
        kwargs["betas"] = tuple(kwargs["betas"])
    return klass(list(params), lr=float(cfg["lr"]), **kwargs)


def build_adversaries(
    cfg: Any, device: torch.device | str = "cpu", autocast_dtype: torch.dtype | None = None
) -> nn.ModuleDict:
    """`nn.ModuleDict` name -> `AdversarialLoss` from a config holding `adversarial`, `optim`
    and the per-adversary sections; empty when `adversarial.adversaries` is empty."""
    cfg = as_dict(cfg)
    adv_cfg = {**DEFAULT_ADVERSARIAL, **as_dict(cfg.get("adversarial"))}
    names = list(adv_cfg.get("adversaries") or [])
    unknown = [n for n in names if n not in ADVERSARIES]
    if unknown:
        raise ValueError(
            f"adversarial.adversaries: unknown {unknown}; expected {sorted(ADVERSARIES)}"
        )
    losses = nn.ModuleDict()
    for name in names:
        adversary = build_adversary(name, **as_dict(cfg.get(name))).to(device)
        optimizer = build_optimizer(adversary.parameters(), cfg.get("optim"))
        losses[name] = AdversarialLoss(
            adversary, optimizer, adv_loss=adv_cfg["adv_loss"], feat_loss=adv_cfg.get("feat_loss"),
            normalize=adv_cfg.get("normalize", True), autocast_dtype=autocast_dtype,
        )
    return losses
