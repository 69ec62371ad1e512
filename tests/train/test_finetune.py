"""Fine-tuning with `continue_from`: every checkpoint form, the parts taken, refused mismatches."""

import pytest
import torch

from raycodec.cli import main
from raycodec.config import experiment_signature, load_config
from raycodec.models.loading import map_key
from raycodec.train.checkpoint import STATE_FILE, rng_state, write_training_checkpoint
from raycodec.train.finetune import build_solver, check_init, load_init
from raycodec.train.job import JobError, train
from tests.train.tiny import batch


def _trained(tmp_path):
    """A raycodec run folder whose checkpoint has taken 2 real GAN steps (EMA, D, balancer)."""
    cfg = load_config("debug")
    torch.manual_seed(0)
    step_fn = build_solver(cfg)
    rng = torch.Generator().manual_seed(0)
    for i in range(2):
        step_fn(batch(b=2, t=4800, seed=i), i + 1, rng)
    run = tmp_path / "run"
    write_training_checkpoint(run / "checkpoint_000000", step_fn.state_dict(), 1, 2,
                              rng_state(), cfg_yaml(cfg), "srcsig")
    return run, step_fn


def cfg_yaml(cfg):
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(cfg, resolve=True)


def _equal(a: dict, b: dict):
    a = {map_key(k): v for k, v in a.items()}
    b = {map_key(k): v for k, v in b.items()}
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def _solver(source, *extra):
    cfg = load_config("debug", [f"continue_from={source}", *extra])
    torch.manual_seed(123)  # another init than the source's: equality means "taken"
    return build_solver(cfg, load_init(cfg))


def test_export_then_continue_from_gives_identical_step0_weights(tmp_path):
    run, trained = _trained(tmp_path)
    exported = tmp_path / "exported.th"
    assert main(["export", str(run), str(exported), "--format", "audiocraft"]) == 0
    expected = dict(trained.raw_model.state_dict())
    expected.update(trained.ema.state_dict()["state"]["model"])  # evaluation = EMA weights
    ckpt = run / "checkpoint_000000"
    for source in (exported, run, ckpt, ckpt / STATE_FILE):
        solver = _solver(source)
        _equal(solver.raw_model.state_dict(), expected)
        _equal(solver.adversaries["msstftd"].adversary.state_dict(),
               trained.adversaries["msstftd"].adversary.state_dict())
        d_opt = solver.adversaries["msstftd"].optimizer.state_dict()
        src_opt = trained.adversaries["msstftd"].optimizer.state_dict()
        assert d_opt["state"].keys() == src_opt["state"].keys()
        assert torch.equal(d_opt["state"][0]["exp_avg"], src_opt["state"][0]["exp_avg"])
        _equal(solver.ema.state, trained.ema.state)
        assert solver.ema.count == trained.ema.count
        assert not solver.optimizer.state  # the generator's optimizer starts afresh
    # The balancer EMA comes with a raycodec checkpoint (audiocraft does not save it).
    assert _solver(run).balancer.state_dict() == trained.balancer.state_dict()
    assert _solver(exported).balancer.state_dict() == {"total": {}, "fix": {}}


def test_generator_only_and_new_learning_rate(tmp_path):
    run, trained = _trained(tmp_path)
    fresh = _solver(run, "continue_from_parts=[model]")
    src_d = trained.adversaries["msstftd"].adversary.state_dict()
    new_d = fresh.adversaries["msstftd"].adversary.state_dict()
    assert any(not torch.equal(src_d[k], new_d[k]) for k in src_d)
    assert fresh.ema.count == 0
    solver = _solver(run, "optim.lr=1e-5")
    assert solver.adversaries["msstftd"].optimizer.param_groups[0]["lr"] == 1e-5


def test_audiocraft_layout_written_here_loads(tmp_path):
    from raycodec.adversarial import to_legacy_state_dict
    from raycodec.codec import load_codec
    from raycodec.codec.export import export_state

    _, trained = _trained(tmp_path)
    adv = trained.adversaries["msstftd"]
    adv_losses = {f"msstftd.adversary.{k}": v for k, v in
                  to_legacy_state_dict(adv.adversary).items()}
    adv_losses["msstftd.optimizer"] = adv.optimizer.state_dict()
    legacy_model = export_state(trained.raw_model.state_dict())  # weight_g / weight_v names
    assert any(k.endswith("weight_g") for k in legacy_model)
    path = tmp_path / "audiocraft_checkpoint.th"
    torch.save({"best_state": {"model": legacy_model}, "model": legacy_model,
                "adv_losses": adv_losses, "epoch": 3, "xp.cfg": "{}"}, path)
    codec = load_codec(path, "debug")
    _equal(codec.model.state_dict(), trained.raw_model.state_dict())
    solver = _solver(path)
    _equal(solver.raw_model.state_dict(), trained.raw_model.state_dict())
    _equal(solver.adversaries["msstftd"].adversary.state_dict(), adv.adversary.state_dict())


