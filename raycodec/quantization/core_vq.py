"""Vector quantization with EMA codebooks, k-means init and dead-code replacement.

Buffer names (`_codebook.{inited, cluster_size, embed, embed_avg}`) follow the `encodec` package.
Under torch.distributed the codebooks stay identical on every rank: the EMA statistics are summed
across ranks each training step (so 2 ranks on half batches equal 1 rank on the full batch), and
k-means init and dead-code replacement are decided from synced state, computed on rank 0 and
broadcast.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from raycodec import distrib


def _sample_vectors(samples: torch.Tensor, num: int) -> torch.Tensor:
    n = samples.shape[0]
    if n >= num:
        idx = torch.randperm(n, device=samples.device)[:num]
    else:
        idx = torch.randint(0, n, (num,), device=samples.device)
    return samples[idx]


def _nearest(x: torch.Tensor, embed: torch.Tensor) -> torch.Tensor:
    """Index of the closest codebook row for every row of x (squared euclidean distance)."""
    dist = -(x.pow(2).sum(1, keepdim=True) - 2 * x @ embed.t() + embed.pow(2).sum(1)[None])
    return dist.max(dim=-1).indices


def kmeans(samples: torch.Tensor, num_clusters: int, num_iters: int = 10):
    """Lloyd's k-means; returns (means [K, D], cluster sizes [K])."""
    means = _sample_vectors(samples, num_clusters)
    bins = torch.zeros(num_clusters, device=samples.device, dtype=torch.long)
    for _ in range(num_iters):
        buckets = _nearest(samples, means)
        bins = torch.bincount(buckets, minlength=num_clusters)
        empty = bins == 0
        new_means = torch.zeros_like(means).index_add_(0, buckets, samples)
        new_means = new_means / bins.masked_fill(empty, 1)[:, None]
        means = torch.where(empty[:, None], means, new_means)
    return means, bins


class EuclideanCodebook(nn.Module):
    """A codebook of `codebook_size` vectors of size `dim`, learned by EMA (no gradients)."""

    def __init__(self, dim: int, codebook_size: int, kmeans_init: bool = True,
                 kmeans_iters: int = 50, decay: float = 0.99, epsilon: float = 1e-5,
                 threshold_ema_dead_code: float = 2.0):
        super().__init__()
        self.codebook_size, self.decay, self.epsilon = codebook_size, decay, epsilon
        self.kmeans_iters = kmeans_iters
        self.threshold_ema_dead_code = threshold_ema_dead_code
        embed = torch.zeros(codebook_size, dim)
        if not kmeans_init:
            nn.init.kaiming_uniform_(embed)
        self.register_buffer("inited", torch.tensor([float(not kmeans_init)]))
        self.register_buffer("cluster_size", torch.zeros(codebook_size))
        self.register_buffer("embed", embed)
        self.register_buffer("embed_avg", embed.clone())

    def _init_embed(self, x: torch.Tensor) -> None:
        if self.inited.item():
            return
        if distrib.rank() == 0:
            embed, sizes = kmeans(x, self.codebook_size, self.kmeans_iters)
            self.embed.copy_(embed)
            self.cluster_size.copy_(sizes)
            # embed_avg holds running *sums* (embed = embed_avg / size). encodec/audiocraft set
            # it to the means, which shrinks the codebook ~size-fold at the first EMA update.
            self.embed_avg.copy_(embed * self._smoothed_sizes()[:, None])
        self.inited.fill_(1.0)
        distrib.broadcast_tensors([self.embed, self.embed_avg, self.cluster_size])

    def _smoothed_sizes(self) -> torch.Tensor:
        # Laplace smoothing keeps empty clusters from dividing by zero.
        n = self.cluster_size.sum()
        k = self.codebook_size
        return (self.cluster_size + self.epsilon) / (n + k * self.epsilon) * n

    def _ema_update(self, x: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        counts = torch.bincount(codes, minlength=self.codebook_size).to(x.dtype)
        sums = torch.zeros_like(self.embed).index_add_(0, codes, x)
        stats = distrib.all_reduce_sum(torch.cat([counts[:, None], sums], dim=1))
        counts, sums = stats[:, 0], stats[:, 1:]
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.embed_avg.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        self.embed.copy_(self.embed_avg / self._smoothed_sizes()[:, None])
        return counts

    def _expire_codes(self, x: torch.Tensor) -> None:
        if self.threshold_ema_dead_code <= 0:
            return
        # cluster_size is identical on every rank, so every rank takes the same branch.
        expired = self.cluster_size < self.threshold_ema_dead_code
        if not expired.any():
            return
        fresh = _sample_vectors(x, self.codebook_size)
        distrib.broadcast_tensors([fresh])
        # Give revived codes a grace count and keep embed == embed_avg / size consistent,
        # so the next EMA update does not undo the replacement.
        self.cluster_size.masked_fill_(expired, float(self.threshold_ema_dead_code))
        sizes = self._smoothed_sizes()[:, None]
        self.embed_avg.copy_(torch.where(expired[:, None], fresh * sizes, self.embed_avg))
        self.embed.copy_(self.embed_avg / sizes)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x [N, D] -> (quantized [N, D], codes [N], code counts [K] used for metrics)."""
        if self.training:
            self._init_embed(x)
        codes = _nearest(x, self.embed)
        quantized = F.embedding(codes, self.embed)
        if self.training:
            counts = self._ema_update(x, codes)
            self._expire_codes(x)
        else:
            counts = torch.bincount(codes, minlength=self.codebook_size).to(x.dtype)
        return quantized, codes, counts

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x [N, D] -> codes [N]."""
        return _nearest(x, self.embed)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [...] -> vectors [..., D]."""
        return F.embedding(codes, self.embed)


class VectorQuantization(nn.Module):
    """One quantizer layer on [B, D, T] tensors, with a commitment loss in training."""

    def __init__(self, dim: int, codebook_size: int, **codebook_kwargs):
        super().__init__()
        self._codebook = EuclideanCodebook(dim, codebook_size, **codebook_kwargs)
        self.codebook_size = codebook_size

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """[B, D, T] -> codes [B, T]."""
        b, d, t = x.shape
        return self._codebook.encode(x.transpose(1, 2).reshape(-1, d)).view(b, t)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, T] -> [B, D, T]."""
        return self._codebook.decode(codes).transpose(1, 2)

    def forward(self, x: torch.Tensor):
        """[B, D, T] -> (quantized [B, D, T], codes [B, T], commitment loss, counts [K])."""
        b, d, t = x.shape
        flat = x.transpose(1, 2).reshape(-1, d)
        quantized, codes, counts = self._codebook(flat.detach())
        quantized = quantized.view(b, t, d).transpose(1, 2)
        commit = F.mse_loss(quantized, x) if self.training else x.new_zeros(())
        return quantized, codes.view(b, t), commit, counts
