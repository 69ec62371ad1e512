"""A real sweep on the shared local Ray: ASHA, a diverging trial, reports, Aim runs, resume.

One module-scoped sweep of 4 one-worker trials runs one at a time in grid order (the first key in
sorted order varies fastest), so that ASHA's decisions are reproducible. It is interrupted after
its first trial ends (Tune's SIGUSR1 handler: the same path as Ctrl-C), resumed, then "resumed"
once more when done. Order: (feat 0.5, lr 1e6) diverges -> interrupt; after the resume ASHA starts
afresh: (feat 6, lr 1e6) diverges, its metric stays at the untrained model's, which ASHA records
at epochs 1 and 2; (feat 0.5, lr 3e-4) is worse than that after one epoch (a low feature-loss
weight) -> stopped early; (feat 6, lr 3e-4) is better -> completes.
"""

import csv
import json
import os
import signal
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import ray
from ray import tune

from raycodec.config import load_config
from raycodec.data import generate_collection
from raycodec.train.job import train
from raycodec.tune import SweepError, load_sweep, run_sweep, summary
from tests.tracking.test_aim_tracker import reindex

SWEEP = """
config: debug
overrides:
  optim.epochs: 3
  optim.updates_per_epoch: 4       # 12 steps: enough for 10 consecutive non-finite steps
  dataset.batch_size: 4
  dataset.valid.num_samples: 8
  tracking.audio_every: 0
search:
  algorithm: random
  num_samples: 1
  seed: 0
  space:
    optim.lr: grid [1e6, 3.0e-4]   # 1e6 diverges: every step is skipped, the loop raises
    losses.feat: grid [0.5, 6.0]
    losses.adv: loguniform [1, 4]
scheduler: {metric: valid_mel, mode: min, grace_period: 1, reduction_factor: 2}
resources: {workers: 1, cpus_per_worker: 0.5}
max_concurrent_trials: 1
"""


class InterruptOnce(tune.Callback):
    """Interrupt the driver like Ctrl-C once the first trial has ended (a marker file makes it
    once: Tune.restore brings this callback back)."""

    def __init__(self, marker: str):
        self.marker = marker

    def _interrupt(self, trial) -> None:
        if not os.path.exists(self.marker):
            Path(self.marker).write_text(trial.trial_id)
            os.kill(os.getpid(), signal.SIGUSR1)  # Tune ends the run and saves its state

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._interrupt(trial)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._interrupt(trial)


def _snapshot(sweep_dir: str) -> dict:
    """Per trial: reported results and checkpoints written so far."""
    out = {}
    for trial_dir in Path(sweep_dir).glob("run_trial_*"):
        trial_id = trial_dir.name.split("_")[2] + "_" + trial_dir.name.split("_")[3]
        results = trial_dir / "result.json"
        ckpts = sorted(p.name for p in (Path(sweep_dir) / "trials" / trial_id).glob("checkpoint_*"))
        out[trial_id] = (results.read_text().count("\n") if results.exists() else 0, ckpts)
    return out


