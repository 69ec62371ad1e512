"""Weight EMA of a model (flashy's `ModuleDictEMA` semantics, audiocraft's `optim.ema`)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn


class ModelEMA:
    """Bias-corrected EMA of every floating-point entry of `module.state_dict()`.

    With `unbias=True` the weight of step n is 1 / (sum of decay^k), so early averages are not
    pulled towards the initial weights. Codebook buffers are averaged like parameters, as flashy.
    """

    def __init__(self, module: nn.Module, decay: float = 0.99, unbias: bool = True,
                 device: torch.device | str | None = None):
        if not 0 <= decay < 1:
            raise ValueError(f"ema: expected 0 <= decay < 1, got {decay}")
        self.module = getattr(module, "module", module)
        self.decay, self.unbias = decay, unbias
        self.device = torch.device(device) if device else None
        self.count = 0.0
        self.state = {
            k: v.detach().to(self.device or v.device, copy=True)
            for k, v in self.module.state_dict().items() if v.is_floating_point()
        }

    @torch.no_grad()
    def step(self) -> None:
        """Fold the module's current weights into the average."""
        if self.unbias:
            self.count = self.count * self.decay + 1
            w = 1 / self.count
        else:
            w = 1 - self.decay
        current = self.module.state_dict()
        keys = list(self.state)
        avg = [self.state[k] for k in keys]
        cur = [current[k].to(self.state[k].device) for k in keys]
        torch._foreach_lerp_(avg, cur, w)  # avg = (1 - w) avg + w cur

    @torch.no_grad()
    def copy_to(self, module: nn.Module) -> None:
        """Load the averaged weights into `module` (e.g. an evaluation copy of the model)."""
        module = getattr(module, "module", module)
        target = module.state_dict()
        for key, value in self.state.items():
            target[key].copy_(value)

    def state_dict(self) -> dict:
        """flashy's layout: {'state': {'model': {name: tensor}}, 'count': float}."""
        return {"state": {"model": dict(self.state)}, "count": self.count}

    def load_state_dict(self, state: Mapping) -> None:
        """Restore an EMA saved by `state_dict` (keys must match the module's)."""
        saved = state["state"]["model"]
        if set(saved) != set(self.state):
            missing, extra = set(self.state) - set(saved), set(saved) - set(self.state)
            raise ValueError(f"ema: state keys differ (missing {sorted(missing)[:5]}, "
                             f"unexpected {sorted(extra)[:5]})")
        for key, value in saved.items():
            self.state[key].copy_(value)
        self.count = float(state["count"])
