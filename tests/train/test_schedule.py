"""Hyperparameter schedules: validation, applying them to a real GANStep, and exact replay.

The Ray test trains the debug codec twice: once with a schedule that switches at epoch 1, once
stopped after epoch 1, edited to the new values and resumed from that checkpoint (the handed-
checkpoint path a PBT trial takes). Both must end with bit-identical weights.
"""

import dataclasses

import pytest
import torch

from raycodec.config import ConfigError, experiment_signature, load_config
from raycodec.data import build_manifest, generate_collection
from raycodec.train import build_step
from raycodec.train import schedule as sched
from raycodec.train.checkpoint import latest_checkpoint_meta, load_checkpoint
from tests.train.tiny import batch, tiny_cfg, tiny_model


def test_schedule_is_validated_canonical_and_signed():
    cfg = load_config("debug", ["schedule={losses.adv: {0: 4.0, 2: 1}, optim.lr: {'3': 1e-4}}"])
    assert cfg.schedule == {"losses.adv": {2: 1.0}, "optim.lr": {3: 1e-4}}  # 0: 4.0 is a no-op
    same = load_config("debug", ["schedule={optim.lr: {3: 0.0001}, losses.adv: {2: 1.0}}"])
    assert experiment_signature(cfg) == experiment_signature(same)
    assert experiment_signature(cfg) != experiment_signature(load_config("debug"))
    assert sched.values_at(cfg, 1)["losses.adv"] == 4.0
    assert sched.values_at(cfg, 2)["losses.adv"] == 1.0
    assert sched.history(cfg, ["losses.adv"]) == {"losses.adv": {0: 4.0, 2: 1.0}}
    for bad, message in [("{losses.advv: {0: 1}}", "did you mean losses.adv"),
                         ("{seed: {0: 1}}", "cannot be scheduled"),
                         ("{losses.adv: {x: 1}}", "not an integer"),
                         ("{optim.lr: {1: 0}}", "expected a number > 0"),
                         ("{adversarial.every: {1: 1.5}}", "expected int"),
                         ("{losses.adv: 2}", "must map epochs"),
                         ("{losses.adv: {1: 0}, losses.feat: {1: 0}, losses.msspec: {1: 0}, "
                          "losses.l1: {1: 0}}", "every loss weight is 0 from epoch 1")]:
        with pytest.raises(ConfigError, match=message):
            load_config("debug", [f"schedule={bad}"])


def test_apply_moves_losses_between_balanced_and_logged_and_keeps_state():
    torch.manual_seed(0)
    step = build_step(tiny_model(), tiny_cfg({"losses": {"adv": 0.0, "mel": 0.0}}))
    rng = torch.Generator().manual_seed(0)
    step(batch(), 1, rng)
    ema = dict(step.balancer.state_dict()["total"])
    moments = step.optimizer.state_dict()["state"]
    assert "adv_msstftd" not in step.balancer.weights and "mel" in step.info_losses
    changed = sched.apply(step, {"losses.adv": 4.0, "losses.mel": 1.0, "losses.l1": 0.0,
                                 "optim.lr": 1e-4, "adversarial.every": 3})
    assert set(changed) == {"losses.adv", "losses.mel", "losses.l1", "optim.lr",
                            "adversarial.every"}
    assert step.balancer.weights["adv_msstftd"] == 4.0 and "adv" not in step.zero_weight
    assert "mel" in step.aux_losses and "l1" in step.info_losses
    assert step.balancer.state_dict()["total"] == ema  # the EMA is not reset
    assert step.optimizer.state_dict()["state"].keys() == moments.keys()
    assert all(g["lr"] == 1e-4 for a in step.adversaries.values()
               for g in a.optimizer.param_groups)
    assert step.adv_every == 3.0
    metrics = step(batch(), 2, rng)
    assert "ratio_adv_msstftd" in metrics and "ratio_mel" in metrics and "ratio_l1" not in metrics
    assert sched.apply(step, sched.current_values(step)) == {}


@pytest.fixture(scope="module")
def manifest(ray_local, tmp_path_factory):
    """One scanned manifest for the three runs (a `dataset.path` would be scanned per run)."""
    out = tmp_path_factory.mktemp("audio")
    generate_collection(out / "audio", minutes=0.3, seed=0, max_duration=4.0)
    build_manifest([out / "audio"], out=out / "m.parquet")
    return out / "m.parquet"


def _cfg(manifest, storage, *extra):
    # 2 updates per epoch: enough for the switched lr, weight and D-update odds to matter.
    return load_config("debug", [f"dataset.manifest={manifest}", f"ray.storage_path={storage}",
                                 "ray.num_workers=1", "tracking.audio_every=0",
                                 "optim.updates_per_epoch=2", "dataset.valid.num_samples=4",
                                 *extra])


def assert_same(a, b, path="") -> None:
    """Nested state dicts hold equal tensors and values (bit for bit)."""
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), path
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for key in a:
            assert_same(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}[{i}]")
    else:
        assert a == b, path


def _fit(plan):
    from raycodec.train.job import build_trainer

    return build_trainer(plan).fit()


def test_schedule_replays_like_a_run_stopped_edited_and_resumed(manifest, tmp_path):
    from aim import Repo
    from aim.storage.context import Context

    from raycodec.train.plan import prepare
    from tests.tracking.test_aim_tracker import reindex

    new = ("losses.adv=2.0", "optim.lr=1e-4", "adversarial.every=2")
    schedule = "schedule={losses.adv: {1: 2.0}, optim.lr: {1: 1e-4}, adversarial.every: {1: 2}}"
    scheduled = _fit(prepare(_cfg(manifest, tmp_path / "a", schedule)))
    first = _fit(prepare(_cfg(manifest, tmp_path / "b", "optim.epochs=1")))
    handed = latest_checkpoint_meta(first.path)
    assert handed["epoch"] == 1
    plan = prepare(_cfg(manifest, tmp_path / "b", *new))  # the edited config
    resumed = _fit(dataclasses.replace(plan, latest=handed, resume_from=handed["path"]))
    assert resumed.metrics["step"] == scheduled.metrics["step"] == 4
    expected = load_checkpoint(scheduled.checkpoint.path)
    actual = load_checkpoint(resumed.checkpoint.path)
    assert_same(expected["solver"], actual["solver"])  # model, EMA, D + optimizers, balancer
    assert_same(expected["rng"], actual["rng"])

    repo = str(tmp_path / "a" / "aim")
    reindex(repo)
    run = next(iter(Repo.from_path(repo).iter_runs()))
    adv = run.get_metric("losses.adv", Context({"subset": "schedule"})).values.values_list()
    assert adv == [4.0, 2.0]  # one point per epoch
