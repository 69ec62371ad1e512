"""Validation of the (EMA) model: audiocraft's valid stage plus per-bandwidth metrics.

At the model's full bandwidth every loss of the training step is computed with the step's own
criteria and discriminators (`sisnr`, `mel`, `msspec`, `l1`, `adv_<name>`, `feat_<name>`,
`penalty`, ...), so a name means the same in train and valid (see raycodec.tracking.names). At
each evaluation bandwidth: `si_snr_db`, `mel`, `msspec` and the codebook metrics, keyed
`<metric>_<bw>kbps`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping

import torch
from torch import nn

from raycodec.metrics import si_snr
from raycodec.tracking.names import metric_key

CODEBOOK_KEYS = ("codebook_usage", "codebook_perplexity")
PER_BANDWIDTH_LOSSES = ("mel", "msspec")


def full_bandwidth(model: nn.Module) -> float:
    """The kbps of all codebooks: where audiocraft's valid stage measures its losses."""
    return model.quantizer.n_q * model.quantizer.bandwidth_per_quantizer


class Validator:
    """Mean validation metrics of a model over batches (see the module docstring)."""

    def __init__(self, bandwidths: Iterable[float], criteria: Mapping[str, Callable],
                 adversaries: Mapping[str, nn.Module], device: torch.device):
        self.bandwidths = [float(b) for b in bandwidths]
        self.criteria = dict(criteria)  # name -> loss(y, x), the training step's modules
        self.adversaries = dict(adversaries)  # name -> AdversarialLoss: (adv, feat) of (y, x)
        self.device = device

    @classmethod
    def from_step(cls, step_fn, bandwidths: Iterable[float], device: torch.device) -> Validator:
        """A Validator using the losses and discriminators of a GANStep."""
        return cls(bandwidths, {**step_fn.aux_losses, **step_fn.info_losses},
                   dict(step_fn.adversaries.items()), device)

    def _full_band(self, res, x: torch.Tensor) -> dict[str, torch.Tensor]:
        y = res.x.float()
        values = {name: loss(y, x) for name, loss in self.criteria.items()}
        for name, adversary in self.adversaries.items():
            values[f"adv_{name}"], feat = adversary(y, x)
            if adversary.feat is not None:
                values[f"feat_{name}"] = feat
        for kind in ("adv", "feat"):  # sums over discriminators, as the training step logs
            parts = [v for k, v in values.items() if k.startswith(kind + "_")]
            if parts:
                values[kind] = torch.stack(parts).sum()
        if res.penalty is not None:
            values["penalty"] = res.penalty
        values["si_snr_db"] = si_snr(x, y).mean()
        values.update({k: res.metrics[k] for k in CODEBOOK_KEYS if k in res.metrics})
        return values

    def _at(self, res, x: torch.Tensor, bw: float) -> dict[str, torch.Tensor]:
        y = res.x.float()
        values = {"si_snr_db": si_snr(x, y).mean(),
                  **{n: self.criteria[n](y, x) for n in PER_BANDWIDTH_LOSSES if n in self.criteria},
                  **{k: res.metrics[k] for k in CODEBOOK_KEYS if k in res.metrics}}
        return {metric_key(name, bw): v for name, v in values.items()}

    @torch.no_grad()
    def __call__(self, model: nn.Module, batches: Iterable[torch.Tensor]) -> dict[str, float]:
        """Mean metrics over `batches` (every rank must pass the same number: see the loop)."""
        model.eval()
        sums: dict[str, float] = defaultdict(float)
        n_batches = 0
        full = full_bandwidth(model)
        for x in batches:
            x = x.to(self.device, dtype=torch.float32)
            n_batches += 1
            model.set_target_bandwidth(full)
            full_res = model(x)
            values = self._full_band(full_res, x)
            for bw in self.bandwidths:
                if abs(bw - full) < 1e-9:
                    res = full_res
                else:
                    model.set_target_bandwidth(bw)
                    res = model(x)
                values.update(self._at(res, x, bw))
            for name, value in values.items():
                sums[name] += float(value)
        if not n_batches:
            raise RuntimeError("the validation set produced no batch")
        return {k: v / n_batches for k, v in sums.items()}
