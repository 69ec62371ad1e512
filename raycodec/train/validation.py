"""Validation of the (EMA) model at every evaluation bandwidth."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

import torch
from torch import nn

from raycodec.losses import build_loss
from raycodec.metrics import si_snr

CODEBOOK_KEYS = ("codebook_usage", "codebook_perplexity")


class Validator:
    """Computes SI-SNR, mel, msspec, bandwidth and codebook metrics per bandwidth."""

    def __init__(self, sample_rate: int, bandwidths: Iterable[float], loss_kwargs: Mapping,
                 device: torch.device):
        self.bandwidths = [float(b) for b in bandwidths]
        self.losses = {name: build_loss(name, sample_rate, **dict(loss_kwargs.get(name) or {}))
                       .to(device) for name in ("mel", "msspec")}
        self.device = device

    @torch.no_grad()
    def __call__(self, model: nn.Module, batches: Iterable[torch.Tensor]) -> dict[str, float]:
        """Mean metrics over `batches`: `<metric>_<bw>kbps`, and `<metric>` averaged over bw."""
        model.eval()
        sums: dict[str, float] = defaultdict(float)
        n_batches = 0
        for x in batches:
            x = x.to(self.device, dtype=torch.float32)
            n_batches += 1
            for bw in self.bandwidths:
                model.set_target_bandwidth(bw)
                res = model(x)
                values = {"sisnr": si_snr(x, res.x).mean(), "bandwidth": res.bandwidth,
                          **{name: loss(res.x, x) for name, loss in self.losses.items()},
                          **{k: res.metrics[k] for k in CODEBOOK_KEYS}}
                for name, value in values.items():
                    sums[f"{name}_{bw:g}kbps"] += float(value)
        if not n_batches:
            raise RuntimeError("the validation set produced no batch")
        out = {k: v / n_batches for k, v in sums.items()}
        for name in {k.rsplit("_", 1)[0] for k in out}:
            per_bw = [out[f"{name}_{bw:g}kbps"] for bw in self.bandwidths]
            out[name] = sum(per_bw) / len(per_bw)
        return out
