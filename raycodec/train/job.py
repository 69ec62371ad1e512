"""The training job's driver: resolve the experiment, check inputs, run the TorchTrainer."""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from raycodec.config import experiment_signature, format_config, save_config


class JobError(ValueError):
    """Bad input detected before training starts (printed without a traceback)."""


def load_source(cfg: DictConfig):
    """The `continue_from` parts this experiment would take (None without continue_from)."""
    from raycodec.train.finetune import load_init

    try:
        return load_init(cfg)
    except ValueError as exc:
        raise JobError(str(exc)) from None


def resolve_run(cfg: DictConfig, init=None) -> dict:
    """Signature, run name, storage folder, run folder and Aim repo of this experiment
    (`init`: its `continue_from` source, whose content hash is part of the signature)."""
    from raycodec.tracking import resolve_repo

    if cfg.get("continue_from") and init is None:
        init = load_source(cfg)
    signature = experiment_signature(cfg, init.digest if init is not None else None)
    storage = cfg.ray.storage_path or "~/ray_results"
    if "://" not in storage:
        storage = str(Path(storage).expanduser().absolute())
    run_dir = os.path.join(storage, signature)
    try:
        repo = resolve_repo(cfg.tracking.repo or os.path.join(storage, "aim"))
    except ValueError as exc:
        raise JobError(str(exc)) from None
    return {"signature": signature, "name": signature, "storage_path": storage,
            "run_dir": run_dir, "aim_repo": repo}


def _scan(paths: list[str], out: str) -> str:
    """Scan audio files, folders, globs or audiocraft jsonl manifests into a Parquet manifest."""
    from raycodec.data import build_manifest

    if not os.path.exists(out):  # scanned once per experiment, reused on resume
        try:
            result = build_manifest(paths, out=out, rejects_out=out + ".rejects.parquet")
        except ValueError as exc:
            raise JobError(f"dataset: {exc}") from None
        print(f"[raycodec] scanned {result.manifest.num_rows} usable files into {out}"
              f" ({result.rejects.num_rows} rejected: {result.reasons or 'none'})", flush=True)
    return out


def _manifest(cfg: DictConfig, split: str, run_dir: str) -> str | None:
    """dataset.<split>.manifest, else dataset.manifest, else a scan of dataset.path."""
    given = cfg.dataset[split].manifest or cfg.dataset.manifest
    if given and str(given).endswith(".jsonl"):  # audiocraft manifests: converted once
        return _scan([str(given)], os.path.join(run_dir, f"{split}_manifest.parquet"))
    if given:
        if "://" not in str(given) and not os.path.exists(given):  # URIs are read by pyarrow
            raise JobError(f"dataset manifest not found: {given}")
        return str(given)
    if split != "train" or not cfg.dataset.path:
        return None
    paths = [cfg.dataset.path] if isinstance(cfg.dataset.path, str) else list(cfg.dataset.path)
    return _scan(paths, os.path.join(run_dir, "manifest.parquet"))


def check_data(cfg: DictConfig, manifest: str | None) -> None:
    """Fail early on a missing or empty manifest, or one with nothing long enough."""
    from raycodec.data import eligible_files, read_manifest

    if manifest is None:
        raise JobError("no training data: set dataset.path (audio files or folders) or "
                       "dataset.manifest (a Parquet or audiocraft jsonl manifest)")
    table = read_manifest(manifest)
    if table.num_rows == 0:
        raise JobError(f"the manifest {manifest} lists no usable audio file "
                       "(every file was rejected or the folder is empty)")
    try:
        eligible_files(table, segment_duration=cfg.dataset.segment_duration,
                       min_segment_ratio=cfg.dataset.min_segment_ratio, channels=cfg.channels)
    except ValueError as exc:
        raise JobError(str(exc)) from None


def worker_resources(cfg: DictConfig) -> dict:
    """Resources of one Train worker (1 CPU, plus 1 GPU with use_gpu, unless configured)."""
    res = {k: float(v) for k, v in (cfg.ray.resources_per_worker or {}).items()}
    res.setdefault("CPU", 1.0)
    if cfg.ray.use_gpu:
        res.setdefault("GPU", 1.0)
    return res


