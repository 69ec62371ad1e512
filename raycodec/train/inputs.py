"""A job's checked inputs: its manifests (each read once) and the cluster's resources.

`raycodec.train.plan.prepare` calls these; every check fails with a one-line JobError.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pyarrow as pa
from omegaconf import DictConfig


class JobError(ValueError):
    """Bad input detected before training starts (printed without a traceback)."""


@dataclass
class Manifest:
    """A Parquet manifest and its table, read once."""

    path: str
    table: pa.Table


def _source(cfg: DictConfig, split: str, folder: str) -> tuple[str | None, list[str] | None]:
    """(manifest path, inputs to scan into it first) of a split: dataset.<split>.manifest, else
    dataset.manifest (an audiocraft jsonl is converted), else for train a scan of dataset.path."""
    given = cfg.dataset[split].manifest or cfg.dataset.manifest
    if given and str(given).endswith(".jsonl"):
        return os.path.join(folder, f"{split}_manifest.parquet"), [str(given)]
    if given:
        return str(given), None
    if split != "train" or not cfg.dataset.path:
        return None, None
    paths = [cfg.dataset.path] if isinstance(cfg.dataset.path, str) else list(cfg.dataset.path)
    return os.path.join(folder, "manifest.parquet"), [str(p) for p in paths]


def _separate_valid(cfg: DictConfig) -> bool:
    """Whether validation names its own manifest (else it uses the training manifest)."""
    valid = cfg.dataset.valid.manifest or cfg.dataset.manifest
    return bool(valid) and valid != (cfg.dataset.train.manifest or cfg.dataset.manifest)


def manifest_overrides(cfg: DictConfig, folder: str) -> list[str]:
    """Overrides pointing a config at the manifests `prepare(cfg, folder)` scans or converts
    there (a sweep's trials get them: the data is scanned once for all trials)."""
    out: list[str] = []
    for split in ("train", "valid"):
        path, scan = _source(cfg, split, folder)
        if scan is None or (split == "valid" and not _separate_valid(cfg)):
            continue  # a Parquet manifest (trials read the same path), or validation uses train's
        key = f"dataset.{split}.manifest" if cfg.dataset[split].manifest else "dataset.manifest"
        out += [f"{key}={path}", *(["dataset.path=null"] if split == "train" else [])]
    return out


def open_manifest(path: str, scan: list[str] | None = None,
                  what: str = "dataset manifest") -> Manifest:
    """The manifest at `path`, read once; with `scan`, those inputs (audio files, folders, globs,
    jsonl manifests) are scanned into it first unless it already exists (resume)."""
    from raycodec.data import build_manifest, read_manifest

    if scan is not None and not os.path.exists(path):
        try:
            result = build_manifest(scan, out=path, rejects_out=path + ".rejects.parquet")
        except ValueError as exc:
            raise JobError(f"dataset: {exc}") from None
        print(f"[raycodec] scanned {result.manifest.num_rows} usable files into {path}"
              f" ({result.rejects.num_rows} rejected: {result.reasons or 'none'})", flush=True)
    elif scan is None and "://" not in path and not os.path.exists(path):  # pyarrow reads URIs
        raise JobError(f"{what} not found: {path}")
    try:
        return Manifest(path, read_manifest(path))
    except (OSError, ValueError) as exc:
        raise JobError(f"{what} {path}: {exc}") from None


def check_files(cfg: DictConfig, manifest: Manifest) -> None:
    """Fail early on an empty manifest, or one with nothing long enough to draw from."""
    from raycodec.data import eligible_files

    if manifest.table.num_rows == 0:
        raise JobError(f"the manifest {manifest.path} lists no usable audio file "
                       "(every file was rejected or the folder is empty)")
    try:
        eligible_files(manifest.table, segment_duration=cfg.dataset.segment_duration,
                       min_segment_ratio=cfg.dataset.min_segment_ratio, channels=cfg.channels)
    except ValueError as exc:
        raise JobError(str(exc)) from None


def read_data(cfg: DictConfig, folder: str) -> tuple[Manifest, Manifest, Manifest | None]:
    """The train, valid and evaluation manifests, each read (or scanned into `folder`) once."""
    path, scan = _source(cfg, "train", folder)
    if path is None:
        raise JobError("no training data: set dataset.path (audio files or folders) or "
                       "dataset.manifest (a Parquet or audiocraft jsonl manifest)")
    train = valid = open_manifest(path, scan)
    check_files(cfg, train)
    if _separate_valid(cfg):
        valid = open_manifest(*_source(cfg, "valid", folder))
        check_files(cfg, valid)
    evaluation = None
    if cfg.evaluate.every and cfg.evaluate.num_files > 0:
        given = cfg.evaluate.manifest
        evaluation = (valid if not given or str(given) == valid.path
                      else open_manifest(str(given), what="evaluate.manifest"))
    return train, valid, evaluation


def worker_resources(cfg: DictConfig) -> dict:
    """Resources of one Train worker (1 CPU, plus 1 GPU with use_gpu, unless configured)."""
    res = {k: float(v) for k, v in (cfg.ray.resources_per_worker or {}).items()}
    res.setdefault("CPU", 1.0)
    if cfg.ray.use_gpu:
        res.setdefault("GPU", 1.0)
    return res


def worker_range(cfg: DictConfig) -> tuple[int, int]:
    """(MIN, MAX) Train workers: `ray.num_workers` is an int (fixed) or [MIN, MAX] (elastic)."""
    n = cfg.ray.num_workers
    return (n, n) if isinstance(n, int) else (int(n[0]), int(n[1]))


def is_elastic(cfg: DictConfig) -> bool:
    """Whether `ray.num_workers` is a [MIN, MAX] range (Ray Train elastic scaling)."""
    return not isinstance(cfg.ray.num_workers, int)


def check_cluster(cfg: DictConfig, available: dict) -> None:
    """Fail early when the workers can never fit the cluster (Ray would wait forever)."""
    low, high = worker_range(cfg)
    if low < 1:
        raise JobError(f"ray.num_workers must be >= 1, got {low}")
    batch = cfg.dataset.batch_size
    if is_elastic(cfg):  # any size in the range: shares may differ by one item (see elastic.py)
        if high > batch:
            raise JobError(f"dataset.batch_size {batch} is global: ray.num_workers "
                           f"[{low}, {high}] would leave workers without an item; keep MAX "
                           f"<= {batch}")
    elif batch % low:
        raise JobError(f"dataset.batch_size {batch} is global and must divide "
                       f"evenly over ray.num_workers={low} (or give a [MIN, MAX] range)")
    if cfg.ray.autoscaling:  # GPU nodes may scale up from zero: Ray waits for them
        return
    if cfg.ray.use_gpu and available.get("GPU", 0) == 0:
        raise JobError("ray.use_gpu=true but the Ray cluster has no GPU; run on GPU nodes, set "
                       "ray.use_gpu=false, or ray.autoscaling=true if GPU nodes scale up")
    n = low  # an elastic job starts once MIN workers fit, and grows when nodes join
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
                needed = worker_range(cfg)[1] * worker_resources(cfg)["CPU"] + 2
                cpus = max(os.cpu_count() or 1, int(needed + 0.999))
                from raycodec.train.local_ray import start_local_ray

                start_local_ray(cpus)
    ray.data.DataContext.get_current().enable_progress_bars = False
