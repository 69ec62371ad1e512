"""Population-based training (Tune's PBT and PB2) over schedulable hyperparameters.

Every `perturbation_interval` epochs a trial reports its Train checkpoint to Tune (copied, with
the trial's `lineage.json`). When PBT exploits, Tune restarts the worse trial with the better
trial's checkpoint and mutated values: `run_pbt_trial` copies that checkpoint into a new Train
run of the worse trial (`<trial>-e<epoch>-<source>`), whose workers resume from it (generator,
EMA, discriminators and optimizers, balancer EMA, RNG states) and train on with the new values.
The values a trial's weights saw, epoch by epoch, travel as its config's `schedule`, so the
winner's config replays from scratch (`train.py --config best_config.yaml`); that bookkeeping is
`raycodec.tune.lineage`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import shutil
import tempfile
import threading
import time
from typing import Any

from omegaconf import DictConfig
from ray.train.v2.api.callback import UserCallback
from ray.tune.experiment import Trial
from ray.tune.schedulers import PopulationBasedTraining
from ray.tune.schedulers.pb2 import PB2

from raycodec.tune.lineage import (
    LINEAGE_FILE,
    Lineage,
    lineage_path,
    schedule_override,
    write_text,
)
from raycodec.tune.space import Param, SweepError, parse_space
from raycodec.tune.spec import SweepSpec, plain_value

HANDED_DIR = "handed_checkpoint"
RANGES = ("uniform", "loguniform", "randint")
_CHECKPOINT_KEY = "_raycodec_checkpoint"


def check_mutations(raw: Any, params: list[Param], kind: str, cfg: DictConfig) -> list[Param]:
    """The mutated hyperparameters (default: the search space), checked: schedulable keys that
    the initial population samples, not scheduled by the base config; ranges only for pb2."""
    if raw is not None and not isinstance(raw, dict):
        raise SweepError("scheduler.mutations must map config keys to entries, e.g. "
                         "'optim.lr: loguniform [1e-4, 1e-3]' (default: the search space)")
    mutations = list(params) if raw is None else parse_space(raw)
    schedulable = [f"losses.{k}" for k in cfg.losses] + ["adversarial.every", "optim.lr"]
    searched = {p.key for p in params}
    for p in mutations:
        if p.key not in schedulable:
            raise SweepError(f"scheduler.mutations {p.key!r}: {kind} can only change what a "
                             f"schedule changes at an epoch boundary: {', '.join(schedulable)}")
        if p.key not in searched:
            raise SweepError(f"scheduler.mutations {p.key!r} is not in search.space, which draws "
                             "the initial population; add it there")
        if p.key in (cfg.get("schedule") or {}):
            raise SweepError(f"{p.key!r} is both mutated and scheduled by the base config")
        if kind == "pb2" and p.kind not in RANGES:
            raise SweepError(f"scheduler.mutations {p.key!r} ({p.describe()}): pb2 explores "
                             f"ranges only ({', '.join(RANGES)}); use pbt for choices")
    if not mutations:
        raise SweepError(f"scheduler type {kind} needs at least one mutation")
    return mutations


def keep_in_bounds(config: dict, ranges: dict[str, tuple[float, float, bool]]) -> dict:
    """Tune's explore multiplies by 0.8 / 1.2 without bounds: clip to the sweep's range and
    round integer ranges (`randint`), so every mutated value is valid for the schema."""
    out = dict(config)
    for key, (low, high, integer) in ranges.items():
        if key in out:
            value = min(max(float(plain_value(out[key])), low), high)
            out[key] = int(round(value)) if integer else value
    return out


def _ranges(spec: SweepSpec) -> dict[str, tuple[float, float, bool]]:
    return {p.key: (float(p.values[0]), float(p.values[1]), p.kind == "randint")
            for p in spec.mutations if p.kind in RANGES}


class _Resumable:
    """choose_trial_to_run that cannot deadlock a restored synch sweep.

    Tune restores a sweep with a fresh scheduler (its state is not saved), so after `--resume`
    the synch point can lag a trial that already reported past it, and that trial would wait
    forever. When nothing runs and no waiting trial may start, the least advanced one goes on:
    with nothing running, no other trial could ever catch up.
    """

    def choose_trial_to_run(self, tune_controller):
        """Tune's choice, else (synch, nothing running) the least advanced waiting trial."""
        chosen = super().choose_trial_to_run(tune_controller)
        trials = tune_controller.get_trials()
        if chosen is not None or not self._synch or any(t.status == Trial.RUNNING
                                                        for t in trials):
            return chosen
        waiting = [t for t in trials if t.status in (Trial.PENDING, Trial.PAUSED)]
        return min(waiting, key=lambda t: self._trial_state[t].last_train_time, default=None)


class ResumablePBT(_Resumable, PopulationBasedTraining):
    """Tune's PopulationBasedTraining, safe to restore in synch mode."""


class ResumablePB2(_Resumable, PB2):
    """Tune's PB2, safe to restore in synch mode."""


def build_scheduler(spec: SweepSpec):
    """Tune's PBT or PB2 on `epoch` (synchronous with `spec.synch`), explore kept in bounds."""
    explore = functools.partial(keep_in_bounds, ranges=_ranges(spec))
    common = dict(time_attr="epoch", perturbation_interval=spec.perturbation_interval,
                  quantile_fraction=spec.quantile_fraction, custom_explore_fn=explore,
                  synch=spec.synch)
    if spec.scheduler == "pb2":
        return ResumablePB2(hyperparam_bounds={p.key: [float(p.values[0]), float(p.values[1])]
                                               for p in spec.mutations}, **common)
    mutations = {p.key: list(p.values) if p.kind not in RANGES else p.domain()
                 for p in spec.mutations}
    return ResumablePBT(hyperparam_mutations=mutations,
                        resample_probability=spec.resample_probability, **common)


