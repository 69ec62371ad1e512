"""Population-based training: sweep-file checks, explore bounds, and one real PBT sweep.

The sweep (2 one-worker debug trials, synchronous PBT: the worse exploits the better at the end
of epoch 1) is interrupted like Ctrl-C at the first epoch-2 report, resumed with --resume, and
checked: an exploit copied the better trial's checkpoint into the worse one bit for bit, every
value stayed within its bounds, Aim shows the lineage, and `best_config.yaml` replays the
winner from scratch.
"""

import json
import os
import random
import signal
from pathlib import Path

import pytest
import torch
from ray import tune

from raycodec.config import load_config
from raycodec.data import generate_collection
from raycodec.train.checkpoint import latest_checkpoint_meta, load_checkpoint
from raycodec.tune import SweepError, load_sweep, run_sweep
from raycodec.tune.lineage import Lineage, read_lineage
from raycodec.tune.pbt import HANDED_DIR, build_scheduler
from tests.train.test_schedule import assert_same

LRS = [1.0e-6, 3.0e-4, 1.0e-3]
SWEEP = f"""
config: debug
overrides:
  optim.epochs: 3
  optim.updates_per_epoch: 1
  dataset.batch_size: 4
  dataset.valid.num_samples: 4
  tracking.audio_every: 0
search:
  num_samples: 1
  seed: 0
  space:
    optim.lr: grid [{LRS[0]}, {LRS[2]}]   # far apart: one trial is clearly the worse
    losses.adv: uniform [1, 4]
scheduler:
  type: pbt
  metric: valid_mel
  perturbation_interval: 1
  synch: true                     # the exploit comes at epoch 1, whichever trial reports first
  quantile_fraction: 0.5
  resample_probability: 0.5
  mutations:
    optim.lr: choice {LRS}
    losses.adv: uniform [1, 4]
resources: {{workers: 1, cpus_per_worker: 0.5}}
max_concurrent_trials: 2
"""


def _spec(tmp_path, text=SWEEP, *extra):
    path = tmp_path / "pbt.yaml"
    path.write_text(text)
    return load_sweep(str(path), [f"ray.storage_path={tmp_path / 'results'}", *extra])


def test_pbt_sweep_files_are_checked(tmp_path):
    spec = _spec(tmp_path)
    assert spec.population_based and [p.key for p in spec.mutations] == ["optim.lr", "losses.adv"]
    for change, message in [
        ("sweep.scheduler.mutations.seed=choice [1, 2]", "can only change what a schedule"),
        ("sweep.scheduler.mutations.losses.feat=uniform [1, 2]", "not in search.space"),
        ("sweep.scheduler.mutations.losses.adv=loguniform [-1, 2]", "low > 0"),
        ("sweep.scheduler.type=pb2", "pb2 explores ranges only"),
        ("sweep.scheduler.perturbation_interval=3", "must be below max_t"),
        ("sweep.scheduler.synch=yes please", "synch must be true or false"),
        ("sweep.scheduler.quantile_fraction=0.7", "quantile_fraction must be in"),
        ("sweep.scheduler.type=asha", "is a pbt/pb2 setting"),
    ]:
        with pytest.raises(SweepError, match=message):
            _spec(tmp_path, SWEEP, change)
    with pytest.raises(SweepError, match="both mutated and scheduled"):
        _spec(tmp_path, SWEEP.replace("overrides:", "overrides:\n  schedule: "
                                      "{losses.adv: {2: 1.0}}"))


RANGES = """
config: debug
overrides: {optim.epochs: 3}
search:
  space:
    optim.lr: loguniform [1.0e-5, 1.0e-3]
    losses.adv: uniform [1, 4]
    adversarial.every: randint [1, 3]
scheduler: {type: pbt, perturbation_interval: 1}
"""


@pytest.mark.parametrize("kind", ["pbt", "pb2"])
def test_explore_stays_within_bounds(tmp_path, kind):
    from ray.tune.schedulers.pbt import _explore

    scheduler = build_scheduler(_spec(tmp_path, RANGES, f"sweep.scheduler.type={kind}"))
    explore = scheduler._custom_explore_fn
    random.seed(0)
    config = {"optim.lr": 1.0e-3, "losses.adv": 4.0, "adversarial.every": 3}
    for i in range(100):  # Tune's own explore (x1.2 / x0.8 or resampled), then the bounds
        if kind == "pbt":
            config, _ = _explore(config, scheduler._hyperparam_mutations, 0.25, (1.2, 0.8),
                                 explore)
        else:  # PB2 proposes within its bounds but as floats: integers are rounded
            config = explore({k: v * random.choice((1.3, 0.7)) for k, v in config.items()})
        assert 1.0e-5 <= config["optim.lr"] <= 1.0e-3 and 1 <= config["losses.adv"] <= 4
        assert config["adversarial.every"] in (1, 2, 3)
        if i % 25 == 0:
            load_config("debug", [f"{k}={v}" for k, v in config.items()])  # schema-valid


