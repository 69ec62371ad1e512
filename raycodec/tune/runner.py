"""The sweep's driver: check inputs, start or restore the Tuner, then report and mark statuses.

Layout of a sweep folder `<ray.storage_path>/<sweep name>/`: Tune's experiment state and
per-trial results, `sweep.yaml` (the validated sweep), `manifest.parquet` (data scanned once for
all trials), `trials/<trial id>/` (each trial's Ray Train run and checkpoints), and at the end
`results.csv`, `results.md` and `best_config.yaml`. Aim runs go to the training job's repo.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import yaml
from omegaconf import DictConfig

from raycodec.tune.report import TrialRow, best_row, collect, format_table, table, write_reports
from raycodec.tune.space import SweepError
from raycodec.tune.spec import SweepSpec
from raycodec.tune.tracking import AimStatusCallback, set_status, written_statuses
from raycodec.tune.trial import UNFINISHED, SweepContext, run_trial

if TYPE_CHECKING:
    from raycodec.train.plan import JobPlan

SPEC_FILE = "sweep.yaml"
PBT_MIN_KEEP = 4  # Tune checkpoints kept per PBT trial at least (see _tuner)
DRIVER_CPU = 0.1  # a trial's own actor only waits on its TorchTrainer ({"cpu": 0} is rejected)


@dataclass
class SweepResult:
    """What a sweep produced: its rows (best first), best trial, folder and report files."""

    sweep_dir: str
    aim_repo: str
    rows: list[TrialRow]
    best: TrialRow | None
    context: SweepContext | None = None
    paths: dict[str, str] = field(default_factory=dict)
    interrupted: bool = False


def cluster_fit(cfg: DictConfig, available: dict) -> int:
    """How many trials run at once: every trial's workers fit, and 1 CPU stays for Ray Data."""
    from raycodec.train.inputs import worker_range
    from raycodec.train.plan import worker_resources

    per_worker = worker_resources(cfg)
    workers = worker_range(cfg)[1]  # an elastic trial may grow to its MAX
    fits = []
    for key, amount in per_worker.items():
        need = amount * workers + (DRIVER_CPU if key == "CPU" else 0.0)
        have = available.get(key, 0.0) - (1.0 if key == "CPU" else 0.0)
        fits.append(math.floor(have / need + 1e-9) if need > 0 else 10**6)
    return max(1, min(fits))


def _check_saved_spec(sweep_dir: str, spec: SweepSpec, resume: bool) -> None:
    """A sweep folder is continued only with --resume, and only with the same sweep settings."""
    from ray import tune

    saved_path = os.path.join(sweep_dir, SPEC_FILE)
    exists = tune.Tuner.can_restore(sweep_dir)
    if exists and not resume:
        raise SweepError(f"sweep {spec.name!r} already exists in {sweep_dir}: pass --resume to "
                         "continue it (or to rebuild its report), or name a new sweep with "
                         "sweep.name=NEW")
    if not exists or not os.path.exists(saved_path):
        return
    saved = yaml.safe_load(open(saved_path))
    current = spec.to_dict()
    changed = sorted(k for k in set(saved) | set(current)
                     if k not in ("source",) and saved.get(k) != current.get(k))
    if changed:
        raise SweepError(f"--resume: the sweep settings differ from those saved in {saved_path} "
                         f"({', '.join(changed)}); resume with the same sweep file and "
                         "overrides, or name a new sweep with sweep.name=NEW")


