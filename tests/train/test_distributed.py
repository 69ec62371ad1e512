"""2-rank gloo DDP training == 1 process on the full batch (torch.multiprocessing, no Ray).

Runs in float64 (codebooks stay fp32 inside the quantizer): with the hinge loss and all logits
inside the margins, some discriminator gradients cancel exactly (e.g. conv_post biases), and in
fp32 Adam turns their rounding noise (~1e-7 >> eps) into full lr-sized steps of random sign,
which differ between any two summation orders. In fp64 that noise is far below Adam's eps.
Exactness also needs the codebooks to be decided identically from the full batch on both sides:
k-means init and dead-code replacement sample vectors from rank 0's half batch only, so this
test builds the quantizer without k-means (random codebooks, seeded alike) and with
`threshold_ema_dead_code=0`. Quantizer dropout stays ON (its draws are seeded identically).
"""

import os
import time
from datetime import timedelta

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from raycodec.distrib import all_ranks_true
from raycodec.train import average_metrics, build_step
from raycodec.train.local_ray import free_port
from tests.train.tiny import tiny_cfg, tiny_model

RUNS = [(1, 3), (3, 4)]  # (adversarial.every, number of steps)
FULL_BATCH, LENGTH = 4, 2400


def _data(steps):
    g = torch.Generator().manual_seed(42)
    return [0.1 * torch.randn(FULL_BATCH, 1, LENGTH, generator=g) for _ in range(steps)]


def _train(rank: int, world: int, every: int, steps: int) -> dict:
    torch.manual_seed(0)
    model = tiny_model(threshold_ema_dead_code=0)
    for p in model.parameters():  # fp64 weights; quantizer buffers stay fp32 (it casts itself)
        p.data = p.data.double()
    step = build_step(model, tiny_cfg({"adversarial": {"every": every}}))
    for module in [step.adversaries, *step.aux_losses.values(), *step.info_losses.values()]:
        module.double()
    if world > 1:
        step.distribute()
    rng = torch.Generator().manual_seed(1234)  # audiocraft seeds 1234 + epoch, same on all ranks
    n = FULL_BATCH // world
    metrics = [step(x[rank * n:(rank + 1) * n], i, rng) for i, x in enumerate(_data(steps))]
    return {
        "model": step.raw_model.state_dict(),
        "adv": step.adversaries["msstftd"].adversary.state_dict(),
        "balancer": step.balancer.state_dict(),
        "ema": step.ema.state_dict()["state"]["model"],
        "metrics": metrics,
    }


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world, timeout=timedelta(seconds=90))
    try:
        results = {every: _train(rank, world, every, steps) for every, steps in RUNS}
        results["all_true"] = all_ranks_true(rank == 0)
        results["averaged"] = average_metrics({"a": float(rank), "b": 1.0})
        torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def _spawn(world: int, out_dir: str, timeout: float = 240.0) -> None:
    ctx = mp.spawn(_worker, args=(world, free_port(), out_dir), nprocs=world, join=False)
    deadline = time.monotonic() + timeout
    while not ctx.join(timeout=2):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                if p.is_alive():
                    p.terminate()
            pytest.fail(f"DDP workers still running after {timeout}s: collectives hang")


def _assert_close(a: dict, b: dict, atol: float, what: str) -> None:
    assert set(a) == set(b), what
    worst = max((a[k].float() - b[k].float()).abs().max().item() for k in a)
    assert worst <= atol, f"{what}: max abs difference {worst:.3g} > {atol}"


def _assert_equal(a: dict, b: dict, what: str) -> None:
    assert set(a) == set(b)
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"{what} differ across ranks: {different[:5]}"


@pytest.mark.slow
def test_two_rank_ddp_equals_one_process_on_the_full_batch(tmp_path):
    _spawn(2, str(tmp_path))
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2)]
    assert ranks[0]["all_true"] is False and ranks[1]["all_true"] is False
    assert ranks[0]["averaged"] == {"a": 0.5, "b": 1.0}
    for every, steps in RUNS:
        r0, r1 = ranks[0][every], ranks[1][every]
        ref = _train(0, 1, every, steps)
        # Same discriminator decisions everywhere; with every=3 some steps skip the update.
        decisions = [["d_loss" in m for m in run["metrics"]] for run in (r0, r1, ref)]
        assert decisions[0] == decisions[1] == decisions[2]
        if every == 3:
            assert not all(decisions[0])
        assert not any(m["skipped"] for m in r0["metrics"] + r1["metrics"])
        # Identical across ranks: parameters, codebooks, discriminator, EMA, balancer EMA.
        _assert_equal(r0["model"], r1["model"], "generator state")
        _assert_equal(r0["adv"], r1["adv"], "discriminator state")
        _assert_equal(r0["ema"], r1["ema"], "weight EMA")
        assert r0["balancer"] == r1["balancer"]
        # And equal to one process on the full batch.
        _assert_close(r0["model"], ref["model"], 1e-5, f"generator (every={every})")
        _assert_close(r0["adv"], ref["adv"], 1e-5, f"discriminator (every={every})")
        _assert_close(r0["ema"], ref["ema"], 1e-5, f"weight EMA (every={every})")
        for part in ("total", "fix"):
            for name, value in ref["balancer"][part].items():
                assert r0["balancer"][part][name] == pytest.approx(value, rel=1e-4), name
        # Rank-averaged losses are the full-batch losses (mean-reduced, equal halves).
        for key in ("l1", "msspec", "g_loss"):
            avg = (r0["metrics"][-1][key] + r1["metrics"][-1][key]) / 2
            assert avg == pytest.approx(ref["metrics"][-1][key], rel=1e-6), key