@pytest.fixture(scope="module")
def sweep(ray_local, tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    generate_collection(root / "audio", minutes=0.5, seed=0, max_duration=6.0)
    (root / "tiny.yaml").write_text(SWEEP)
    from tests.train.test_finetune import _trained

    source, _ = _trained(root)  # every trial fine-tunes the same raycodec checkpoint
    spec = load_sweep(str(root / "tiny.yaml"),
                      [f"dataset.path={root / 'audio'}", f"ray.storage_path={root / 'results'}",
                       f"continue_from={source}"])
    marker = root / "interrupted_after"
    first = run_sweep(spec, callbacks=[InterruptOnce(str(marker))])
    before = _snapshot(first.sweep_dir)
    with pytest.raises(SweepError, match="already exists.*pass --resume"):
        run_sweep(spec)
    resumed = run_sweep(spec, resume=True)
    after = _snapshot(resumed.sweep_dir)
    again = run_sweep(spec, resume=True)  # finished: nothing runs, the report is rebuilt
    changed = load_sweep(str(root / "tiny.yaml"), [f"dataset.path={root / 'audio'}",
                                                   f"ray.storage_path={root / 'results'}",
                                                   f"continue_from={source}",
                                                   "sweep.search.num_samples=2"])
    with pytest.raises(SweepError, match=r"settings differ .*\(num_samples\)"):
        run_sweep(changed, resume=True)
    return SimpleNamespace(spec=spec, first=first, resumed=resumed, again=again, root=root,
                           before=before, after=after, final=_snapshot(again.sweep_dir),
                           interrupted_after=marker.read_text())


def _by_values(result, lr, feat):
    return next(r for r in result.rows
                if r.sampled["optim.lr"] == lr and r.sampled["losses.feat"] == feat)


def test_stopped_trials_give_back_their_cpus(sweep):
    # ASHA stopped a trial and two errored: Train's placement-group cleaner must free their
    # workers' CPUs, else the next sweep in this session waits for them forever.
    total = ray.cluster_resources()["CPU"]
    deadline = time.monotonic() + 60
    while ray.available_resources().get("CPU", 0) < total and time.monotonic() < deadline:
        time.sleep(1)
    assert ray.available_resources().get("CPU", 0) == total, ray.available_resources()


def test_interrupted_sweep_resumes_without_rerunning_finished_trials(sweep):
    first = {r.trial_id: r.status for r in sweep.first.rows}
    assert sweep.first.interrupted
    done = sweep.interrupted_after
    assert first[done] == "errored"
    assert [s for s in first.values() if s != "unfinished"] == ["errored"]
    assert "continue it with the same command and --resume" in summary(sweep.first)
    assert sweep.before[done][0] == 2  # results of epochs 1 and 2, then it diverged
    assert sweep.after[done] == sweep.before[done]  # not run again
    assert not sweep.resumed.interrupted and len(sweep.resumed.rows) == 4
    assert all(r.status != "unfinished" for r in sweep.resumed.rows)
    assert sweep.final == sweep.after  # resuming a finished sweep runs nothing
    assert [(r.trial_id, r.status, r.last) for r in sweep.again.rows] == \
        [(r.trial_id, r.status, r.last) for r in sweep.resumed.rows]


def test_asha_stops_early_and_diverging_trials_error(sweep):
    table = [(r.sampled, r.status, r.epochs, r.last) for r in sweep.resumed.rows]
    for feat in (0.5, 6.0):
        diverged = _by_values(sweep.resumed, 1e6, feat)
        assert diverged.status == "errored", table
        assert "non-finite" in diverged.error, diverged.error
    stopped = _by_values(sweep.resumed, 3e-4, 0.5)
    assert stopped.status == "stopped_early" and stopped.epochs == 1, table
    completed = _by_values(sweep.resumed, 3e-4, 6.0)
    assert completed.status == "completed" and completed.epochs == 3, table


def test_results_table_files_and_best_config(sweep, tmp_path):
    result = sweep.resumed
    header, *lines = list(csv.reader(open(result.paths["csv"])))
    assert header == ["trial", "optim.lr", "losses.feat", "losses.adv", "best_valid_mel",
                      "last_valid_mel", "epochs", "status", "error"]
    assert [(ln[0], ln[7]) for ln in lines] == [(r.trial_id, r.status) for r in result.rows]
    markdown = Path(result.paths["markdown"]).read_text()
    assert all(f"| {r.trial_id} |" in markdown for r in result.rows)
    best = result.best
    assert best is result.rows[0] and best.status == "completed"
    assert best.last == min(r.last for r in result.rows if r.status != "errored")
    cfg = load_config(result.paths["best_config"])  # what train.py --config FILE does
    assert cfg.losses.feat == best.sampled["losses.feat"]
    assert cfg.losses.adv == pytest.approx(best.sampled["losses.adv"])
    assert cfg.optim.lr == 3e-4 and cfg.optim.epochs == 3
    assert cfg.tracking.experiment == "debug"  # the base config's, not the sweep's
    trained = train(load_config(result.paths["best_config"], [
        "optim.epochs=1", "optim.updates_per_epoch=1", f"ray.storage_path={tmp_path}"]))
    assert trained.error is None and trained.metrics["epoch"] == 1


def test_every_trial_is_an_aim_run_with_config_and_status(sweep):
    from aim import Repo
    from aim.storage.context import Context

    reindex(sweep.resumed.aim_repo)
    runs = {run.name: run for run in Repo.from_path(sweep.resumed.aim_repo).iter_runs()
            if run.experiment == "tiny"}
    rows = {r.trial_id: r for r in sweep.resumed.rows}
    assert set(runs) == set(rows)
    for trial_id, run in runs.items():
        row = rows[trial_id]
        assert run["trial_id"] == trial_id and run["status"] == row.status, trial_id
        hparams = run["hparams"]
        assert hparams["losses"]["feat"] == row.sampled["losses.feat"]
        assert hparams["optim"]["lr"] == row.sampled["optim.lr"]
        assert hparams["tracking"]["experiment"] == "tiny" and hparams["optim"]["epochs"] == 3
        assert run["sampled"]["losses"]["adv"] == pytest.approx(row.sampled["losses.adv"])
    best = runs[sweep.resumed.best.trial_id]
    assert len(best.get_metric("mel", Context({"subset": "valid"})).values.values_list()) == 3
    statuses = json.loads((Path(sweep.resumed.sweep_dir) / "aim_status.json").read_text())
    assert statuses == {t: r.status for t, r in rows.items()}


def test_the_spec_builds_the_config_each_trial_ran(sweep):
    # One function for both: the trials' config includes the manifest scanned once per sweep.
    for row in sweep.resumed.rows:
        ran = load_config(str(Path(sweep.resumed.sweep_dir) / "trials" / row.trial_id
                              / "config.yaml"))
        assert ran == sweep.spec.trial_config(row.sampled), row.trial_id
        assert ran.dataset.manifest == str(Path(sweep.resumed.sweep_dir) / "manifest.parquet")
