"""The preflight: `prepare` reads each manifest once per job, trials of a sweep read none."""

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from raycodec.config import load_config
from raycodec.data import build_manifest, generate_collection
from raycodec.train.job import build_trainer, train
from raycodec.train.plan import JobError, prepare
from raycodec.tune import load_sweep
from raycodec.tune.trial import SweepContext, trial_run

SWEEP = """
config: debug
overrides: {optim.epochs: 1, optim.updates_per_epoch: 1, dataset.batch_size: 4,
            dataset.valid.num_samples: 4, tracking.audio_every: 0}
search:
  space:
    losses.adv: choice [1.0, 2.0]
resources: {workers: 1, cpus_per_worker: 0.5}
"""


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("audio")
    generate_collection(out, minutes=0.3, seed=0, max_duration=6.0)
    return out


@pytest.fixture()
def reads(monkeypatch):
    """Paths of the Parquet files read in this process, in order (the real reader runs)."""
    seen: list[str] = []
    real = pq.read_table

    def counting(source, *args, **kwargs):
        seen.append(str(source))
        return real(source, *args, **kwargs)

    monkeypatch.setattr(pq, "read_table", counting)
    return seen


def _manifest_reads(reads: list[str]) -> dict[str, int]:
    names = [Path(p).name for p in reads if p.endswith(".parquet")]
    return {name: names.count(name) for name in sorted(set(names))}


def test_a_training_job_reads_its_manifest_once(ray_local, audio_dir, tmp_path, reads):
    cfg = load_config("debug", [f"dataset.path={audio_dir}", f"ray.storage_path={tmp_path}",
                                "ray.num_workers=1", "optim.epochs=1",
                                "optim.updates_per_epoch=2", "dataset.valid.num_samples=4",
                                "tracking.audio_every=0"])
    result = train(cfg)  # scan, checks, datasets, one real epoch on one worker
    assert result.error is None and result.metrics["step"] == 2
    assert _manifest_reads(reads) == {"manifest.parquet": 1}  # was 4: checks x2, datasets x2


def test_evaluation_files_come_from_the_tables_read_once(ray_local, audio_dir, tmp_path, reads):
    build_manifest([audio_dir], out=tmp_path / "m.parquet")
    build_manifest([audio_dir], out=tmp_path / "held_out.parquet")
    reads.clear()
    base = ["dataset.manifest=" + str(tmp_path / "m.parquet"), f"ray.storage_path={tmp_path}",
            "evaluate.every=1", "evaluate.num_files=2"]
    plan = prepare(load_config("debug", base))  # validation = evaluation = the train manifest
    assert plan.valid is plan.train and plan.evaluation is plan.train
    assert plan.eval_paths() == plan.train.table.column("path").to_pylist()[:2]
    other = prepare(load_config("debug", [*base, f"evaluate.manifest={tmp_path}/held_out.parquet"]))
    assert other.evaluation.path.endswith("held_out.parquet") and len(other.eval_paths()) == 2
    assert _manifest_reads(reads) == {"held_out.parquet": 1, "m.parquet": 2}  # once per job
    with pytest.raises(JobError, match="evaluate.manifest not found"):
        prepare(load_config("debug", [*base, "evaluate.manifest=/nonexistent.parquet"]))


def test_sweep_trials_take_the_prepared_tables(ray_local, audio_dir, tmp_path, reads):
    (tmp_path / "s.yaml").write_text(SWEEP)
    spec = load_sweep(str(tmp_path / "s.yaml"),
                      [f"dataset.path={audio_dir}", f"ray.storage_path={tmp_path / 'r'}"])
    plan = prepare(spec.cfg, sweep_dir=spec.sweep_dir)  # what run_sweep does, once
    context = SweepContext(spec, spec.sweep_dir, plan.run.aim_repo)
    assert _manifest_reads(reads) == {"manifest.parquet": 1}
    for i, sampled in enumerate([{"losses.adv": 1.0}, {"losses.adv": 2.0}]):
        cfg = context.trial_config(sampled)  # what run_trial builds
        assert cfg.dataset.manifest == plan.train.path  # the sweep's scan, not a new one
        trial = plan.for_trial(cfg, trial_run(context, cfg, f"t{i}", sampled))
        assert trial.train is plan.train and trial.cfg.losses.adv == sampled["losses.adv"]
        assert build_trainer(trial) is not None
        saved = load_config(str(Path(trial.run.run_dir) / "config.yaml"))
        assert saved == spec.trial_config(sampled)  # the spec's view is what the trial runs
    assert _manifest_reads(reads) == {"manifest.parquet": 1}  # was 1 + 4 per trial
