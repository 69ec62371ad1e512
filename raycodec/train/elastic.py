"""Elastic Ray Train workers (`ray.num_workers: [MIN, MAX]`): each rank's slice of the batch.

Ray Train restarts the whole worker group from the latest checkpoint whenever its size changes
(a spot node lost, or room to grow back). Two things keep such a run the run it would have been
at any fixed size:

- The global batch `dataset.batch_size` stays constant. Rank r of W takes items [lo, hi) of
  every global batch, the first `B % W` ranks one item more than the others, and its gradients
  are scaled by `weight = W * n_r / B` (`GANStep(..., weight)`): DDP's mean over ranks is then
  the full batch's gradient, the balancer's gradient norms are the full batch's, and so are the
  discriminator's gradients and the commitment penalty's (exact for losses that are means over
  items, which every training loss is; tests/train/test_elastic.py checks it against one process
  on the whole batch). Each rank still runs one forward and one backward per step, so no rank
  waits on another's extra micro-batch. Logged train metrics are the plain mean over ranks.
- The data stream is deterministic: every rank builds its own stream (`epoch_stream(slots=)`)
  from the job's seed, starting at the checkpoint's epoch, so the global batch of step s is the
  same set of segments whatever the world size; every batch's segment ids are checked against
  the step before it is used.

Memory-bounded gradient accumulation (several micro-batches per rank) is not offered: the
balancer needs the whole batch's gradient norms before any micro-batch's gradient is scaled,
the discriminator update sits between the generator's forward and its losses, and the
quantizer updates its EMA codebooks in the forward, so accumulating micro-batches would not
equal the full-batch step. A rank's share is at most ceil(B / MIN) items: size MIN for memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from omegaconf import DictConfig


@dataclass(frozen=True)
class BatchShare:
    """Rank `rank` of `world` takes items [lo, hi) of every global batch of `batch` items."""

    rank: int
    world: int
    batch: int
    lo: int
    hi: int

    @property
    def size(self) -> int:
        """Items this rank trains on per step."""
        return self.hi - self.lo

    @property
    def weight(self) -> float:
        """This rank's items over an equal share (1.0 when the batch divides evenly)."""
        return self.world * self.size / self.batch

    def check(self, segment_ids: torch.Tensor, step: int) -> None:
        """Raise when a batch is not this rank's slice of global batch `step` (counted from 1)."""
        first = (step - 1) * self.batch + self.lo
        expected = torch.arange(first, first + self.size, dtype=torch.int64)
        got = segment_ids.to(torch.int64).cpu()
        if got.shape != expected.shape or not torch.equal(got, expected):
            raise RuntimeError(f"rank {self.rank}/{self.world}: step {step} got segments "
                               f"{got.tolist()[:4]}..., expected {first}..{first + self.size - 1}"
                               " (the training stream is out of position)")


def batch_share(batch: int, world: int, rank: int) -> BatchShare:
    """Rank `rank`'s slice of a global batch of `batch` items over `world` ranks."""
    if not 0 <= rank < world <= batch:
        raise ValueError(f"need 0 <= rank < world <= batch, got rank {rank}, world {world}, "
                         f"batch {batch}")
    base, extra = divmod(batch, world)
    lo = rank * base + min(rank, extra)
    return BatchShare(rank, world, batch, lo, lo + base + (rank < extra))


@dataclass
class StreamSpec:
    """What a worker needs to build its slice of the training stream (`WorkerJob.stream`)."""

    table: Any                     # object-store reference of the training manifest table
    end_epoch: int
    samples_per_epoch: int
    batch_size: int
    segment_duration: float
    sample_rate: int
    channels: int
    min_segment_ratio: float
    seed: int


def stream_spec(cfg: DictConfig, table) -> StreamSpec:
    """The training stream of `cfg` over the manifest `table` (put in the object store)."""
    import ray

    return StreamSpec(ray.put(table), cfg.optim.epochs,
                      cfg.optim.updates_per_epoch * cfg.dataset.batch_size,
                      cfg.dataset.batch_size, cfg.dataset.segment_duration, cfg.sample_rate,
                      cfg.channels, cfg.dataset.min_segment_ratio, cfg.seed)


def rank_batches(spec: StreamSpec, share: BatchShare, start_epoch: int) -> Iterator[dict]:
    """This rank's batches (`share.size` items each) from `start_epoch` on, in step order."""
    import ray
    from ray.data import DataContext

    from raycodec.data.stream import epoch_stream

    context = DataContext.get_current()
    context.execution_options.preserve_order = True  # batches in step order
    context.enable_progress_bars = False
    ds = epoch_stream(ray.get(spec.table), start_epoch=start_epoch, end_epoch=spec.end_epoch,
                      samples_per_epoch=spec.samples_per_epoch,
                      segment_duration=spec.segment_duration, sample_rate=spec.sample_rate,
                      channels=spec.channels, seed=spec.seed,
                      min_segment_ratio=spec.min_segment_ratio, batch_size=spec.batch_size,
                      slots=(share.lo, share.hi))
    return iter(ds.iter_torch_batches(batch_size=share.size, drop_last=True, prefetch_batches=2))
