"""Small torch.distributed helpers; all of them are no-ops in a single process."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Iterable

import torch
import torch.distributed as dist
from torch import nn


def world_size() -> int:
    """Number of ranks in the default process group (1 when not distributed)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_distributed() -> bool:
    """True when a process group with more than one rank is running."""
    return world_size() > 1


def rank() -> int:
    """This process's rank (0 when not distributed)."""
    return dist.get_rank() if is_distributed() else 0


def collective_device(tensor: torch.Tensor) -> torch.Tensor:
    """`tensor` on a device the process group's backend accepts (NCCL needs CUDA)."""
    if dist.get_backend() == "nccl" and tensor.device.type != "cuda":
        return tensor.cuda()
    return tensor


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum `tensor` in place across ranks; returns it."""
    if is_distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def broadcast_tensors(tensors: Iterable[torch.Tensor], src: int = 0) -> None:
    """Overwrite `tensors` in place with rank `src`'s values."""
    if not is_distributed():
        return
    for t in tensors:
        dist.broadcast(t.data, src=src)


def all_ranks_true(flag: torch.Tensor | bool) -> bool:
    """True iff `flag` is true on every rank (one all_reduce; every rank must call it)."""
    flag = torch.as_tensor(flag, dtype=torch.float32).reshape(1)
    if is_distributed():
        flag = collective_device(flag)
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item() > 0)


@functools.lru_cache(maxsize=1)
def _buffer_sync_flag() -> str:
    from torch.nn.parallel import DistributedDataParallel

    # torch >= 2.14 deprecates broadcast_buffers (a FutureWarning on every wrap, so on every
    # worker) for forward_sync_buffers. The new flag still syncs buffers once at init, which is
    # harmless: every rank builds the same buffers from the same seed.
    params = inspect.signature(DistributedDataParallel).parameters
    return "forward_sync_buffers" if "forward_sync_buffers" in params else "broadcast_buffers"


def ddp_kwargs() -> dict[str, bool]:
    """DistributedDataParallel kwargs without per-forward buffer broadcasts (the codebooks keep
    themselves in sync), spelt for the installed torch."""
    return {_buffer_sync_flag(): False}


def wrap_ddp(module: nn.Module) -> nn.Module:
    """`module` in DistributedDataParallel with `ddp_kwargs()`: the one DDP wrapper of training.

    Ray's TorchTrainer has already set this worker's CUDA device, so this is all
    `ray.train.torch.prepare_model` would do for a model that is on its device.
    """
    from torch.nn.parallel import DistributedDataParallel

    device = next(module.parameters()).device
    device_ids = [device] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=device_ids, **ddp_kwargs())