def check_cluster(cfg: DictConfig, available: dict) -> None:
    """Fail early when the workers can never fit the cluster (Ray would wait forever)."""
    n = cfg.ray.num_workers
    if n < 1:
        raise JobError(f"ray.num_workers must be >= 1, got {n}")
    if cfg.dataset.batch_size % n:
        raise JobError(f"dataset.batch_size {cfg.dataset.batch_size} is global and must divide "
                       f"evenly over ray.num_workers={n}")
    if cfg.ray.autoscaling:  # GPU nodes may scale up from zero: Ray waits for them
        return
    if cfg.ray.use_gpu and available.get("GPU", 0) == 0:
        raise JobError("ray.use_gpu=true but the Ray cluster has no GPU; run on GPU nodes, set "
                       "ray.use_gpu=false, or ray.autoscaling=true if GPU nodes scale up")
    for key, amount in worker_resources(cfg).items():
        need, have = amount * n, available.get(key, 0.0)
        # Ray Data's decoding tasks need at least one CPU beside the Train workers.
        spare = 1.0 if key == "CPU" else 0.0
        if need + spare > have:
            raise JobError(f"{n} workers x {amount:g} {key} = {need:g} {key}"
                           + (" plus 1 CPU for data loading" if spare else "")
                           + f", but the Ray cluster has {have:g}; lower ray.num_workers or "
                           "ray.resources_per_worker")


def init_ray(cfg: DictConfig) -> None:
    """Join the cluster of ray.address / RAY_ADDRESS (ray job submit), else start a local one."""
    import ray

    if not ray.is_initialized():
        address = cfg.ray.address or os.environ.get("RAY_ADDRESS")
        if address:
            ray.init(address=address)
        else:
            try:  # a cluster started on this machine with `ray start`
                ray.init(address="auto")
            except ConnectionError:  # none: a local one, CPUs oversubscribed for data loading
                needed = cfg.ray.num_workers * worker_resources(cfg)["CPU"] + 2
                cpus = max(os.cpu_count() or 1, int(needed + 0.999))
                ray.init(address="local", num_cpus=cpus)
    ray.data.DataContext.get_current().enable_progress_bars = False


def evaluation_files(cfg: DictConfig, valid_manifest: str) -> list[str]:
    """The held-out files of the background evaluation (`evaluate.*`); [] when it is off."""
    from raycodec.data import read_manifest

    if not cfg.evaluate.every or cfg.evaluate.num_files <= 0:
        return []
    manifest = cfg.evaluate.manifest or valid_manifest
    if "://" not in str(manifest) and not os.path.exists(manifest):
        raise JobError(f"evaluate.manifest not found: {manifest}")
    paths = read_manifest(manifest).column("path").to_pylist()
    return paths[: cfg.evaluate.num_files]


def build_datasets(cfg: DictConfig, train_manifest: str, valid_manifest: str,
                   start_epoch: int) -> dict:
    """The multi-epoch training stream and the deterministic validation set."""
    from raycodec.data import segment_dataset
    from raycodec.data.stream import epoch_stream

    common = dict(segment_duration=cfg.dataset.segment_duration, sample_rate=cfg.sample_rate,
                  channels=cfg.channels, min_segment_ratio=cfg.dataset.min_segment_ratio)
    train = epoch_stream(train_manifest, start_epoch=start_epoch, end_epoch=cfg.optim.epochs,
                         samples_per_epoch=cfg.optim.updates_per_epoch * cfg.dataset.batch_size,
                         seed=cfg.seed, batch_size=cfg.dataset.batch_size, **common)
    valid = segment_dataset(valid_manifest, num_samples=cfg.dataset.valid.num_samples,
                            seed=cfg.seed + 1, shuffle=False,
                            batch_size=cfg.dataset.evaluate.batch_size, **common)
    return {"train": train, "valid": valid}