def trial_values(config: dict, spec: SweepSpec) -> dict[str, Any]:
    """Tune's config as plain, in-bounds values (PB2 proposes floats for integer ranges)."""
    return {k: plain_value(v) for k, v in keep_in_bounds(config, _ranges(spec)).items()}


class ForwardReports(UserCallback):
    """Train V2 callback: every report (metrics, checkpoint path) to the trial's queue."""

    def __init__(self, queue):
        self.queue = queue

    def after_report(self, run_context, metrics: list[dict], checkpoint) -> None:
        """Rank 0's metrics, with the path of the checkpoint persisted with them."""
        item = dict(metrics[0])
        item[_CHECKPOINT_KEY] = checkpoint.path if checkpoint else None
        self.queue.put(item)


def _report(item: dict, lineage: Lineage, spec: SweepSpec) -> None:
    """tune.report; at perturbation epochs with the checkpoint and lineage.json (a copy)."""
    from ray import train, tune

    path = item.pop(_CHECKPOINT_KEY, None)
    epoch = int(item.get("epoch", 0))
    if not path or (epoch % spec.perturbation_interval and epoch < spec.max_t):
        tune.report(item)
        return
    with tempfile.TemporaryDirectory() as tmp:
        with train.Checkpoint(path).as_directory() as source:
            shutil.copytree(source, tmp, dirs_exist_ok=True)
        write_text(os.path.join(tmp, LINEAGE_FILE), lineage.to_json())
        tune.report(item, checkpoint=tune.Checkpoint.from_directory(tmp))


def _set_aside_unreported(run_dir: str, epoch: int) -> None:
    """Move a Train run that trained past `epoch` to `trials/.unreported/`.

    Tune restarts a trial from the checkpoint it last saw. The trial's Train run may have gone
    further (an interrupted sweep: Train kept training while Tune shut down), but Tune never saw
    those epochs. Resuming that run would skip their reports, and a finished run would report
    nothing at all. Setting it aside makes the restart train those epochs again from Tune's
    checkpoint (training is deterministic) and report each one.
    """
    from raycodec.train.checkpoint import latest_checkpoint_meta

    latest = latest_checkpoint_meta(run_dir)
    if latest is None or int(latest["epoch"]) <= epoch:
        return
    aside = os.path.join(os.path.dirname(run_dir), ".unreported",
                         f"{os.path.basename(run_dir)}-{time.time_ns()}")
    os.makedirs(os.path.dirname(aside), exist_ok=True)
    os.replace(run_dir, aside)
    print(f"[raycodec] {os.path.basename(run_dir)} trained past epoch {epoch}, which Tune did "
          f"not see: retraining from epoch {epoch} (the run is kept in {aside})", flush=True)


def _start(trial_id: str, spec: SweepSpec, values: dict, run_root: str):
    """(lineage, run name, handed checkpoint folder) of this start of the trial."""
    from ray import tune

    handed = tune.get_checkpoint()
    if handed is None:
        _set_aside_unreported(os.path.join(run_root, trial_id), 0)
        return Lineage(trial_id, trial_id).continued(trial_id, 0, values), trial_id, None
    with handed.as_directory() as directory:
        meta = json.loads(open(os.path.join(directory, "meta.json")).read())
        prior = Lineage.from_json(open(os.path.join(directory, LINEAGE_FILE)).read())
        epoch = int(meta["epoch"])
        name = f"{trial_id}-e{epoch}" + (f"-{prior.trial}" if prior.trial != trial_id else "")
        _set_aside_unreported(os.path.join(run_root, name), epoch)
        target = os.path.join(run_root, name, HANDED_DIR)
        if not os.path.exists(target):
            shutil.copytree(directory, target + ".tmp", dirs_exist_ok=True)
            os.replace(target + ".tmp", target)
    return prior.continued(trial_id, epoch, values), name, target


def run_pbt_trial(config: dict, context, plan) -> None:
    """Tune function trainable of a pbt / pb2 sweep: start (or, when Tune hands a checkpoint,
    continue) the trial's TorchTrainer and forward its reports with checkpoints to Tune."""
    from ray import tune
    from ray.util.queue import Queue

    from raycodec.train.job import build_trainer
    from raycodec.tune.trial import trial_run

    spec: SweepSpec = context.spec
    trial_id = tune.get_context().get_trial_id()
    values = trial_values(config, spec)
    lineage, name, handed = _start(trial_id, spec, values, context.trials_dir)
    cfg = context.trial_config({**values, "schedule": schedule_override(lineage)})
    run = trial_run(context, cfg, trial_id, values, plan.init_digest)
    run = dataclasses.replace(run, name=name, run_dir=os.path.join(run.storage_path, name),
                              aim_params={**run.aim_params, "lineage": lineage.aim_params()})
    write_text(lineage_path(context.trials_dir, trial_id), lineage.to_json())
    queue = Queue(maxsize=1, actor_options={"num_cpus": 0})
    trainer = build_trainer(plan.for_trial(cfg, run, handed=handed),
                            callbacks=[ForwardReports(queue)])
    if trainer is None:  # its last epoch was checkpointed before the sweep was interrupted
        return
    errors: list[BaseException] = []

    def fit() -> None:
        try:
            trainer.fit()
        except BaseException as exc:  # re-raised in the trial's thread: Tune marks it errored
            errors.append(exc)
        finally:
            queue.put(None)

    # fit() blocks; the reports must reach tune.report from this (the trial's) thread.
    thread = threading.Thread(target=fit, name=f"fit-{trial_id}", daemon=True)
    thread.start()
    while (item := queue.get()) is not None:
        _report(item, lineage, spec)
    thread.join()
    if errors:
        raise errors[0]
