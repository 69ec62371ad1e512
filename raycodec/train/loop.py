"""The per-worker training loop that Ray Train's TorchTrainer runs on every rank.

The recipe: set up (model, solver, `continue_from`), resume, then per epoch: train, validate,
report and checkpoint. Every rank runs the same number of steps and calls `ray.train.report`
once per epoch (a barrier); metrics are averaged across ranks first; only rank 0 writes
checkpoints, tracks to Aim and launches the background evaluation (`evaluate.every`).
"""

from __future__ import annotations

import copy
import logging
import re
import tempfile
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import ray.train
import torch
from omegaconf import DictConfig, OmegaConf
from ray.train.torch import get_device

from raycodec.codec.loading import model_settings
from raycodec.train import schedule
from raycodec.train.checkpoint import (
    load_checkpoint,
    rng_state,
    set_rng_state,
    write_training_checkpoint,
)
from raycodec.train.console import say
from raycodec.train.elastic import BatchShare, batch_share, rank_batches
from raycodec.train.finetune import build_solver
from raycodec.train.plan import RunInfo, WorkerJob
from raycodec.train.step import GANStep, average_metrics
from raycodec.train.validation import Validator

MAX_CONSECUTIVE_SKIPS = 10
_PER_LAYER = re.compile(r"_q\d+$")