def _checked_source(cfg: DictConfig, init, resuming: bool):
    """The `continue_from` parts, checked against the model of `cfg` before Ray starts (None
    without a source, or when resuming: the experiment's own state wins)."""
    from raycodec.train.finetune import InitState, check_init

    if not cfg.get("continue_from"):
        return None
    if resuming:
        print("[raycodec] continue_from is not applied: the experiment resumes from its own "
              "checkpoint", flush=True)
        return None
    if init is None:
        init = load_source(cfg)
    if not isinstance(init, InitState):  # already in the object store (checked by the sweep)
        return init
    try:
        check_init(cfg, init)
    except ValueError as exc:
        raise JobError(str(exc)) from None
    print(f"[raycodec] continue_from {init.source} ({init.kind}): taking "
          f"{', '.join(init.taken) or 'nothing'}", flush=True)
    return init


def build_trainer(cfg: DictConfig, run: dict | None = None, callbacks: list | None = None,
                  init=None):
    """Check inputs and build the TorchTrainer of `cfg` (None when the run already finished).

    `run` overrides the experiment identity (Tune trials name runs after their trial id),
    `callbacks` go to the RunConfig (e.g. Tune's TuneReportCallback) and `init` is the
    `continue_from` source already loaded (an InitState, or its object-store reference).
    """
    import ray
    from ray.data import ExecutionOptions
    from ray.train import CheckpointConfig, DataConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from raycodec.train.checkpoint import latest_checkpoint_meta
    from raycodec.train.finetune import InitState
    from raycodec.train.loop import train_loop_per_worker

    run = run or resolve_run(cfg, init)
    os.makedirs(run["run_dir"], exist_ok=True)
    latest = latest_checkpoint_meta(run["run_dir"])
    init = _checked_source(cfg, init, resuming=latest is not None)  # mismatches fail here
    init_ray(cfg)
    train_manifest = _manifest(cfg, "train", run["run_dir"])
    check_data(cfg, train_manifest)
    valid_manifest = _manifest(cfg, "valid", run["run_dir"]) or train_manifest
    check_data(cfg, valid_manifest)
    check_cluster(cfg, ray.cluster_resources())

    start_epoch = latest["epoch"] if latest else 0
    print(f"[raycodec] experiment {run['signature']} ({cfg.tracking.experiment}): "
          + (f"resuming after epoch {start_epoch}" if latest else "starting"), flush=True)
    save_config(cfg, os.path.join(run["run_dir"], "config.yaml"))
    if start_epoch >= cfg.optim.epochs:
        print(f"[raycodec] already finished: {latest['path']}", flush=True)
        return None
    # Through the object store: the source path need not exist where the workers run.
    init_ref = ray.put(init) if isinstance(init, InitState) else init

    return TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"cfg": OmegaConf.to_container(cfg, resolve=True), "run": run,
                           "init": init_ref, "eval_paths": evaluation_files(cfg, valid_manifest)},
        scaling_config=ScalingConfig(num_workers=cfg.ray.num_workers, use_gpu=cfg.ray.use_gpu,
                                     resources_per_worker=worker_resources(cfg)),
        run_config=RunConfig(name=run["name"], storage_path=run["storage_path"],
                             callbacks=callbacks,
                             failure_config=FailureConfig(max_failures=cfg.ray.max_failures),
                             checkpoint_config=CheckpointConfig(
                                 num_to_keep=cfg.checkpoint.keep_last)),
        datasets=build_datasets(cfg, train_manifest, valid_manifest, start_epoch),
        # Ordered delivery makes a resumed single-worker run see exactly the same batches.
        dataset_config=DataConfig(execution_options=ExecutionOptions(preserve_order=True)),
    )


def train(cfg: DictConfig):
    """Run (or resume) the experiment described by `cfg`; returns the Ray Train Result."""
    print(format_config(cfg), flush=True)
    init = load_source(cfg)  # read once: its hash names the experiment, its weights start it
    run = resolve_run(cfg, init)
    trainer = build_trainer(cfg, run, init=init)
    if trainer is None:
        return None
    result = trainer.fit()
    print_summary(result, run)
    return result


def print_summary(result, run: dict) -> None:
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
    print(f"Aim: aim up --repo {run['aim_repo']}")
