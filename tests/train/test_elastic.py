"""Elastic workers: unequal batch slices train like the full batch; a run that loses a worker
mid-run (a real Ray node removed) resumes at the smaller size with its step count and data
position intact."""

import json
import os
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from raycodec.train import build_step
from raycodec.train.elastic import batch_share
from raycodec.train.local_ray import free_port
from tests.train.test_distributed import LENGTH, _assert_close, _assert_equal
from tests.train.tiny import tiny_cfg, tiny_model

BATCH, STEPS = 3, 3  # 2 ranks take 2 and 1 items: weights 4/3 and 2/3
ROOT = Path(__file__).resolve().parents[2]


def test_batch_share_splits_every_item_once():
    for batch, world in [(8, 1), (8, 2), (8, 3), (3, 2), (5, 5)]:
        shares = [batch_share(batch, world, r) for r in range(world)]
        assert [s.lo for s in shares] == [0] + [s.hi for s in shares[:-1]]
        assert shares[-1].hi == batch
        assert max(s.size for s in shares) - min(s.size for s in shares) <= 1
        assert sum(s.weight for s in shares) == pytest.approx(world)
    assert [s.size for s in (batch_share(8, 3, r) for r in range(3))] == [3, 3, 2]
    assert batch_share(8, 2, 1).weight == 1.0
    with pytest.raises(ValueError, match="world <= batch"):
        batch_share(2, 3, 0)
    share = batch_share(8, 3, 2)
    share.check(torch.arange(22, 24), step=3)  # items 6..7 of global batch 3 (ids 16..23)
    with pytest.raises(RuntimeError, match="out of position"):
        share.check(torch.arange(21, 23), step=3)


def _train(rank: int, world: int) -> dict:
    """`STEPS` fp64 steps on rank `rank`'s slice of each BATCH-item batch (see test_distributed
    for why fp64, no k-means and no dead-code replacement make the comparison exact)."""
    torch.manual_seed(0)
    model = tiny_model(threshold_ema_dead_code=0)
    for p in model.parameters():
        p.data = p.data.double()
    step = build_step(model, tiny_cfg({"adversarial": {"every": 1}}))
    for module in [step.adversaries, *step.aux_losses.values(), *step.info_losses.values()]:
        module.double()
    if world > 1:
        step.distribute()
    rng = torch.Generator().manual_seed(1234)
    g = torch.Generator().manual_seed(42)
    share = batch_share(BATCH, world, rank)
    for i in range(STEPS):
        x = 0.1 * torch.randn(BATCH, 1, LENGTH, generator=g)
        metrics = step(x[share.lo:share.hi], i, rng, share.weight)
        assert not metrics["skipped"]
    return {"model": step.raw_model.state_dict(),
            "adv": step.adversaries["msstftd"].adversary.state_dict(),
            "balancer": step.balancer.state_dict()}


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world, timeout=timedelta(seconds=90))
    try:
        torch.save(_train(rank, world), os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_unequal_slices_give_the_full_batch_update(tmp_path):
    ctx = mp.spawn(_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=False)
    deadline = time.monotonic() + 240
    while not ctx.join(timeout=2):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.terminate()
            pytest.fail("DDP workers still running after 240 s: collectives hang")
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2))
    ref = _train(0, 1)
    _assert_equal(r0["model"], r1["model"], "generator state")
    _assert_close(r0["model"], ref["model"], 1e-5, "generator (slices 2 + 1)")
    _assert_close(r0["adv"], ref["adv"], 1e-5, "discriminator (slices 2 + 1)")
    for part in ("total", "fix"):
        for name, value in ref["balancer"][part].items():
            assert r0["balancer"][part][name] == pytest.approx(value, rel=1e-4), name


def _registered_epochs(run_dir: str) -> list[int]:
    """Epochs of the checkpoints Ray Train has registered for the run (its manager snapshot)."""
    try:
        snapshot = json.loads((Path(run_dir) / "checkpoint_manager_snapshot.json").read_text())
    except (OSError, ValueError):
        return []
    return [c["metrics"]["epoch"] for c in snapshot.get("checkpoint_results", [])]


