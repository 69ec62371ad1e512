"""The one DDP path (`GANStep.distribute` -> `raycodec.distrib.wrap_ddp`), on 2 real gloo ranks.

The training loop calls `step_fn.distribute()` exactly like this test; torch >= 2.14 prints a
FutureWarning for every DDP built with the deprecated `broadcast_buffers`, once per worker.
"""

import inspect
import os
import warnings

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from raycodec.distrib import ddp_kwargs
from raycodec.train import build_step
from tests.distributed_utils import run_distributed
from tests.train.tiny import batch, tiny_cfg, tiny_model

NEW_FLAG = "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters


def _messages(caught) -> list[str]:
    return [f"{w.category.__name__}: {w.message}" for w in caught]


def _wrap_and_step(rank: int, world: int, out_dir: str) -> None:
    torch.manual_seed(0)
    step = build_step(tiny_model(), tiny_cfg())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        step.distribute()
        metrics = step(batch(b=1, seed=rank), 0, torch.Generator().manual_seed(0))
    with warnings.catch_warnings(record=True) as control:  # the check can see the warning
        warnings.simplefilter("always")
        DistributedDataParallel(nn.Linear(2, 2), broadcast_buffers=False)
    wrapped = [step.model, *(a._train_module for a in step.adversaries.values())]
    torch.save({"caught": _messages(caught), "control": _messages(control),
                "wrapped": [type(m).__name__ for m in wrapped], "skipped": metrics["skipped"]},
               os.path.join(out_dir, f"rank{rank}.pt"))


def test_two_rank_wrap_prints_no_broadcast_buffers_warning(tmp_path, capfd):
    run_distributed(_wrap_and_step, 2, str(tmp_path))
    printed = capfd.readouterr()  # the spawned ranks write to this process's stderr
    for rank in range(2):
        result = torch.load(tmp_path / f"rank{rank}.pt", weights_only=False)
        assert result["wrapped"] == ["DistributedDataParallel"] * 2 and result["skipped"] == 0
        assert not [m for m in result["caught"] if "broadcast_buffers" in m], result["caught"]
        if NEW_FLAG:
            assert any(m.startswith("FutureWarning") and "broadcast_buffers" in m
                       for m in result["control"]), result["control"]
    assert "broadcast_buffers" not in printed.err + printed.out
    assert ddp_kwargs() == ({"forward_sync_buffers": False} if NEW_FLAG
                            else {"broadcast_buffers": False})