def test_mismatches_are_refused_before_ray_with_key_names(tmp_path, monkeypatch):
    run, _ = _trained(tmp_path)
    cfg = load_config("debug", [f"continue_from={run}", "seanet.n_filters=8"])
    with pytest.raises(ValueError, match=r"generator checkpoint tensors have the wrong shape: "
                                         r"encoder\.model\.0"):
        check_init(cfg, load_init(cfg))
    cfg = load_config("debug", [f"continue_from={run}", "msstftd.filters=4"])
    with pytest.raises(ValueError, match=r"discriminator msstftd: .*size mismatch"):
        check_init(cfg, load_init(cfg))
    # Through the job: a one-line JobError, and Ray never started. (The session's shared
    # cluster may already be up when other tests ran first, so the test makes ray.init fail.)
    import ray

    def no_ray(*args, **kwargs):
        raise AssertionError("Ray was started before the continue_from check")

    monkeypatch.setattr(ray, "init", no_ray)
    with pytest.raises(JobError, match="continue_from .* wrong shape"):
        train(load_config("debug", [f"continue_from={run}", "seanet.n_filters=8",
                                    f"ray.storage_path={tmp_path / 'r'}", "dataset.path=x"]))
    with pytest.raises(JobError, match="continue_from: checkpoint not found"):
        train(load_config("debug", [f"continue_from={tmp_path / 'nope'}"]))


def test_source_content_is_part_of_the_signature(tmp_path):
    run, _ = _trained(tmp_path)
    cfg = load_config("debug", [f"continue_from={run}"])
    with pytest.raises(ValueError, match="source_digest"):
        experiment_signature(cfg)
    a = experiment_signature(cfg, load_init(cfg).digest)
    moved = tmp_path / "copy"
    import shutil

    shutil.copytree(run, moved)
    same = load_config("debug", [f"continue_from={moved}"])
    assert experiment_signature(same, load_init(same).digest) == a  # the content, not the path
    torch.manual_seed(5)
    other_solver = build_solver(load_config("debug"))
    write_training_checkpoint(moved / "checkpoint_000000", other_solver.state_dict(), 1, 2,
                              rng_state(), cfg_yaml(load_config("debug")), "x")
    assert experiment_signature(same, load_init(same).digest) != a
    assert experiment_signature(load_config("debug")) != a


def test_finetuning_job_runs_and_evaluates_in_the_background(ray_local, tmp_path):
    from aim import Repo
    from aim.storage.context import Context

    from raycodec.data import generate_collection
    from tests.tracking.test_aim_tracker import reindex

    run, _ = _trained(tmp_path)
    exported = tmp_path / "exported.th"
    assert main(["export", str(run), str(exported), "--format", "audiocraft"]) == 0
    audio = tmp_path / "audio"
    generate_collection(audio, minutes=0.2, seed=0, max_duration=4.0)
    cfg = load_config("debug", [f"continue_from={exported}", f"dataset.path={audio}",
                                f"ray.storage_path={tmp_path / 'results'}", "ray.num_workers=1",
                                "optim.epochs=1", "tracking.audio_every=0", "evaluate.every=1",
                                "evaluate.num_files=1", "dataset.evaluate.bandwidths=[6]"])
    result = train(cfg)
    assert result.error is None and result.metrics["step"] == 8
    assert result.metrics["valid_si_snr_db_6kbps"] == result.metrics["valid_si_snr_db_6kbps"]
    assert train(cfg) is None  # the same command again: finished, resuming wins
    repo = str(tmp_path / "results" / "aim")
    reindex(repo)
    (aim_run,) = list(Repo.from_path(repo).iter_runs())
    evaluated = aim_run.get_metric("stoi_6kbps", Context({"subset": "evaluate"}))
    assert evaluated is not None and len(evaluated.values.values_list()) == 1
    assert aim_run.get_metric("bandwidth_6kbps", Context({"subset": "valid"})) is None
