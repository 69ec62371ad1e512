"""The per-worker training loop that Ray Train's TorchTrainer runs on every rank.

Every rank runs the same number of steps and calls `ray.train.report` once per epoch (a barrier);
metrics are averaged across ranks first; only rank 0 writes checkpoints and tracks to Aim.
"""

from __future__ import annotations

import copy
import re
import tempfile
import warnings
from collections import defaultdict
from functools import partial
from pathlib import Path

import ray.train
import torch
from omegaconf import OmegaConf
from ray.train.torch import get_device, prepare_model

from raycodec.config import model_overrides
from raycodec.models import build_from_settings, preset_settings
from raycodec.train.builders import build_step
from raycodec.train.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from raycodec.train.step import average_metrics
from raycodec.train.validation import Validator

MAX_CONSECUTIVE_SKIPS = 10
_PER_LAYER = re.compile(r"_q\d+$")


def build_model_from_config(cfg):
    """The generator described by `model` + `encodec/seanet/rvq` overrides of a config."""
    return build_from_settings(preset_settings(cfg.model, **model_overrides(cfg)))


def _seed_everything(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class _Tracker:
    """Rank-0 Aim run; other ranks (and a tracker that failed to open) do nothing."""

    def __init__(self, run: dict, cfg, rank: int):
        self.aim = None
        if rank != 0:
            return
        from raycodec.tracking import AimTracker

        try:
            self.aim = AimTracker(run["aim_repo"], cfg.tracking.experiment, run["signature"],
                                  hparams=OmegaConf.to_container(cfg, resolve=True))
            self.aim.set("ray_run", run["name"])
            for key, value in run.get("aim_params", {}).items():  # e.g. a Tune trial's id
                self.aim.set(key, value)
        except Exception as exc:  # tracking must never stop training
            warnings.warn(f"Aim tracking disabled: {exc!r}", stacklevel=2)

    def __getattr__(self, name):
        return getattr(self.aim, name) if self.aim is not None else (lambda *a, **k: None)


def _maybe_fail(cfg, step: int, rank: int, marker: Path) -> None:
    """Test hook: rank 0 raises once at `debug.fail_at_step` (a marker file makes it once)."""
    fail_at = cfg.debug.fail_at_step
    if fail_at is None or step != fail_at or rank != 0 or marker.exists():
        return
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(str(step))
    raise RuntimeError(f"injected failure at step {step} (debug.fail_at_step)")


def _log_samples(tracker, model, x: torch.Tensor, bandwidths, sample_rate, step, epoch) -> None:
    from raycodec.tracking import mel_image

    ref = x[0].cpu()
    tracker.log_audio("audio", ref, sample_rate, step, epoch, {"kind": "reference"})
    tracker.log_image("mel", mel_image(ref, sample_rate), step, epoch, {"kind": "reference"})
    with torch.no_grad():
        for bw in bandwidths:
            model.set_target_bandwidth(bw)
            y = model(x[:1]).x[0].cpu()
            ctx = {"kind": "reconstruction", "bandwidth": float(bw)}
            tracker.log_audio("audio", y, sample_rate, step, epoch, ctx)
            tracker.log_image("mel", mel_image(y, sample_rate), step, epoch, ctx)


def train_loop_per_worker(config: dict) -> None:
    """Train for `optim.epochs` epochs of `optim.updates_per_epoch` GAN steps, resuming if asked."""
    cfg = OmegaConf.create(config["cfg"])
    run = config["run"]
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    _seed_everything(cfg.seed)  # same init on every rank (DDP also broadcasts rank 0's weights)
    device = get_device()

    model = build_model_from_config(cfg)
    step_fn = build_step(model, cfg, device)
    if world > 1:
        step_fn.distribute(partial(prepare_model, parallel_strategy_kwargs={
            "broadcast_buffers": False}))  # codebooks sync themselves
    raw = step_fn.raw_model
    generators = {"q_dropout": raw.quantizer.generator}
    eval_model = copy.deepcopy(raw).eval()
    bandwidths = list(cfg.dataset.evaluate.bandwidths or raw.target_bandwidths)
    validator = Validator(raw.sample_rate, bandwidths, cfg, device)

    epoch, global_step = 0, 0
    checkpoint = ray.train.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as directory:
            state = load_checkpoint(directory)
        step_fn.load_state_dict(state["solver"])
        epoch, global_step = state["epoch"], state["step"]
        set_rng_state(state["rng"], generators)

    tracker = _Tracker(run, cfg, rank)
    per_rank_batch = cfg.dataset.batch_size // world
    train_batches = iter(ray.train.get_dataset_shard("train").iter_torch_batches(
        batch_size=per_rank_batch, drop_last=True, prefetch_batches=2))
    valid_shard = ray.train.get_dataset_shard("valid")
    marker = Path(run["run_dir"]) / "injected_failure.done"
    skips = read_failures = 0

    while epoch < cfg.optim.epochs:
        d_rng = torch.Generator().manual_seed(1234 + epoch)  # same D-update draws on all ranks
        raw.train()
        sums: dict[str, float] = defaultdict(float)
        counts: dict[str, int] = defaultdict(int)
        for _ in range(cfg.optim.updates_per_epoch):
            try:
                batch = next(train_batches)
            except StopIteration:
                raise RuntimeError("the training dataset ran out of segments before "
                                   f"epoch {epoch + 1} ended") from None
            global_step += 1
            _maybe_fail(cfg, global_step, rank, marker)
            metrics = step_fn(batch["audio"], global_step, d_rng)
            read_failures += int(batch["read_failures"].sum())
            skips = skips + 1 if metrics.get("skipped") else 0
            if skips >= MAX_CONSECUTIVE_SKIPS:
                raise RuntimeError(f"{skips} consecutive steps had non-finite losses or "
                                   f"gradients (last at step {global_step}); stopping")
            for k, v in metrics.items():
                sums[k] += v
                counts[k] += 1
            if global_step % cfg.tracking.log_every == 0:
                tracker.log_metrics(average_metrics(metrics), global_step, epoch, "train")
        epoch += 1

        train = {k: sums[k] / counts[k] for k in sums if not _PER_LAYER.search(k)}
        train["read_failures"] = float(read_failures)
        train = average_metrics(train)
        if step_fn.ema is not None:
            step_fn.ema.copy_to(eval_model)
        else:
            eval_model.load_state_dict(raw.state_dict())
        seen: list[torch.Tensor] = []  # a shard must be read by every rank in step: keep one
        valid_batches = (seen.append(b["audio"][:1]) or b["audio"] for b in
                         valid_shard.iter_torch_batches(batch_size=cfg.dataset.evaluate.batch_size))
        valid = average_metrics(validator(eval_model, valid_batches))
        tracker.log_metrics(valid, global_step, epoch, "valid")
        if rank == 0 and cfg.tracking.audio_every and epoch % cfg.tracking.audio_every == 0:
            _log_samples(tracker, eval_model, seen[0].to(device), bandwidths, raw.sample_rate,
                         global_step, epoch)

        report = {"epoch": epoch, "step": global_step,
                  **{f"train_{k}": v for k, v in train.items()},
                  **{f"valid_{k}": v for k, v in valid.items()}}
        save = epoch % cfg.checkpoint.every == 0 or epoch == cfg.optim.epochs
        with tempfile.TemporaryDirectory() as tmp:
            ckpt = None
            if save and rank == 0:
                state = {"solver": step_fn.state_dict(), "epoch": epoch, "step": global_step,
                         "rng": rng_state(generators),
                         "config": OmegaConf.to_yaml(cfg, resolve=True)}
                save_checkpoint(tmp, state, {"epoch": epoch, "step": global_step,
                                             "signature": run["signature"]})
                ckpt = ray.train.Checkpoint.from_directory(tmp)
            ray.train.report(report, checkpoint=ckpt)
        if rank == 0:
            shown = ", ".join(f"{k} {report[k]:.4g}" for k in
                              ("train_g_loss", "valid_sisnr", "valid_mel") if k in report)
            print(f"[raycodec] epoch {epoch}/{cfg.optim.epochs} step {global_step}: {shown}",
                  flush=True)
    tracker.close()
