"""Build adversaries and optimizers from audiocraft-style config sections.

Sections: `adversarial: {every, adversaries, adv_loss, feat_loss, normalize}`, one section per
adversary (`msstftd`, `mpd`, `msd`) and `optim: {lr, optimizer, adam: {betas, weight_decay}}`
of a complete config; the defaults live in `raycodec/config/default.yaml` only.
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
from raycodec.config.sections import Section, check_kwargs

ADVERSARIES: dict[str, type[nn.Module]] = {
    "msstftd": MultiScaleSTFTDiscriminator,
    "mpd": MultiPeriodDiscriminator,
    "msd": MultiScaleDiscriminator,
}

# Sub-discriminator classes that receive the wrappers' **kwargs (checked for unknown keys).
_INNER = {"msstftd": DiscriminatorSTFT, "mpd": PeriodDiscriminator, "msd": ScaleDiscriminator}
PERIOD_KERNEL_SIZES = inspect.signature(PeriodDiscriminator).parameters["kernel_sizes"].default


def _mpd_aliases(kwargs: dict) -> dict:
    # audiocraft's mpd config says `kernel_size`/`filter_scales` while its class takes
    # `kernel_sizes`/`filters_scale`; accept both spellings. `kernel_size` sets the layers'
    # kernel; the post conv keeps PeriodDiscriminator's own second kernel size (3).
    if "filter_scales" in kwargs:
        kwargs["filters_scale"] = kwargs.pop("filter_scales")
    if "kernel_size" in kwargs:
        kernel_sizes = kwargs.get("kernel_sizes") or PERIOD_KERNEL_SIZES
        kwargs["kernel_sizes"] = [kwargs.pop("kernel_size"), kernel_sizes[1]]
    return kwargs


def build_adversary(name: str, **kwargs: Any) -> nn.Module:
    """One discriminator by name (`msstftd`, `mpd`, `msd`) from its config section's kwargs."""
    if name not in ADVERSARIES:
        raise ValueError(f"unknown adversary {name!r}; expected one of {sorted(ADVERSARIES)}")
    kwargs = _mpd_aliases(dict(kwargs)) if name == "mpd" else dict(kwargs)
    outer = ADVERSARIES[name]
    own = set(inspect.signature(outer.__init__).parameters)
    check_kwargs(_INNER[name], {k: v for k, v in kwargs.items() if k not in own}, name)
    return outer(**kwargs)


def build_optimizer(params: Iterable[nn.Parameter], optim: Any) -> torch.optim.Optimizer:
    """Adam/AdamW from the `optim` section (`lr`, `optimizer`, `adam: {betas, weight_decay}`)."""
    optim = Section(optim, "optim")
    name = optim["optimizer"]
    klass = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}.get(name)
    if klass is None:
        raise ValueError(f"unknown optim.optimizer {name!r}; expected 'adam' or 'adamw'")
    adam = dict(optim["adam"])
    if "betas" in adam:
        adam["betas"] = tuple(adam["betas"])
    return klass(list(params), lr=float(optim["lr"]), **adam)


def build_adversaries(
    cfg: Any, device: torch.device | str = "cpu", autocast_dtype: torch.dtype | None = None
) -> nn.ModuleDict:
    """`nn.ModuleDict` name -> `AdversarialLoss` from a config holding `adversarial`, `optim`
    and the per-adversary sections; empty when `adversarial.adversaries` is empty."""
    cfg = Section(cfg)
    adversarial = cfg["adversarial"]
    names = list(adversarial["adversaries"] or [])
    unknown = [n for n in names if n not in ADVERSARIES]
    if unknown:
        raise ValueError(
            f"adversarial.adversaries: unknown {unknown}; expected {sorted(ADVERSARIES)}"
        )
    losses = nn.ModuleDict()
    for name in names:
        adversary = build_adversary(name, **cfg[name]).to(device)
        optimizer = build_optimizer(adversary.parameters(), cfg["optim"])
        losses[name] = AdversarialLoss(
            adversary, optimizer, adv_loss=adversarial["adv_loss"],
            feat_loss=adversarial["feat_loss"], normalize=adversarial["normalize"],
            autocast_dtype=autocast_dtype,
        )
    return losses
