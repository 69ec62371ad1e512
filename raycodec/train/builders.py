"""Build a `GANStep` from an audiocraft-style solver config (`losses`, `balancer`, `adversarial`,
per-loss and per-adversary sections, `optim`, plus `autocast`, `autocast_dtype`, `compile` and
`compile_kwargs` (passed to `torch.compile`, e.g. `{backend: aot_eager}`)).

The config must be complete (`raycodec.config.load_config`): the defaults live in
`raycodec/config/default.yaml` only, and nothing here fills in a missing key.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from raycodec.adversarial.builders import build_adversaries, build_optimizer
from raycodec.config.sections import Section, check_kwargs
from raycodec.losses.balancer import Balancer
from raycodec.losses.builders import build_aux_losses
from raycodec.train.ema import ModelEMA
from raycodec.train.step import GANStep

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


def build_step(model: nn.Module, cfg: Any, device: torch.device | str = "cpu") -> GANStep:
    """Move `model` to `device` and build its optimizer, adversaries, losses, balancer and EMA
    from a complete config."""
    cfg = Section(cfg)
    device = resolve_device(device)
    model = model.to(device)
    raw = getattr(model, "module", model)

    dtype_name = cfg["autocast_dtype"]
    if dtype_name not in AUTOCAST_DTYPES:
        raise ValueError(
            f"autocast_dtype: expected one of {sorted(AUTOCAST_DTYPES)}, got {dtype_name!r}"
        )
    autocast_dtype = AUTOCAST_DTYPES[dtype_name] if cfg["autocast"] else None

    weights = cfg["losses"]
    aux, info = build_aux_losses(weights, raw.sample_rate, cfg)
    aux = {k: m.to(device) for k, m in aux.items()}
    info = {k: m.to(device) for k, m in info.items()}

    adversaries = build_adversaries(cfg, device, autocast_dtype)
    adversarial = cfg["adversarial"]
    balance_weights = {name: float(weights[name]) for name in aux}
    zero_weight = []
    for kind in ("adv", "feat"):
        if float(weights[kind]) <= 0:
            zero_weight.append(kind)
            continue
        if kind == "feat" and not adversarial["feat_loss"]:
            continue
        for name in adversaries:
            balance_weights[f"{kind}_{name}"] = float(weights[kind])
    if not balance_weights:
        raise ValueError(f"losses: expected at least one loss with weight > 0, got {weights}")

    balancer = cfg["balancer"]
    check_kwargs(Balancer, balancer, "balancer")
    balancer = Balancer(balance_weights, **balancer)

    optim = cfg["optim"]
    optimizer = build_optimizer(raw.parameters(), optim)
    ema = None
    if optim["ema"]["use"] and optim["ema"]["decay"] is not None:
        ema = ModelEMA(raw, decay=float(optim["ema"]["decay"]), device=optim["ema"]["device"])

    if cfg["compile"]:
        compile_modules(raw, adversaries, **cfg["compile_kwargs"])

    return GANStep(
        model, optimizer, balancer, adversaries=adversaries, aux_losses=aux, info_losses=info,
        adv_every=float(adversarial["every"]), max_norm=float(optim["max_norm"]), ema=ema,
        ema_every=int(optim["ema"]["updates"]), autocast_dtype=autocast_dtype,
        zero_weight=tuple(zero_weight),
    )