def test_lineage_schedule_replays_the_history():
    start = Lineage("a", "a").continued("a", 0, {"losses.adv": 4.0, "optim.lr": 1e-3})
    cloned = start.continued("b", 2, {"losses.adv": 2.0, "optim.lr": 1e-3})
    again = cloned.continued("b", 3, {"losses.adv": 2.0, "optim.lr": 1e-3})  # own restart
    assert again.schedule == {"losses.adv": {0: 4.0, 2: 2.0}, "optim.lr": {0: 1e-3}}
    assert [(c.epoch, c.source, c.trial) for c in again.clones] == [(2, "a", "b")]
    assert again.root == "a"
    assert Lineage.from_json(again.to_json()) == again
    cfg = load_config("debug", ["losses.adv=2.0", "schedule={losses.adv: {0: 4.0, 2: 2.0}}"])
    from raycodec.train.schedule import values_at

    assert [values_at(cfg, e)["losses.adv"] for e in range(4)] == [4.0, 4.0, 2.0, 2.0]


class InterruptAtEpoch(tune.Callback):
    """Ctrl-C (SIGUSR1) once, at the first result of `epoch` (a marker makes it once)."""

    def __init__(self, marker: str, epoch: int):
        self.marker, self.epoch = marker, epoch

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if result.get("epoch") == self.epoch and not os.path.exists(self.marker):
            Path(self.marker).write_text(trial.trial_id)
            os.kill(os.getpid(), signal.SIGUSR1)


def _checkpoints(trials_dir: Path, trial_id: str) -> list[Path]:
    """Every Train checkpoint a trial wrote, over all its runs (handed copies excluded)."""
    return [m.parent for m in trials_dir.glob(f"{trial_id}*/checkpoint_*/meta.json")]


def test_pbt_exploits_resumes_tracks_lineage_and_replays(ray_local, tmp_path):
    from aim import Repo

    from raycodec.train.job import train
    from tests.tracking.test_aim_tracker import reindex

    generate_collection(tmp_path / "audio", minutes=0.3, seed=0, max_duration=4.0)
    spec = _spec(tmp_path, SWEEP, f"dataset.path={tmp_path / 'audio'}")
    marker = tmp_path / "interrupted"
    first = run_sweep(spec, callbacks=[InterruptAtEpoch(str(marker), 2)])  # mid-PBT
    assert first.interrupted and marker.exists()
    result = run_sweep(spec, resume=True)
    assert not result.interrupted
    assert [r.status for r in result.rows] == ["completed", "completed"]
    trials = Path(result.context.trials_dir)

    lineages = {r.trial_id: read_lineage(str(trials), r.trial_id) for r in result.rows}
    clones = [(tid, c) for tid, lin in lineages.items() for c in lin.clones]
    assert clones, lineages
    for _, clone in clones:  # the copy equals the source's own checkpoint of that epoch
        # (a lineage holds its weights' whole history: clones other trials made count too)
        handed = trials / f"{clone.trial}-e{clone.epoch}-{clone.source}" / HANDED_DIR
        source = next(p for p in _checkpoints(trials, clone.source)
                      if json.loads((p / "meta.json").read_text())["epoch"] == clone.epoch)
        a, b = load_checkpoint(handed), load_checkpoint(source)
        assert_same(a["solver"], b["solver"])  # generator, EMA, D + optimizers, balancer
        assert_same(a["rng"], b["rng"])
        assert clone.values["optim.lr"] in LRS and 1 <= clone.values["losses.adv"] <= 4
    for lineage in lineages.values():
        for key, points in lineage.schedule.items():
            assert all((v in LRS) if key == "optim.lr" else 1 <= v <= 4 for v in points.values())

    repo = result.aim_repo
    reindex(repo)
    runs = {r.name: r for r in Repo.from_path(repo).iter_runs() if r.experiment == spec.name}
    assert set(runs) == set(lineages)  # one Aim run per trial, across its restarts
    cloned_id, clone = clones[-1]
    assert runs[cloned_id]["lineage"]["parent"] == clone.source
    assert runs[cloned_id]["lineage"]["clones"] >= 1

    best = result.best
    assert "| lineage |" in Path(result.paths["markdown"]).read_text()
    cfg = load_config(result.paths["best_config"], [f"ray.storage_path={tmp_path / 'replay'}"])
    assert dict(cfg.schedule) == {k: v for k, v in lineages[best.trial_id].schedule.items()
                                  if len(v) > 1}
    replayed = train(cfg)
    winner = max((latest_checkpoint_meta(d) or {"step": -1, "path": ""}
                  for d in trials.glob(f"{best.trial_id}*")), key=lambda m: m["step"])
    expected = load_checkpoint(winner["path"])["solver"]["model"]
    actual = load_checkpoint(replayed.checkpoint.path)["solver"]["model"]
    for key in expected:
        assert torch.equal(expected[key], actual[key]), key