def _elastic_run(audio_dir: str, storage: str, out: str) -> None:
    """Driver (own process, own cluster): 2 spot nodes of 1 worker each; one is removed after
    the first checkpoint; writes what the run reported to `out`."""
    import ray
    from ray.cluster_utils import Cluster

    from raycodec.config import load_config
    from raycodec.train.job import build_trainer, prepare

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
    spot = [cluster.add_node(num_cpus=1, resources={"spot": 1}) for _ in range(2)]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address)
    try:
        cfg = load_config("debug", [
            f"dataset.path={audio_dir}", f"ray.storage_path={storage}", "ray.num_workers=[1,2]",
            "ray.resources_per_worker={CPU: 1, spot: 1}", "ray.max_failures=1", "optim.epochs=3",
            "optim.updates_per_epoch=3", f"dataset.batch_size={BATCH}", "tracking.audio_every=0",
            "dataset.valid.num_samples=2", "dataset.evaluate.batch_size=1",
            "checkpoint.keep_last=null"])
        plan = prepare(cfg)
        trainer = build_trainer(plan)
        lost = {}

        def lose_a_node():
            # Once Train has registered the first checkpoint (its snapshot lists it), not just
            # once the folder exists: a report still in flight would be lost with the node.
            while not (epochs := _registered_epochs(plan.run.run_dir)):
                time.sleep(0.1)
            lost["after"] = max(epochs)
            cluster.remove_node(spot[1])

        threading.Thread(target=lose_a_node, daemon=True).start()
        result = trainer.fit()
        history = result.metrics_dataframe[["epoch", "step", "train_world_size"]]
        Path(out).write_text(json.dumps({
            "error": repr(result.error) if result.error else None, "lost_after": lost.get("after"),
            "checkpoint": result.checkpoint.path, "history": history.to_dict("records")}))
    finally:
        ray.shutdown()
        cluster.shutdown()


@pytest.mark.slow
def test_elastic_run_loses_a_worker_and_finishes_on_one(tmp_path):
    from raycodec.data import generate_collection
    from raycodec.train.checkpoint import load_checkpoint

    generate_collection(tmp_path / "audio", minutes=0.2, seed=0, max_duration=4.0)
    out = tmp_path / "run.json"
    code = (f"from tests.train.test_elastic import _elastic_run; _elastic_run("
            f"{str(tmp_path / 'audio')!r}, {str(tmp_path / 'results')!r}, {str(out)!r})")
    # Right after the loss Train may still see room for 2 workers and wait for them; a short
    # start timeout (default 60 s) makes it fall back to 1 sooner.
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S="10")
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, timeout=300,
                          capture_output=True, text=True)
    assert proc.returncode == 0 and out.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    run = json.loads(out.read_text())
    assert run["error"] is None and run["lost_after"] == 1
    history = {row["epoch"]: row for row in run["history"]}
    # Steps continue across the restart: 2 workers (slices 2 + 1) before it, 1 after. Every
    # batch's segment ids were checked against its step (BatchShare.check) on the way.
    assert [history[e]["step"] for e in (1, 2, 3)] == [3, 6, 9]
    assert [history[e]["train_world_size"] for e in (1, 2, 3)] == [2, 1, 1]
    log = proc.stdout + proc.stderr
    assert "elastic: 2 workers from epoch 0 (step 0); the 3-item batch splits [2, 1]" in log
    assert "elastic: 1 workers from epoch 1 (step 3); the 3-item batch splits [3]" in log
    state = load_checkpoint(run["checkpoint"])  # the final checkpoint loads
    assert state["epoch"] == 3 and state["step"] == 9


def test_preflight_understands_a_worker_range():
    from raycodec.config import load_config
    from raycodec.train.inputs import JobError, check_cluster

    def cfg(*extra):
        return load_config("debug", ["dataset.batch_size=8", *extra])

    check_cluster(cfg("ray.num_workers=[3,5]"), {"CPU": 4.0})  # MIN fits; 8 / 3 needs no divisor
    with pytest.raises(JobError, match=r"3 workers x 1 CPU = 3 CPU plus 1 CPU"):
        check_cluster(cfg("ray.num_workers=[3,5]"), {"CPU": 3.0})  # not even MIN fits
    with pytest.raises(JobError, match=r"keep MAX <= 8"):
        check_cluster(cfg("ray.num_workers=[2,9]"), {"CPU": 16.0})
    with pytest.raises(JobError, match="divide evenly"):  # a fixed size still must divide
        check_cluster(cfg("ray.num_workers=3"), {"CPU": 8.0})
