"""Sweep files: read, merge command-line overrides, and validate before Ray starts.

A sweep file (YAML, see experiments/sweeps/) names a base training config and its overrides, the
search space over config keys, the ASHA scheduler and the per-trial resources. Every value a trial
can get is checked against the config schema here, so that a typo fails in milliseconds.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from raycodec.config import ConfigError, load_config
from raycodec.tracking.names import METRICS, REGISTRY, VALID, parse_metric_key
from raycodec.tracking.names import mode as metric_mode
from raycodec.tune.space import Param, SweepError, parse_space
from raycodec.tune.sweepfile import (
    apply_sweep_overrides,
    check_sections,
    find_sweep,
    flat_overrides,
    read_sweep,
    split_overrides,
)

ALGORITHMS = ("random", "grid", "optuna", "auto")
SCHEDULERS = ("asha", "none", "pbt", "pb2")
PBT_KEYS = ("perturbation_interval", "quantile_fraction", "resample_probability", "mutations",
            "synch")
# What validation reports and ASHA may rank on (raycodec.tracking.names: name -> min/max).
VALID_METRICS = {m.name: metric_mode(m.name) for m in METRICS
                 if VALID in m.subsets and m.better and "<" not in m.name}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass
class SweepSpec:
    """A validated sweep: everything a driver and its trials need, as plain values."""

    name: str
    base: str                      # shipped config name or absolute path of a YAML file
    base_text: str | None          # the YAML file's text: trials may run on other machines
    overrides: list[str]           # key=value on top of `base` for every trial (resources last)
    params: list[Param]
    algorithm: str = "random"
    num_samples: int = 1
    seed: int = 0
    scheduler: str = "asha"        # asha | none (every trial runs to max_t)
    metric: str = "valid_mel"
    mode: str = "min"
    max_t: int = 1
    grace_period: int = 1
    reduction_factor: float = 2.0
    max_concurrent_trials: int | None = None
    perturbation_interval: int = 1  # pbt / pb2: epochs between exploit/explore decisions
    quantile_fraction: float = 0.25
    resample_probability: float = 0.25
    mutations: list[Param] = field(default_factory=list)  # pbt / pb2: what explore changes
    synch: bool = False            # pbt / pb2: the whole population waits at each interval
    source: str = ""
    description: str = ""
    cfg: DictConfig | None = field(default=None, repr=False, compare=False)
    notes: list[str] = field(default_factory=list, compare=False)  # printed when it starts

    def to_dict(self) -> dict:
        """Plain, comparable values (saved in the sweep folder; compared on --resume)."""
        out = asdict(self)
        out.pop("cfg"), out.pop("notes")
        out["params"] = {p.key: p.describe() for p in self.params}
        out["mutations"] = {p.key: p.describe() for p in self.mutations}
        return out

    @property
    def population_based(self) -> bool:
        """Whether trials exchange weights and hyperparameters (pbt, pb2)."""
        return self.scheduler in ("pbt", "pb2")

    def expected_trials(self) -> int:
        """How many trials the finished sweep has (grid entries multiply `num_samples`)."""
        total = self.num_samples
        for p in self.params:
            if p.kind == "grid" or (self.algorithm == "grid" and p.kind == "choice"):
                total *= len(p.values)
        return total

    @property
    def sweep_dir(self) -> str:
        """`<ray.storage_path>/<name>`: Tune's state, the scanned data, the trials, the reports."""
        from raycodec.train.plan import storage_path

        return os.path.join(storage_path(self.cfg), self.name)

    def trial_overrides(self) -> list[str]:
        """The overrides of every trial: the sweep's, then the manifests prepared once in the
        sweep folder (a scan of dataset.path, a converted jsonl)."""
        from raycodec.train.inputs import manifest_overrides

        return [*self.overrides, *manifest_overrides(self.cfg, self.sweep_dir)]

    def trial_config(self, sampled: dict[str, Any], experiment: bool = True) -> DictConfig:
        """The full config of a trial, as the trial gets it (see `trial_config`)."""
        return trial_config(self, sampled, experiment)


def trial_config(spec: SweepSpec, sampled: dict[str, Any], experiment: bool = True) -> DictConfig:
    """The full config of a trial: base, the trial overrides, then its sampled values.

    With `experiment`, `tracking.experiment` is the sweep name (its trials group in Aim).
    """
    items = [*spec.trial_overrides(),
             *[f"{key}={json.dumps(plain_value(value))}" for key, value in sampled.items()]]
    if experiment:
        items.append(f"tracking.experiment={spec.name}")
    if spec.base_text is None:
        return load_config(spec.base, items)
    # A file base travels as text: the trial may run where the driver's path does not exist.
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, os.path.basename(spec.base))
        with open(path, "w") as f:
            f.write(spec.base_text)
        return load_config(path, items)


