"""Build a `GANStep` from an audiocraft-style solver config (`losses`, `balancer`, `adversarial`,
per-loss and per-adversary sections, `optim`, plus `autocast`, `autocast_dtype`, `compile` and
`compile_kwargs` (passed to `torch.compile`, e.g. `{backend: aot_eager}`)).

Every section defaults to audiocraft's `solver/compression/default.yaml`; given keys override
defaults key by key, like a Hydra override.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from raycodec.adversarial.builders import DEFAULT_ADVERSARIAL, build_adversaries, build_optimizer
from raycodec.losses.balancer import Balancer
from raycodec.losses.builders import DEFAULT_LOSS_WEIGHTS, as_dict, build_aux_losses, check_kwargs
from raycodec.train.ema import ModelEMA
from raycodec.train.step import GANStep

# audiocraft's balancer section; monitor on so that `ratio_<loss>` is always logged.
DEFAULT_BALANCER = {"balance_grads": True, "ema_decay": 0.999, "per_batch_item": True,
                    "total_norm": 1.0, "monitor": True}
DEFAULT_EMA = {"use": True, "updates": 1, "decay": 0.99, "device": None}
AUTOCAST_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device(device: torch.device | str) -> torch.device:
    """torch.device(device), with a clear error when CUDA is asked for but absent."""
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"device={str(device)!r} was requested but no CUDA GPU is available "
            "(torch.cuda.is_available() is False); use device='cpu'"
        )
    return device


def compile_modules(model: nn.Module, adversaries: nn.ModuleDict, **compile_kwargs: Any) -> None:
    """torch.compile in place (state dict keys unchanged): encoder, decoder, discriminators.

    The quantizer stays eager: its EMA updates, k-means and collectives are data-dependent.
    """
    # SEANet's LSTMs otherwise break the graph, and the fallback compiles every layer apart.
    torch._dynamo.config.allow_rnn = True
    compile_kwargs.setdefault("dynamic", False)  # training shapes are fixed per run
    model = getattr(model, "module", model)
    parts = [getattr(model, n) for n in ("encoder", "decoder") if hasattr(model, n)] or [model]
    for part in parts:
        part.compile(**compile_kwargs)
    for adversary in adversaries.values():
        adversary.adversary.compile(**compile_kwargs)


def build_step(model: nn.Module, cfg: Any = None, device: torch.device | str = "cpu") -> GANStep:
    """Move `model` to `device` and build its optimizer, adversaries, losses, balancer and EMA."""
    cfg = as_dict(cfg)
    device = resolve_device(device)
    model = model.to(device)
    raw = getattr(model, "module", model)

    dtype_name = cfg.get("autocast_dtype", "bfloat16")
    if dtype_name not in AUTOCAST_DTYPES:
        raise ValueError(
            f"autocast_dtype: expected one of {sorted(AUTOCAST_DTYPES)}, got {dtype_name!r}"
        )
    autocast_dtype = AUTOCAST_DTYPES[dtype_name] if cfg.get("autocast", False) else None

    weights = {**DEFAULT_LOSS_WEIGHTS, **as_dict(cfg.get("losses"))}
    aux, info = build_aux_losses(weights, raw.sample_rate, cfg)
    aux = {k: m.to(device) for k, m in aux.items()}
    info = {k: m.to(device) for k, m in info.items()}

    adversaries = build_adversaries(cfg, device, autocast_dtype)
    adv_cfg = {**DEFAULT_ADVERSARIAL, **as_dict(cfg.get("adversarial"))}
    balance_weights = {name: float(weights[name]) for name in aux}
    zero_weight = []
    for kind in ("adv", "feat"):
        if float(weights.get(kind, 0)) <= 0:
            zero_weight.append(kind)
            continue
        if kind == "feat" and not adv_cfg.get("feat_loss"):
            continue
        for name in adversaries:
            balance_weights[f"{kind}_{name}"] = float(weights[kind])
    if not balance_weights:
        raise ValueError(f"losses: expected at least one loss with weight > 0, got {weights}")

    balancer_kwargs = {**DEFAULT_BALANCER, **as_dict(cfg.get("balancer"))}
    check_kwargs(Balancer, balancer_kwargs, "balancer")
    balancer = Balancer(balance_weights, **balancer_kwargs)

    optim_cfg = as_dict(cfg.get("optim"))
    optimizer = build_optimizer(raw.parameters(), optim_cfg)
    ema_cfg = {**DEFAULT_EMA, **as_dict(optim_cfg.get("ema"))}
    ema = None
    if ema_cfg["use"] and ema_cfg.get("decay") is not None:
        ema = ModelEMA(raw, decay=float(ema_cfg["decay"]), device=ema_cfg.get("device"))

    if cfg.get("compile", False):
        compile_modules(raw, adversaries, **as_dict(cfg.get("compile_kwargs")))

    return GANStep(
        model, optimizer, balancer, adversaries=adversaries, aux_losses=aux, info_losses=info,
        adv_every=float(adv_cfg["every"]), max_norm=float(optim_cfg.get("max_norm", 0.0) or 0.0),
        ema=ema, ema_every=int(ema_cfg.get("updates", 1)), autocast_dtype=autocast_dtype,
        zero_weight=tuple(zero_weight),
    )
