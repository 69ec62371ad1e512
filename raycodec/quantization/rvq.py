"""Residual vector quantizer (RVQ) with quantizer dropout and bandwidth selection."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from raycodec.quantization.core_vq import VectorQuantization


@dataclass
class QuantizedResult:
    """What the quantizer (and the whole model) returns from forward."""

    x: torch.Tensor
    codes: torch.Tensor
    bandwidth: torch.Tensor  # kbps actually used, scalar tensor
    penalty: torch.Tensor | None = None  # commitment loss (training only)
    metrics: dict = field(default_factory=dict)


class ResidualVectorQuantization(nn.Module):
    """A stack of `num_quantizers` VQ layers, each quantizing the previous residual."""

    def __init__(self, *, num_quantizers: int, **vq_kwargs):
        super().__init__()
        self.layers = nn.ModuleList(VectorQuantization(**vq_kwargs) for _ in range(num_quantizers))

    def forward(self, x: torch.Tensor, n_q: int):
        """Returns (quantized, codes [K, B, T], per-layer commitment losses, per-layer counts)."""
        quantized_out = torch.zeros_like(x)
        residual = x
        codes, losses, counts = [], [], []
        for layer in self.layers[:n_q]:
            quantized, idx, commit, cnt = layer(residual)
            # The quantized output carries no gradient, so every layer's commitment loss sends
            # its gradient to the encoder through `residual` (fixes encodec#25).
            residual = residual - quantized
            quantized_out = quantized_out + quantized
            codes.append(idx)
            losses.append(commit)
            counts.append(cnt)
        return quantized_out, torch.stack(codes), torch.stack(losses), counts

    def encode(self, x: torch.Tensor, n_q: int) -> torch.Tensor:
        """[B, D, T] -> codes [K, B, T]."""
        residual, codes = x, []
        for layer in self.layers[:n_q]:
            idx = layer.encode(residual)
            residual = residual - layer.decode(idx)
            codes.append(idx)
        return torch.stack(codes)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [K, B, T] -> [B, D, T]."""
        out = self.layers[0].decode(codes[0])
        for layer, idx in zip(self.layers[1:], codes[1:]):
            out = out + layer.decode(idx)
        return out


class ResidualVectorQuantizer(nn.Module):
    """RVQ on latents [B, dimension, T] at `frame_rate` Hz; codes are [B, K, T]."""

    def __init__(self, dimension: int = 128, n_q: int = 32, bins: int = 1024,
                 decay: float = 0.99, kmeans_init: bool = True, kmeans_iters: int = 50,
                 threshold_ema_dead_code: float = 2.0, q_dropout: bool = False,
                 frame_rate: float = 75.0, q_dropout_seed: int = 1234):
        super().__init__()
        if n_q < 1 or bins < 2:
            raise ValueError(f"need n_q >= 1 and bins >= 2, got n_q={n_q}, bins={bins}")
        self.dimension, self.n_q, self.bins = dimension, n_q, bins
        self.q_dropout, self.frame_rate = q_dropout, frame_rate
        self.vq = ResidualVectorQuantization(
            num_quantizers=n_q, dim=dimension, codebook_size=bins, decay=decay,
            kmeans_init=kmeans_init, kmeans_iters=kmeans_iters,
            threshold_ema_dead_code=threshold_ema_dead_code)
        # The dropout draw must be the same on every rank (the EMA sync is a collective per
        # layer), so it comes from a generator seeded identically everywhere.
        self.generator = torch.Generator().manual_seed(q_dropout_seed)
        self.n_q_active = n_q

    @property
    def bandwidth_per_quantizer(self) -> float:
        """kbps contributed by one codebook: log2(bins) * frame_rate / 1000."""
        return math.log2(self.bins) * self.frame_rate / 1000

    def n_q_for_bandwidth(self, bandwidth: float | None) -> int:
        """Number of codebooks that fit in `bandwidth` kbps (all of them for None)."""
        if bandwidth is None:
            return self.n_q
        n_q = math.floor(bandwidth / self.bandwidth_per_quantizer + 1e-9)
        if not 1 <= n_q <= self.n_q:
            lo, hi = self.bandwidth_per_quantizer, self.n_q * self.bandwidth_per_quantizer
            raise ValueError(f"bandwidth {bandwidth} kbps is out of range: this quantizer "
                             f"supports {lo:g} to {hi:g} kbps in steps of {lo:g}")
        return n_q

    def set_num_codebooks(self, n: int) -> None:
        """Use the first `n` codebooks at inference (and in training without q_dropout)."""
        if not 1 <= n <= self.n_q:
            raise ValueError(f"num codebooks must be in 1..{self.n_q}, got {n}")
        self.n_q_active = n

    def forward(self, x: torch.Tensor) -> QuantizedResult:
        """Quantize x [B, D, T]; in training, apply q_dropout, EMA updates and the STE."""
        n_q = self.n_q_active
        if self.training and self.q_dropout:
            n_q = int(torch.randint(1, self.n_q + 1, (1,), generator=self.generator))
        x32 = x.float()  # codebooks stay in fp32 even under autocast
        with torch.autocast(device_type=x.device.type, enabled=False):
            quantized, codes, losses, counts = self.vq(x32, n_q)
        metrics = _codebook_metrics(counts)
        if self.training:
            quantized = x32 + (quantized - x32).detach()  # straight-through estimator
        bw = torch.tensor(n_q * self.bandwidth_per_quantizer, device=x.device)
        penalty = losses.mean() if self.training else None
        return QuantizedResult(quantized.to(x.dtype), codes.transpose(0, 1), bw, penalty, metrics)

    def encode(self, x: torch.Tensor, n_q: int | None = None) -> torch.Tensor:
        """[B, D, T] -> codes [B, K, T] with the active (or given) number of codebooks."""
        return self.vq.encode(x.float(), n_q or self.n_q_active).transpose(0, 1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, K, T] -> [B, D, T]."""
        if codes.shape[1] > self.n_q:
            raise ValueError(f"codes have {codes.shape[1]} codebooks, the quantizer {self.n_q}")
        return self.vq.decode(codes.transpose(0, 1))


def _codebook_metrics(counts: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per-layer codebook usage (fraction of codes hit) and perplexity, plus their means."""
    metrics: dict[str, torch.Tensor] = {}
    stacked = torch.stack(counts)  # [n_q, bins]
    probs = stacked / stacked.sum(dim=1, keepdim=True).clamp_min(1)
    usage = (stacked > 0).float().mean(dim=1)
    entropy = -(probs * torch.log(probs.clamp_min(1e-12))).sum(dim=1)
    perplexity = entropy.exp()
    for i in range(len(counts)):
        metrics[f"codebook_usage_q{i}"] = usage[i]
        metrics[f"codebook_perplexity_q{i}"] = perplexity[i]
    metrics["codebook_usage"] = usage.mean()
    metrics["codebook_perplexity"] = perplexity.mean()
    return metrics
