"""One name, one meaning: every metric of train, valid, evaluate and Aim has one definition."""

from pathlib import Path

import pytest
import torch

from raycodec.config import load_config
from raycodec.evaluate.evaluator import clip_metrics
from raycodec.tracking.names import (
    EVALUATE,
    METRICS,
    TRAIN,
    VALID,
    lookup,
    markdown_table,
    metric_key,
    parse_metric_key,
)
from raycodec.train.finetune import build_solver
from raycodec.train.validation import Validator, full_bandwidth
from tests.train.tiny import batch


@pytest.fixture(scope="module")
def logged():
    """The metrics one real training step, validation and clip evaluation produce."""
    torch.manual_seed(0)
    step_fn = build_solver(load_config("debug"))
    train = step_fn(batch(b=2, t=4800), 1, torch.Generator().manual_seed(0))
    model = step_fn.raw_model.eval()
    x = batch(b=1, t=12000, seed=3)
    valid = Validator.from_step(step_fn, [3.0, 6.0], torch.device("cpu"))(model, [x])
    evaluate = {metric_key(k, 6.0): v for k, v in clip_metrics(model, x[0], 6.0).items()
                if v is not None}
    return step_fn, model, x, {TRAIN: train, VALID: valid, EVALUATE: evaluate}


def test_every_logged_key_has_one_definition_for_its_subset(logged):
    *_, subsets = logged
    for subset, metrics in subsets.items():
        for key in metrics:
            assert subset in lookup(key).subsets, (subset, key)
    assert "bandwidth_6kbps" not in subsets[VALID]  # a constant is not a curve
    with pytest.raises(KeyError):
        lookup("bandwidth_6kbps")
    names = [m.name for m in METRICS]
    assert len(names) == len(set(names))


def test_shared_names_are_computed_the_same_way(logged):
    step_fn, model, x, subsets = logged
    valid = subsets[VALID]
    model.set_target_bandwidth(full_bandwidth(model))
    with torch.no_grad():
        y = model(x).x
        for name in ("sisnr", "mel", "msspec", "l1"):  # the training step's own criteria
            criterion = {**step_fn.aux_losses, **step_fn.info_losses}[name]
            assert valid[name] == pytest.approx(float(criterion(y, x)), rel=1e-5), name
        adv, _ = step_fn.adversaries["msstftd"](y, x)
        assert valid["adv_msstftd"] == pytest.approx(float(adv), rel=1e-5)
    # audiocraft's `sisnr` is the loss, `si_snr_db` the ratio: opposite signs, nearly the same
    # magnitude (audiocraft's epsilon grows with `sisnr.segment`: hence two names).
    assert valid["sisnr"] * valid["si_snr_db"] < 0
    assert -valid["sisnr"] == pytest.approx(valid["si_snr_db"], abs=1.0)
    # Validation and evaluation measure si_snr_db identically.
    assert valid["si_snr_db_6kbps"] == pytest.approx(subsets[EVALUATE]["si_snr_db_6kbps"],
                                                     abs=1e-4)


def test_aim_holds_the_same_names(logged, tmp_path):
    from aim import Repo

    from raycodec.tracking import AimTracker
    from tests.tracking.test_aim_tracker import reindex

    *_, subsets = logged
    tracker = AimTracker(str(tmp_path / "aim"), "names", "sig")
    for subset, metrics in subsets.items():
        tracker.log_metrics(metrics, step=1, subset=subset)
    tracker.close()
    reindex(str(tmp_path / "aim"))
    (run,) = list(Repo.from_path(str(tmp_path / "aim")).iter_runs())
    seen = {(m.name, m.context["subset"]) for m in run.metrics()}
    assert seen == {(k, s) for s, metrics in subsets.items() for k in metrics}
    for name, subset in seen:
        assert subset in lookup(name).subsets


def test_keys_parse_and_tune_modes():
    from raycodec.tune.spec import VALID_METRICS

    assert metric_key("mel", 6) == "mel_6kbps" and metric_key("mel", 1.5) == "mel_1.5kbps"
    assert parse_metric_key("si_snr_db_1.5kbps") == ("si_snr_db", 1.5)
    assert parse_metric_key("codebook_usage_q3") == ("codebook_usage_q3", None)
    assert VALID_METRICS["sisnr"] == "min" and VALID_METRICS["si_snr_db"] == "max"
    assert lookup("adv_mpd").name == "adv_<adversary>"
    assert lookup("codebook_usage_q2_6kbps").name == "codebook_usage"


def test_readme_table_is_the_registry():
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert markdown_table() in readme
