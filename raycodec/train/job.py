"""The training job's driver: `prepare` the job, build its TorchTrainer, fit, summarise."""

from __future__ import annotations

import os

from omegaconf import DictConfig

from raycodec.config import save_config
from raycodec.train.inputs import (
    JobError,
    check_cluster,
    init_ray,
    is_elastic,
    worker_range,
    worker_resources,
)
from raycodec.train.plan import JobPlan, RunInfo, prepare

__all__ = ["JobError", "JobPlan", "build_trainer", "check_cluster", "init_ray", "prepare",
           "train", "worker_resources"]


def build_datasets(plan: JobPlan) -> dict:
    """The multi-epoch training stream and the deterministic validation set, from the plan's
    manifest tables (not read again). An elastic job's ranks build their own training slices
    (raycodec/train/elastic.py), so only validation goes through Ray Train's split."""
    from raycodec.data import segment_dataset
    from raycodec.data.stream import epoch_stream

    cfg = plan.cfg
    common = dict(segment_duration=cfg.dataset.segment_duration, sample_rate=cfg.sample_rate,
                  channels=cfg.channels, min_segment_ratio=cfg.dataset.min_segment_ratio)
    valid = segment_dataset(plan.valid.table, num_samples=cfg.dataset.valid.num_samples,
                            seed=cfg.seed + 1, shuffle=False,
                            batch_size=cfg.dataset.evaluate.batch_size, **common)
    if is_elastic(cfg):
        return {"valid": valid}
    train = epoch_stream(plan.train.table, start_epoch=plan.start_epoch,
                         end_epoch=cfg.optim.epochs,
                         samples_per_epoch=cfg.optim.updates_per_epoch * cfg.dataset.batch_size,
                         seed=cfg.seed, batch_size=cfg.dataset.batch_size, **common)
    return {"train": train, "valid": valid}


def build_trainer(plan: JobPlan, callbacks: list | None = None):
    """The TorchTrainer of a prepared job (None when its run already finished).

    `callbacks` go to the RunConfig (e.g. Tune's TuneReportCallback).
    """
    from ray.data import ExecutionOptions
    from ray.train import CheckpointConfig, DataConfig, FailureConfig, RunConfig
    from ray.train.torch import TorchTrainer

    from raycodec.train.loop import train_loop_per_worker

    cfg, run = plan.cfg, plan.run
    print(f"[raycodec] experiment {run.signature} ({cfg.tracking.experiment}): "
          + (f"resuming after epoch {plan.start_epoch}" if plan.latest else "starting"),
          flush=True)
    # The resolved config goes to a file, not the terminal (`train.py --print-config` shows it).
    config_path = os.path.join(run.run_dir, "config.yaml")
    save_config(cfg, config_path)
    print(f"[raycodec] config: {config_path}", flush=True)
    if plan.finished:
        print(f"[raycodec] already finished: {plan.latest['path']}", flush=True)
        return None
    return TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"job": plan.worker_job()},
        scaling_config=scaling_config(cfg, plan.resources),
        run_config=RunConfig(name=run.name, storage_path=run.storage_path,
                             callbacks=callbacks,
                             failure_config=FailureConfig(max_failures=cfg.ray.max_failures),
                             checkpoint_config=CheckpointConfig(
                                 num_to_keep=cfg.checkpoint.keep_last)),
        datasets=build_datasets(plan),
        # Ordered delivery makes a resumed single-worker run see exactly the same batches.
        dataset_config=DataConfig(execution_options=ExecutionOptions(preserve_order=True)),
    )


def scaling_config(cfg: DictConfig, resources: dict):
    """Ray Train's ScalingConfig: a fixed size, or elastic (MIN, MAX) for `[MIN, MAX]`."""
    from ray.train import ScalingConfig

    if not is_elastic(cfg):
        return ScalingConfig(num_workers=cfg.ray.num_workers, use_gpu=cfg.ray.use_gpu,
                             resources_per_worker=resources)
    return ScalingConfig(num_workers=worker_range(cfg), use_gpu=cfg.ray.use_gpu,
                         resources_per_worker=resources,
                         elastic_resize_monitor_interval_s=cfg.ray.resize_interval_s)


def train(cfg: DictConfig):
    """Run (or resume) the experiment described by `cfg`; returns the Ray Train Result."""
    plan = prepare(cfg)
    trainer = build_trainer(plan)
    if trainer is None:
        return None
    result = trainer.fit()
    print_summary(result, plan.run)
    return result


def print_summary(result, run: RunInfo) -> None:
    """Final validation table, checkpoint path and the command to open Aim."""
    from raycodec.tracking.names import metric_key, parse_metric_key

    metrics = result.metrics or {}
    parsed = [parse_metric_key(k[len("valid_"):]) for k in metrics if k.startswith("valid_")]
    names = sorted({name for name, bw in parsed if bw is not None})
    bws = sorted({bw for _, bw in parsed if bw is not None})
    print("\n[raycodec] final validation (EMA weights):")
    print(f"{'bandwidth':>10} " + " ".join(f"{n:>19}" for n in names))
    for bw in bws:
        cells = [metrics.get("valid_" + metric_key(n, bw), float("nan")) for n in names]
        print(f"{bw:>6g}kbps " + " ".join(f"{v:19.4f}" for v in cells))
    if result.checkpoint is not None:
        print(f"checkpoint: {result.checkpoint.path}")
    print(f"Aim: aim up --repo {run.aim_repo}")