def plain_value(value: Any) -> Any:
    """numpy scalars (what Tune samples) as Python values, for JSON."""
    return value.item() if hasattr(value, "item") else value


def _int(value: Any, what: str, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise SweepError(f"{what} must be an integer >= {low}, got {value!r}")
    return value


def _number(value: Any, what: str, low: float, inclusive: bool = True) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or value < low or (value == low and not inclusive):
        bound = ">=" if inclusive else ">"
        raise SweepError(f"{what} must be a number {bound} {low:g}, got {value!r}")
    return float(value)


def _resources(res: dict | None) -> list[str]:
    """resources.* as config overrides (ray.num_workers, ray.use_gpu, ray.resources_per_worker)."""
    if not res:
        return []
    workers = _int(res.get("workers", 1), "resources.workers")
    cpus = _number(res.get("cpus_per_worker", 1), "resources.cpus_per_worker", 0, False)
    gpus = _number(res.get("gpus_per_worker", 0), "resources.gpus_per_worker", 0)
    per_worker = {"CPU": cpus, **({"GPU": gpus} if gpus else {})}
    return [f"ray.num_workers={workers}", f"ray.use_gpu={json.dumps(gpus > 0)}",
            f"ray.resources_per_worker={json.dumps(per_worker)}"]


def _load(base: str, overrides: list[str], what: str) -> DictConfig:
    try:
        return load_config(base, overrides)
    except ConfigError as exc:
        raise SweepError(f"{what}: {exc}") from None


def _check_params(params: list[Param], base: str, fixed: list[str]) -> None:
    """Every value a trial can draw must be a valid config value; searched keys are not fixed."""
    fixed_keys = {item.partition("=")[0] for item in fixed}
    seen = set()
    for p in params:
        if p.key in seen:
            raise SweepError(f"search space {p.key!r} is listed twice")
        seen.add(p.key)
        if p.key in fixed_keys:
            raise SweepError(f"{p.key!r} is both searched and fixed by an override; remove one")
        for value in p.probes():
            _load(base, [*fixed, f"{p.key}={json.dumps(value)}"],
                  f"search space {p.key!r} ({p.describe()})")


def _scheduler(raw: dict | None, cfg: DictConfig) -> dict:
    raw = dict(raw or {})
    kind = str(raw.get("type", "asha")).lower()
    if kind not in SCHEDULERS:
        raise SweepError(f"scheduler.type must be one of {', '.join(SCHEDULERS)}, got {kind!r}")
    if kind not in ("pbt", "pb2"):
        extra = [k for k in raw if k in PBT_KEYS]
        if extra:
            raise SweepError(f"scheduler.{extra[0]} is a pbt/pb2 setting; scheduler.type is "
                             f"{kind}")
    metric = str(raw.get("metric", "valid_mel"))
    name, bandwidth = parse_metric_key(metric.removeprefix("valid_"))
    if not metric.startswith("valid_") or name not in VALID_METRICS or (
            bandwidth is not None and not REGISTRY[name].per_bandwidth):
        per_bw = [n for n in VALID_METRICS if REGISTRY[n].per_bandwidth]
        raise SweepError(f"scheduler.metric {metric!r} is not a validation metric; use "
                         f"valid_<name> with name one of {', '.join(VALID_METRICS)}, or "
                         f"valid_<name>_<bw>kbps with name one of {', '.join(per_bw)} "
                         "(e.g. valid_mel, valid_si_snr_db_6kbps)")
    mode = str(raw.get("mode", VALID_METRICS[name]))
    if mode not in ("min", "max"):
        raise SweepError(f"scheduler.mode must be min or max, got {mode!r}")
    epochs = int(cfg.optim.epochs)
    max_t = _int(raw.get("max_t", epochs), "scheduler.max_t")
    if max_t > epochs:
        raise SweepError(f"scheduler.max_t ({max_t}) exceeds optim.epochs ({epochs}) of the "
                         "trials' config; lower max_t or raise optim.epochs")
    grace = _int(raw.get("grace_period", 1), "scheduler.grace_period")
    if grace > max_t:
        raise SweepError(f"scheduler.grace_period ({grace}) exceeds max_t ({max_t})")
    rf = _number(raw.get("reduction_factor", 2), "scheduler.reduction_factor", 1, False)
    out = {"scheduler": kind, "metric": metric, "mode": mode, "max_t": max_t,
           "grace_period": grace, "reduction_factor": rf}
    if kind in ("pbt", "pb2"):
        interval = _int(raw.get("perturbation_interval", 1), "scheduler.perturbation_interval")
        if interval >= max_t:
            raise SweepError(f"scheduler.perturbation_interval ({interval}) must be below max_t "
                             f"({max_t}): no trial would ever be perturbed")
        every = int(cfg.checkpoint.every)
        if interval % every:
            raise SweepError(f"scheduler.perturbation_interval ({interval}) must be a multiple "
                             f"of checkpoint.every ({every}): exploit copies a checkpoint")
        quantile = _number(raw.get("quantile_fraction", 0.25), "scheduler.quantile_fraction", 0,
                           False)
        resample = _number(raw.get("resample_probability", 0.25),
                           "scheduler.resample_probability", 0)
        if quantile > 0.5 or resample > 1:
            raise SweepError("scheduler.quantile_fraction must be in (0, 0.5] and "
                             "scheduler.resample_probability in [0, 1]")
        synch = raw.get("synch", False)
        if not isinstance(synch, bool):
            raise SweepError(f"scheduler.synch must be true or false, got {synch!r}")
        out.update(perturbation_interval=interval, quantile_fraction=quantile,
                   resample_probability=resample, synch=synch)
    return out


def _algorithm(search: dict, params: list[Param]) -> str:
    algorithm = str(search.get("algorithm", "random")).lower()
    if algorithm not in ALGORITHMS:
        raise SweepError(f"search.algorithm must be one of {', '.join(ALGORITHMS)}, "
                         f"got {algorithm!r}")
    has_grid = any(p.kind == "grid" for p in params)
    if algorithm == "grid":
        continuous = [p.key for p in params if p.kind not in ("choice", "grid")]
        if continuous:
            raise SweepError(f"search.algorithm grid needs discrete entries (choice/grid); "
                             f"{', '.join(continuous)} are ranges: use random or optuna")
    if algorithm in ("optuna", "auto"):
        if algorithm == "auto":
            return "optuna" if optuna_installed() and not has_grid else "random"
        if not optuna_installed():
            raise SweepError("search.algorithm optuna needs the optuna package, which is not "
                             "installed: `pip install optuna`, or use algorithm: random")
        if has_grid:
            raise SweepError("search.algorithm optuna cannot search grid entries; use choice")
    return algorithm


def optuna_installed() -> bool:
    """Whether `import optuna` would work (Ray's OptunaSearch needs it)."""
    import importlib.util

    return importlib.util.find_spec("optuna") is not None


def load_sweep(name_or_file: str, overrides: list[str] = ()) -> SweepSpec:
    """Read, merge and validate a sweep; SweepError (a ValueError) names what is wrong."""
    path = find_sweep(name_or_file)
    config_items, sweep_items = split_overrides(list(overrides))
    raw = apply_sweep_overrides(read_sweep(path), sweep_items)
    source = f"sweep file {path}" + (" or its sweep.* overrides" if sweep_items else "")
    check_sections(raw, source)
    name = str(raw.get("name") or path.stem)
    if not _NAME.match(name):
        raise SweepError(f"sweep name {name!r} may only use letters, digits, '_', '.', '-'")
    base = str(raw.get("config") or "")
    if not base:
        raise SweepError(f"{source} must name its base training config, e.g. 'config: debug'")
    base_text = None
    if base.endswith((".yaml", ".yml")) or "/" in base:  # relative to the sweep file
        base = str((path.parent / base).resolve())
        try:
            base_text = Path(base).read_text()
        except OSError as exc:
            raise SweepError(f"base config {base} of {source}: {exc.strerror}") from None
    fixed = [*flat_overrides(raw.get("overrides")), *_resources(raw.get("resources")),
             *config_items]
    cfg = _load(base, fixed, f"config {base!r} with the sweep's overrides")
    search = raw.get("search") or {}
    params = parse_space(search.get("space"))
    _check_params(params, base, fixed)
    algorithm = _algorithm(search, params)
    scheduler = _scheduler(raw.get("scheduler"), cfg)
    mutations = []
    if scheduler["scheduler"] in ("pbt", "pb2"):
        from raycodec.tune.pbt import check_mutations

        mutations = check_mutations((raw.get("scheduler") or {}).get("mutations"), params,
                                    scheduler["scheduler"], cfg)
        _check_params([p for p in mutations if p not in params], base, fixed)
    notes = []
    if str(search.get("algorithm")).lower() == "auto" and algorithm == "random":
        notes.append("search.algorithm auto: random search (optuna is not installed; "
                     "`pip install optuna` for TPE)")
    default_samples = 1 if algorithm == "grid" else 8
    max_concurrent = raw.get("max_concurrent_trials")
    if max_concurrent is not None:
        max_concurrent = _int(max_concurrent, "max_concurrent_trials")
    return SweepSpec(
        name=name, base=base, base_text=base_text, overrides=fixed, params=params,
        algorithm=algorithm,
        num_samples=_int(search.get("num_samples", default_samples), "search.num_samples"),
        seed=_int(search.get("seed", 0), "search.seed", 0),
        max_concurrent_trials=max_concurrent, source=str(path),
        description=str(raw.get("description") or ""), cfg=cfg, notes=notes,
        mutations=mutations, **scheduler)
