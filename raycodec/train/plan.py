"""The job's preflight: `prepare(cfg)` resolves, reads and checks everything once, before Ray Train.

A `JobPlan` is the typed hand-off from the driver to the trainer: the experiment's identity and
folders (`RunInfo`), the manifests with their tables (read once per job, then handed to the
datasets, and to every trial of a sweep, instead of being read again), the workers' resources and
the `continue_from` weights. Workers receive the small `WorkerJob` part of it.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from raycodec.config import experiment_signature
from raycodec.train.inputs import (
    JobError,
    Manifest,
    check_cluster,
    init_ray,
    is_elastic,
    read_data,
    worker_resources,
)


@dataclass
class RunInfo:
    """Identity and folders of one Ray Train run (an experiment's, or a Tune trial's)."""

    signature: str
    name: str                      # the Ray Train run name (= the Aim run name)
    storage_path: str
    run_dir: str
    aim_repo: str
    aim_params: dict[str, Any] = field(default_factory=dict)  # run-level Aim params (trial id)


@dataclass
class WorkerJob:
    """What every Train worker receives (`train_loop_config["job"]`)."""

    cfg: dict                      # the resolved config as plain containers
    run: RunInfo
    init: Any = None               # object-store reference of the `continue_from` InitState
    eval_paths: list[str] = field(default_factory=list)  # held-out files of `evaluate.every`
    stream: Any = None             # elastic: the StreamSpec each rank builds its slice from
    resume_from: str | None = None  # a handed checkpoint folder (Tune, PBT), when Train has none


@dataclass
class JobPlan:
    """Everything a training job (or a sweep's trials) needs, resolved and checked."""

    cfg: DictConfig
    run: RunInfo
    train: Manifest
    valid: Manifest
    evaluation: Manifest | None    # `evaluate.*` held-out files; None when evaluation is off
    resources: dict[str, float]    # per Train worker
    latest: dict | None = None     # meta of the run's latest checkpoint (resume), if any
    init: Any = None               # `continue_from` weights in the object store (not resuming)
    init_digest: str | None = None  # content hash of the `continue_from` source
    resume_from: str | None = None  # checkpoint folder to start from (`latest` is its meta)

    @property
    def start_epoch(self) -> int:
        """The first epoch to train (after the latest checkpoint's)."""
        return self.latest["epoch"] if self.latest else 0

    @property
    def finished(self) -> bool:
        """Whether the latest checkpoint is the last epoch's."""
        return self.start_epoch >= self.cfg.optim.epochs

    def eval_paths(self) -> list[str]:
        """The first `evaluate.num_files` held-out files; [] when `evaluate.every` is 0."""
        cfg = self.cfg
        if self.evaluation is None or not cfg.evaluate.every or cfg.evaluate.num_files <= 0:
            return []
        return self.evaluation.table.column("path").to_pylist()[: cfg.evaluate.num_files]

    def worker_job(self) -> WorkerJob:
        """The workers' part of the plan (no tables: the datasets carry the data; an elastic
        job's ranks get the training table in the object store and build their own slices)."""
        from raycodec.train.elastic import stream_spec

        stream = stream_spec(self.cfg, self.train.table) if is_elastic(self.cfg) else None
        return WorkerJob(OmegaConf.to_container(self.cfg, resolve=True), self.run, self.init,
                         self.eval_paths(), stream=stream, resume_from=self.resume_from)

    def for_trial(self, cfg: DictConfig, run: RunInfo, handed: str | None = None) -> JobPlan:
        """This sweep's plan for one trial: its config and run, the sweep's data and weights.

        Nothing is read or checked again; only the trial's own checkpoints are looked up, so that
        a restarted trial resumes (and then does not take `continue_from` again). `handed`: a
        checkpoint folder inside the run's folder to start from (a PBT trial's), unless the run
        has a newer one of its own.
        """
        from raycodec.train.checkpoint import latest_checkpoint_meta

        os.makedirs(run.run_dir, exist_ok=True)
        latest = latest_checkpoint_meta(run.run_dir)
        resume_from = handed if latest is not None and latest["path"] == handed else None
        if latest is not None and self.init is not None:
            print("[raycodec] continue_from is not applied: the trial resumes from its own "
                  "checkpoint", flush=True)
        return dataclasses.replace(self, cfg=cfg, run=run, latest=latest, resume_from=resume_from,
                                   resources=worker_resources(cfg),
                                   init=None if latest is not None else self.init)


def load_source(cfg: DictConfig):
    """The `continue_from` parts this experiment would take (None without continue_from)."""
    from raycodec.train.finetune import load_init

    try:
        return load_init(cfg)
    except ValueError as exc:
        raise JobError(str(exc)) from None


def storage_path(cfg: DictConfig) -> str:
    """`ray.storage_path` (default ~/ray_results) as an absolute path; URIs as they are."""
    storage = cfg.ray.storage_path or "~/ray_results"
    return storage if "://" in storage else str(Path(storage).expanduser().absolute())


def run_info(cfg: DictConfig, init=None) -> RunInfo:
    """Signature, run name, folders and Aim repo of this experiment (`init`: its
    `continue_from` source, whose content hash is part of the signature)."""
    from raycodec.tracking import resolve_repo

    if cfg.get("continue_from") and init is None:
        init = load_source(cfg)
    signature = experiment_signature(cfg, init.digest if init is not None else None)
    storage = storage_path(cfg)
    try:
        repo = resolve_repo(cfg.tracking.repo or os.path.join(storage, "aim"))
    except ValueError as exc:
        raise JobError(str(exc)) from None
    return RunInfo(signature, signature, storage, os.path.join(storage, signature), repo)


def _checked_source(cfg: DictConfig, init, resuming: bool, sweep: bool):
    """The `continue_from` parts, checked against the model of `cfg` (None without a source,
    or when resuming: the experiment's own state wins)."""
    from raycodec.train.finetune import check_init

    if init is None:
        return None
    if resuming:
        print("[raycodec] continue_from is not applied: the experiment resumes from its own "
              "checkpoint", flush=True)
        return None
    try:
        check_init(cfg, init)
    except ValueError as exc:
        raise JobError(str(exc)) from None
    print(f"[raycodec] {'every trial continues' if sweep else 'continue_from'} {init.source} "
          f"({init.kind}): taking {', '.join(init.taken) or 'nothing'}", flush=True)
    return init


def prepare(cfg: DictConfig, sweep_dir: str | None = None) -> JobPlan:
    """Resolve, read and check everything the job needs; JobError names bad input.

    With `sweep_dir`, prepares a Tune sweep's shared inputs there instead of in the run's
    folder: trials take them with `JobPlan.for_trial`, and never resume the base config's run.
    """
    import ray

    from raycodec.train.checkpoint import latest_checkpoint_meta

    init = load_source(cfg)  # read once: its hash names the experiment, its weights start it
    run = run_info(cfg, init)
    folder = sweep_dir or run.run_dir
    os.makedirs(folder, exist_ok=True)
    latest = None if sweep_dir else latest_checkpoint_meta(run.run_dir)
    digest = init.digest if init is not None else None
    init = _checked_source(cfg, init, latest is not None, sweep_dir is not None)  # before Ray
    init_ray(cfg)
    train, valid, evaluation = read_data(cfg, folder)
    check_cluster(cfg, ray.cluster_resources())
    plan = JobPlan(cfg, run, train, valid, evaluation, worker_resources(cfg), latest,
                   init_digest=digest)
    if init is not None and not plan.finished:
        # Through the object store: the source path need not exist where the workers run.
        plan.init = ray.put(init)
    return plan
