"""The training job end to end on the shared local Ray: TorchTrainer, checkpoints, Aim, resume."""

from pathlib import Path

import pytest
import torch

from raycodec.config import load_config
from raycodec.data import generate_collection
from raycodec.train.checkpoint import latest_checkpoint_meta, load_checkpoint
from raycodec.train.job import JobError, check_cluster, train
from tests.tracking.test_aim_tracker import reindex


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("audio")
    generate_collection(out, minutes=0.5, seed=0, max_duration=6.0)
    return out


def _cfg(audio_dir, storage, *extra):
    return load_config("debug", [f"dataset.path={audio_dir}", f"ray.storage_path={storage}",
                                 "tracking.audio_every=1", *extra])


def _final_model(result_or_dir) -> dict:
    path = result_or_dir.checkpoint.path if hasattr(result_or_dir, "checkpoint") else result_or_dir
    return load_checkpoint(path)["solver"]["model"]


def test_two_worker_run_reports_checkpoints_and_tracks(ray_local, audio_dir, tmp_path):
    from aim import Repo
    from aim.storage.context import Context

    cfg = _cfg(audio_dir, tmp_path / "results")
    result = train(cfg)
    assert result.error is None
    metrics = result.metrics
    assert metrics["epoch"] == 2 and metrics["step"] == 16
    for key in ("train_g_loss", "train_d_loss", "train_msspec", "valid_sisnr", "valid_mel",
                "valid_msspec", "valid_adv_msstftd", "valid_si_snr_db", "valid_si_snr_db_6kbps",
                "valid_mel_6kbps", "valid_codebook_usage_24kbps"):
        assert key in metrics and metrics[key] == metrics[key], key  # present and not NaN
    state = load_checkpoint(result.checkpoint.path)
    assert state["epoch"] == 2 and set(state["solver"]) >= {"model", "optimizer", "adv_losses",
                                                            "balancer", "ema"}
    assert "q_dropout" in "".join(state["rng"])
    run_dir = Path(result.path)
    assert run_dir.name == cfg_signature(cfg) and (run_dir / "config.yaml").exists()

    repo = str(tmp_path / "results" / "aim")
    reindex(repo)
    runs = [r for r in Repo.from_path(repo).iter_runs()]
    assert len(runs) == 1
    run = runs[0]
    assert run.name == run_dir.name and run.experiment == "debug"
    assert run["hparams"]["optim"]["updates_per_epoch"] == 8
    assert len(run.get_metric("g_loss", Context({"subset": "train"})).values.values_list()) == 16
    assert len(run.get_metric("sisnr", Context({"subset": "valid"})).values.values_list()) == 2
    ref = run.get_audio_sequence("audio", Context({"kind": "reference"}))
    assert ref is not None and len(ref.values.values_list()) == 2
    rec = run.get_audio_sequence("audio", Context({"kind": "reconstruction", "bandwidth": 6.0}))
    assert rec is not None


def cfg_signature(cfg):
    from raycodec.config import experiment_signature

    return experiment_signature(cfg)


def test_recovers_from_an_injected_worker_failure(ray_local, audio_dir, tmp_path):
    cfg = _cfg(audio_dir, tmp_path / "results", "debug.fail_at_step=11", "ray.max_failures=1")
    result = train(cfg)
    assert result.error is None and result.metrics["epoch"] == 2
    run_dir = Path(result.path)
    assert (run_dir / "injected_failure.done").read_text() == "11"


def test_resume_after_driver_restart_is_deterministic(ray_local, audio_dir, tmp_path):
    one_worker = ("ray.num_workers=1", "tracking.audio_every=0")
    reference = train(_cfg(audio_dir, tmp_path / "a", *one_worker))
    with pytest.raises(Exception, match="injected failure"):
        train(_cfg(audio_dir, tmp_path / "b", *one_worker, "debug.fail_at_step=12"))
    run_dir = tmp_path / "b" / cfg_signature(_cfg(audio_dir, tmp_path / "b", *one_worker))
    assert latest_checkpoint_meta(run_dir)["epoch"] == 1  # epoch 2 never finished
    resumed = train(_cfg(audio_dir, tmp_path / "b", *one_worker))  # the same command again
    assert resumed.metrics["step"] == 16
    expected, actual = _final_model(reference), _final_model(resumed)
    assert expected.keys() == actual.keys()
    for key in expected:
        assert torch.equal(expected[key], actual[key]), key
    # Running a finished experiment again does nothing and says so.
    assert train(_cfg(audio_dir, tmp_path / "b", *one_worker)) is None


def test_bad_inputs_fail_before_training(ray_local, audio_dir, tmp_path):
    with pytest.raises(JobError, match="no training data"):
        train(load_config("debug", [f"ray.storage_path={tmp_path}"]))
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.wav").write_text("not audio")
    with pytest.raises(JobError, match="no usable audio"):
        train(_cfg(empty, tmp_path / "r1"))
    with pytest.raises(JobError, match="manifest not found"):
        train(load_config("debug", ["dataset.manifest=/nonexistent/m.parquet",
                                    f"ray.storage_path={tmp_path}"]))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(JobError, match="not writable"):
        train(_cfg(audio_dir, tmp_path / "r2", f"tracking.repo={blocker}/aim"))
    cfg = load_config("debug")
    with pytest.raises(JobError, match="no GPU"):
        check_cluster(load_config("debug", ["ray.use_gpu=true"]), {"CPU": 4.0})
    with pytest.raises(JobError, match="cluster has 4"):
        check_cluster(load_config("debug", ["ray.num_workers=8"]), {"CPU": 4.0})
    with pytest.raises(JobError, match="divide evenly"):
        check_cluster(load_config("debug", ["ray.num_workers=3"]), {"CPU": 8.0})
    check_cluster(cfg, {"CPU": 4.0})  # fits


def test_diverging_run_stops_after_ten_skipped_steps(ray_local, audio_dir, tmp_path):
    # lr=inf turns the weights non-finite after the first update; every later step is skipped.
    cfg = _cfg(audio_dir, tmp_path / "r", "ray.num_workers=1", "optim.lr=.inf",
               "optim.updates_per_epoch=12", "tracking.audio_every=0")
    with pytest.raises(Exception, match="10 consecutive steps had non-finite"):
        train(cfg)