def _tuner(spec: SweepSpec, context: SweepContext, plan: JobPlan, storage: str,
           concurrency: int, callbacks: list):
    """A new Tuner: search algorithm, ASHA, concurrency, status callback."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search.basic_variant import BasicVariantGenerator

    grid = spec.algorithm == "grid"
    if spec.algorithm == "optuna":
        from ray.tune.search.optuna import OptunaSearch

        search_alg, limit = OptunaSearch(seed=spec.seed), concurrency  # Tune wraps a limiter
    else:  # Tune ignores max_concurrent_trials for a generator instance: set it here
        search_alg = BasicVariantGenerator(random_state=spec.seed, max_concurrent=concurrency)
        limit = None
    scheduler = (ASHAScheduler(time_attr="epoch", max_t=spec.max_t,
                               grace_period=spec.grace_period,
                               reduction_factor=spec.reduction_factor)
                 if spec.scheduler == "asha" else FIFOScheduler())
    extra = {}
    if spec.population_based:
        import random

        from raycodec.tune.pbt import build_scheduler

        random.seed(spec.seed)  # Tune's explore and exploit draw from Python's `random`
        scheduler = build_scheduler(spec)
        # An exploit restores the source trial's checkpoint once the worse trial has restarted
        # (a Train start-up, ~15 s); a source with short epochs reports on meanwhile, and with
        # 2 kept its checkpoint was already gone ("does not exist on storage anymore"). 4 cover
        # a restart that spans 3 more reports of the source.
        keep = plan.cfg.checkpoint.keep_last
        extra = dict(stop={"epoch": spec.max_t}, checkpoint_config=tune.CheckpointConfig(
            num_to_keep=None if keep is None else max(PBT_MIN_KEEP, keep)))
    return tune.Tuner(
        _trainable(context, plan),
        param_space={p.key: p.domain(grid=grid) for p in spec.params},
        # metric/mode here, not in the scheduler: Tune rejects both, and searchers need them.
        tune_config=tune.TuneConfig(metric=spec.metric, mode=spec.mode, search_alg=search_alg,
                                    scheduler=scheduler, num_samples=spec.num_samples,
                                    max_concurrent_trials=limit),
        run_config=tune.RunConfig(name=spec.name, storage_path=storage, verbose=1,
                                  callbacks=[AimStatusCallback(context), *callbacks],
                                  **extra),
    )


def _trainable(context: SweepContext, plan: JobPlan):
    from ray import tune

    from raycodec.tune.pbt import run_pbt_trial

    function = run_pbt_trial if context.spec.population_based else run_trial
    # with_parameters puts the plan (manifest tables included) in the object store once.
    return tune.with_resources(tune.with_parameters(function, context=context, plan=plan),
                               {"cpu": DRIVER_CPU})


def run_sweep(spec: SweepSpec, resume: bool = False, callbacks: list | None = None) -> SweepResult:
    """Run (or with `resume`, continue) a sweep; returns its ranked trials and report files.

    Raises SweepError / JobError (ValueErrors) on bad input before any trial starts.
    """
    import ray
    from ray import tune

    from raycodec.train.plan import prepare

    cfg, sweep_dir = spec.cfg, spec.sweep_dir
    _check_saved_spec(sweep_dir, spec, resume)
    # The job's own preflight, once for all trials: data scanned into sweep_dir and read,
    # cluster checked, `continue_from` read, checked and put in the object store.
    plan = prepare(cfg, sweep_dir=sweep_dir)
    context = SweepContext(spec, sweep_dir, plan.run.aim_repo)
    with open(os.path.join(sweep_dir, SPEC_FILE), "w") as f:
        yaml.safe_dump(spec.to_dict(), f, sort_keys=False)
    concurrency = spec.max_concurrent_trials or cluster_fit(cfg, ray.cluster_resources())

    if tune.Tuner.can_restore(sweep_dir):
        print(f"[raycodec] resuming sweep {spec.name} from {sweep_dir}", flush=True)
        # Finished and errored trials stay as they are; unfinished ones run again and their
        # Train runs (named by trial id) resume from their last checkpoint.
        tuner = tune.Tuner.restore(sweep_dir, _trainable(context, plan),
                                   resume_unfinished=True)
    else:
        print(f"[raycodec] sweep {spec.name}: {spec.num_samples} sample(s), {spec.algorithm} "
              f"search, {spec.scheduler} on {spec.metric} ({spec.mode}), up to {concurrency} "
              f"trial(s) at once -> {sweep_dir}", flush=True)
        for note in spec.notes:
            print(f"[raycodec] {note}", flush=True)
        tuner = _tuner(spec, context, plan, plan.run.storage_path, concurrency,
                       list(callbacks or []))
    tuner.fit()
    return finish(sweep_dir, context, spec.expected_trials())


def finish(sweep_dir: str, context: SweepContext, expected: int = 0) -> SweepResult:
    """Rank the trials, write the reports and make every finished trial's Aim status final.

    The sweep counts as interrupted while a trial is unfinished or fewer than `expected` exist
    (trials are created lazily, as concurrency allows).
    """
    rows = collect(sweep_dir, context)
    known = written_statuses(context)
    for row in rows:
        if row.status != UNFINISHED and known.get(row.trial_id) != row.status:
            set_status(context, row.trial_id, row.status, row.sampled)
    paths = write_reports(sweep_dir, rows, context)
    return SweepResult(sweep_dir, context.aim_repo, rows, best_row(rows), context, paths,
                       interrupted=len(rows) < expected
                       or any(r.status == UNFINISHED for r in rows))


def summary(result: SweepResult) -> str:
    """The printed end of a sweep: table, errors, files, best config and the Aim command."""
    context = result.context
    spec = context.spec
    header, cells = table(result.rows, context)
    lines = [f"\n[raycodec] sweep {spec.name}: {len(result.rows)} trial(s), ranked by the "
             f"last {spec.metric} ({spec.mode})", format_table(header, cells)]
    lines += [f"errored {r.trial_id}: {r.error}" for r in result.rows if r.error]
    if result.interrupted:
        lines.append("the sweep was interrupted: continue it with the same command and --resume")
    lines += [f"{kind}: {path}" for kind, path in result.paths.items()]
    if result.best is not None:
        lines.append(f"train the best config: python experiments/train.py --config "
                     f"{result.paths['best_config']}")
    lines.append(f"Aim (runs of experiment {spec.name!r}, group by hparams.*): "
                 f"aim up --repo {result.aim_repo}")
    return "\n".join(lines)