def _seed_everything(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class _Tracker:
    """Rank-0 Aim run; other ranks (and a tracker that failed to open) do nothing."""

    def __init__(self, run: RunInfo, cfg, rank: int):
        self.aim = None
        if rank != 0:
            return
        from raycodec.tracking import AimTracker

        try:
            self.aim = AimTracker(run.aim_repo, cfg.tracking.experiment, run.signature,
                                  hparams=OmegaConf.to_container(cfg, resolve=True))
            self.aim.set("ray_run", run.name)
            for key, value in run.aim_params.items():  # e.g. a Tune trial's id
                self.aim.set(key, value)
        except Exception as exc:  # tracking must never stop training
            warnings.warn(f"Aim tracking disabled: {exc!r}", stacklevel=2)

    def __getattr__(self, name):
        return getattr(self.aim, name) if self.aim is not None else (lambda *a, **k: None)


@dataclass
class Worker:
    """One rank's training state between the recipe's steps."""

    cfg: DictConfig
    run: RunInfo
    rank: int
    world: int
    device: torch.device
    step_fn: GANStep
    eval_model: torch.nn.Module
    validator: Validator
    bandwidths: list[float]
    generators: dict[str, torch.Generator]
    tracker: _Tracker | None = None
    epoch: int = 0
    step: int = 0
    skips: int = 0
    read_failures: int = 0
    evaluations: object | None = None  # BackgroundEvaluations on rank 0 with evaluate.every
    share: BatchShare | None = None    # elastic: this rank's slice of every global batch
    sample: list[torch.Tensor] = field(default_factory=list)


def _quiet_train_reports() -> None:
    """Drop Ray Train's per-rank INFO dump of every reported metric: logs are for files (Aim,
    Train's result folder); the terminal gets one progress line per epoch from rank 0."""
    from ray.train.v2._internal.execution import context

    logging.getLogger(context.__file__).setLevel(logging.WARNING)  # Train names it by its path


def setup(job: WorkerJob) -> Worker:
    """Model and solver on this rank's device, from `continue_from` unless resuming."""
    _quiet_train_reports()
    cfg = OmegaConf.create(job.cfg)
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    _seed_everything(cfg.seed)  # same init on every rank (DDP also broadcasts rank 0's weights)
    device = get_device()
    # Resuming takes precedence: the checkpoint overwrites everything continue_from would set.
    init_ref = None if ray.train.get_checkpoint() else job.init
    step_fn = build_solver(cfg, ray.get(init_ref) if init_ref is not None else None, device)
    if world > 1:
        step_fn.distribute()  # raycodec.distrib.wrap_ddp: the one DDP path, tests included
    raw = step_fn.raw_model
    bandwidths = list(cfg.dataset.evaluate.bandwidths or raw.target_bandwidths)
    return Worker(cfg, job.run, rank, world, device, step_fn,
                  copy.deepcopy(raw).eval(), Validator.from_step(step_fn, bandwidths, device),
                  bandwidths, {"q_dropout": raw.quantizer.generator})


def resume(w: Worker, handed: str | None = None) -> None:
    """Restore the solver, counters and RNG states of the latest checkpoint, if any; else of
    `handed` (a checkpoint folder a Tune trial was handed: its own or, after a PBT exploit,
    the better trial's)."""
    checkpoint = ray.train.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as directory:
            state = load_checkpoint(directory)
    elif handed:
        state = load_checkpoint(handed)
    else:
        return
    w.step_fn.load_state_dict(state["solver"])
    w.epoch, w.step = state["epoch"], state["step"]
    set_rng_state(state["rng"], w.generators)


def _maybe_fail(cfg, step: int, rank: int, marker: Path) -> None:
    """Test hook: rank 0 raises once at `debug.fail_at_step` (a marker file makes it once)."""
    fail_at = cfg.debug.fail_at_step
    if fail_at is None or step != fail_at or rank != 0 or marker.exists():
        return
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(str(step))
    raise RuntimeError(f"injected failure at step {step} (debug.fail_at_step)")


def train_epoch(w: Worker, batches) -> dict[str, float]:
    """`optim.updates_per_epoch` GAN steps; returns the epoch's mean metrics (all ranks)."""
    cfg = w.cfg
    d_rng = torch.Generator().manual_seed(1234 + w.epoch)  # same D-update draws on all ranks
    marker = Path(w.run.run_dir) / "injected_failure.done"
    w.step_fn.raw_model.train()
    sums: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    for _ in range(cfg.optim.updates_per_epoch):
        try:
            batch = next(batches)
        except StopIteration:
            raise RuntimeError("the training dataset ran out of segments before "
                               f"epoch {w.epoch + 1} ended") from None
        w.step += 1
        _maybe_fail(cfg, w.step, w.rank, marker)
        if w.share is None:
            metrics = w.step_fn(batch["audio"], w.step, d_rng)
        else:  # elastic: the step's own slice, its gradient weighted by the slice's size
            w.share.check(batch["segment_id"], w.step)
            metrics = w.step_fn(batch["audio"], w.step, d_rng, w.share.weight)
        w.read_failures += int(batch["read_failures"].sum())
        w.skips = w.skips + 1 if metrics.get("skipped") else 0
        if w.skips >= MAX_CONSECUTIVE_SKIPS:
            raise RuntimeError(f"{w.skips} consecutive steps had non-finite losses or "
                               f"gradients (last at step {w.step}); stopping")
        for k, v in metrics.items():
            sums[k] += v
            counts[k] += 1
        if w.step % cfg.tracking.log_every == 0:
            w.tracker.log_metrics(average_metrics(metrics), w.step, w.epoch, "train")
    w.epoch += 1
    train = {k: sums[k] / counts[k] for k in sums if not _PER_LAYER.search(k)}
    train["read_failures"] = float(w.read_failures)
    if w.share is not None:
        train["world_size"] = float(w.world)  # elastic runs change size between epochs
    return average_metrics(train)


def validate(w: Worker, shard) -> dict[str, float]:
    """Metrics of the evaluation weights (EMA when kept) on the validation shard."""
    if w.step_fn.ema is not None:
        w.step_fn.ema.copy_to(w.eval_model)
    else:
        w.eval_model.load_state_dict(w.step_fn.raw_model.state_dict())
    w.sample.clear()

    def batches():
        # Every rank must read its shard to the end, in step with the others: Ray Data's
        # streaming split is a collective, and a rank that stops early blocks the rest. So the
        # audio sample for Aim is kept on the way instead of reading the shard again.
        for b in shard.iter_torch_batches(batch_size=w.cfg.dataset.evaluate.batch_size):
            if not w.sample:
                w.sample.append(b["audio"][:1])
            yield b["audio"]

    return average_metrics(w.validator(w.eval_model, batches()))


def _log_samples(w: Worker) -> None:
    from raycodec.tracking import mel_image

    model, tracker, sr = w.eval_model, w.tracker, w.eval_model.sample_rate
    x = w.sample[0].to(w.device)
    ref = x[0].cpu()
    tracker.log_audio("audio", ref, sr, w.step, w.epoch, {"kind": "reference"})
    tracker.log_image("mel", mel_image(ref, sr), w.step, w.epoch, {"kind": "reference"})
    with torch.no_grad():
        for bw in w.bandwidths:
            model.set_target_bandwidth(bw)
            y = model(x[:1]).x[0].cpu()
            ctx = {"kind": "reconstruction", "bandwidth": float(bw)}
            tracker.log_audio("audio", y, sr, w.step, w.epoch, ctx)
            tracker.log_image("mel", mel_image(y, sr), w.step, w.epoch, ctx)


def report(w: Worker, train: dict[str, float], valid: dict[str, float]) -> dict:
    """ray.train.report on every rank; rank 0 attaches the checkpoint when one is due."""
    cfg = w.cfg
    metrics = {"epoch": w.epoch, "step": w.step,
               **{f"train_{k}": v for k, v in train.items()},
               **{f"valid_{k}": v for k, v in valid.items()}}
    save = w.epoch % cfg.checkpoint.every == 0 or w.epoch == cfg.optim.epochs
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = None
        if save and w.rank == 0:
            write_training_checkpoint(tmp, w.step_fn.state_dict(), w.epoch, w.step,
                                      rng_state(w.generators),
                                      OmegaConf.to_yaml(cfg, resolve=True), w.run.signature)
            ckpt = ray.train.Checkpoint.from_directory(tmp)
        ray.train.report(metrics, checkpoint=ckpt)
    return metrics


def _background_evaluations(w: Worker, paths: list[str]):
    """Rank 0's BackgroundEvaluations when `evaluate.every` and held-out files are given."""
    if w.rank != 0 or not w.cfg.evaluate.every or not paths:
        return None
    from raycodec.evaluate.background import BackgroundEvaluations

    return BackgroundEvaluations(w.tracker, model_settings(w.cfg), paths, w.bandwidths,
                                 w.cfg.evaluate.max_seconds)


def _train_batches(w: Worker, job: WorkerJob):
    """This rank's training batches: Ray Train's split of the stream, or (elastic) its own
    slice of every global batch from the resumed epoch on (raycodec/train/elastic.py)."""
    if job.stream is None:
        return iter(ray.train.get_dataset_shard("train").iter_torch_batches(
            batch_size=w.cfg.dataset.batch_size // w.world, drop_last=True, prefetch_batches=2))
    w.share = batch_share(w.cfg.dataset.batch_size, w.world, w.rank)
    if w.rank == 0:
        batch = w.cfg.dataset.batch_size
        sizes = [batch_share(batch, w.world, r).size for r in range(w.world)]
        say(f"[raycodec] elastic: {w.world} workers from epoch {w.epoch} (step {w.step}); "
            f"the {batch}-item batch splits {sizes}")
    return rank_batches(job.stream, w.share, w.epoch) if w.epoch < w.cfg.optim.epochs \
        else iter(())


def train_loop_per_worker(config: dict) -> None:
    """Train for `optim.epochs` epochs of `optim.updates_per_epoch` GAN steps, resuming if asked."""
    job: WorkerJob = config["job"]  # raycodec.train.plan.JobPlan.worker_job
    w = setup(job)
    resume(w, job.resume_from)
    cfg = w.cfg
    w.tracker = _Tracker(w.run, cfg, w.rank)
    w.evaluations = _background_evaluations(w, job.eval_paths)
    batches = _train_batches(w, job)
    valid_shard = ray.train.get_dataset_shard("valid")
    while w.epoch < cfg.optim.epochs:
        schedule.at_epoch(w.step_fn, cfg, w.epoch, w.tracker, w.step)  # losses, every, lr
        train = train_epoch(w, batches)
        valid = validate(w, valid_shard)
        w.tracker.log_metrics(valid, w.step, w.epoch, "valid")
        if w.rank == 0 and cfg.tracking.audio_every and w.epoch % cfg.tracking.audio_every == 0:
            _log_samples(w)
        if w.evaluations is not None:
            w.evaluations.poll()
            if w.epoch % cfg.evaluate.every == 0:
                w.evaluations.launch(w.eval_model, w.step, w.epoch)
        metrics = report(w, train, valid)
        if w.rank == 0:
            shown = ", ".join(f"{k} {metrics[k]:.4g}" for k in
                              ("train_g_loss", "valid_si_snr_db", "valid_mel") if k in metrics)
            say(f"[raycodec] epoch {w.epoch}/{cfg.optim.epochs} step {w.step}: {shown}")
    if w.evaluations is not None:
        w.evaluations.drain()
    w.tracker.close()
