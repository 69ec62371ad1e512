"""Loading: YAML files and dotlist overrides, validation errors, printing and saving."""

import pytest

from raycodec.config import ConfigError, format_config, load_config, save_config


def test_yaml_file_then_overrides(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("optim:\n  lr: 1.0e-3\n  epochs: 3\nseanet:\n  n_filters: 16\n")
    cfg = load_config(str(path), ["optim.epochs=5", "dataset.batch_size=32", "label=run2"])
    assert cfg.optim.lr == 1e-3 and cfg.optim.epochs == 5 and cfg.dataset.batch_size == 32
    assert cfg.seanet.n_filters == 16 and cfg.label == "run2"
    assert cfg.optim.adam.betas == [0.5, 0.9]  # untouched defaults survive the merge


def test_overrides_on_shipped_config():
    cfg = load_config("debug", ["optim.epochs=3", "adversarial.adversaries=[msstftd,mpd]"])
    assert cfg.optim.epochs == 3 and list(cfg.adversarial.adversaries) == ["msstftd", "mpd"]
    assert cfg.model == "debug"


def test_interpolations_follow_sample_rate():
    cfg = load_config(None, ["sample_rate=16000"])
    assert cfg.mel.sample_rate == cfg.msspec.sample_rate == cfg.sisnr.sample_rate == 16000


@pytest.mark.parametrize("override, message", [
    ("optim.lrr=1e-3", "unknown key 'optim.lrr'; did you mean optim.lr?"),
    ("lr=1e-3", "unknown key 'lr'; did you mean optim.lr?"),
    ("optm.lr=1e-3", "unknown key 'optm.lr'; did you mean optim.lr?"),
    ("dataset.valid.num_sample=10", "did you mean dataset.valid.num_samples?"),
    ("seanet.dimensoin=8", "did you mean seanet.dimension?"),
])
def test_unknown_key_names_it_and_suggests(override, message):
    with pytest.raises(ConfigError, match="unknown key") as err:
        load_config(None, [override])
    assert message in str(err.value)


def test_unknown_key_in_file_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("balancer:\n  totl_norm: 2.0\n")
    with pytest.raises(ConfigError) as err:
        load_config(str(path))
    assert "'balancer.totl_norm'" in str(err.value) and str(path) in str(err.value)
    assert "balancer.total_norm" in str(err.value)


@pytest.mark.parametrize("override, key, kind", [
    ("optim.lr=fast", "optim.lr", "float"),
    ("optim.epochs=2.5", "optim.epochs", "int"),
    ("autocast=maybe", "autocast", "bool"),
    ("dataset.batch_size=[1]", "dataset.batch_size", "int"),
    ("optim.adam.betas=[0.5,x]", "optim.adam.betas", "list[float]"),
    ("seanet.dimension=big", "seanet.dimension", "int"),
    ("rvq.q_dropout=3", "rvq.q_dropout", "bool"),
    ("optim=3", "optim", "dict"),
    ("optim.lr=null", "optim.lr", "float"),
])
def test_wrong_type_names_key_type_and_value(override, key, kind):
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    msg = str(err.value)
    assert f"'{key}'" in msg and f"expected {kind}" in msg and override.split("=")[1][:3] in msg


def test_ints_widen_to_floats_and_nullable_keys():
    cfg = load_config(None, ["optim.lr=1", "optim.ema.decay=null", "seanet.ratios=[4,4,2]"])
    assert cfg.optim.lr == 1.0 and isinstance(cfg.optim.lr, float)
    assert cfg.optim.ema.decay is None and list(cfg.seanet.ratios) == [4, 4, 2]


def test_bad_choices_and_presets():
    with pytest.raises(ConfigError, match="did you mean hinge"):
        load_config(None, ["adversarial.adv_loss=hinje"])
    with pytest.raises(ConfigError, match="did you mean msstftd"):
        load_config(None, ["adversarial.adversaries=[msstfd]"])
    with pytest.raises(ConfigError, match="unknown model preset 'debg'.*debug"):
        load_config(None, ["model=debg"])


def test_free_form_sections_accept_new_keys():
    cfg = load_config(None, ["msstftd.activation_params.alpha=1.0",
                             "ray.resources_per_worker={CPU: 4, GPU: 1}"])
    assert cfg.msstftd.activation_params.alpha == 1.0 and cfg.ray.resources_per_worker.GPU == 1


@pytest.mark.parametrize("args, match", [
    (("debg",), "unknown config 'debg'; did you mean debug"),
    (("missing.yaml",), "not found"),
    ((None, ["no_equals_sign"]), "key=value"),
])
def test_bad_names_files_and_overrides(args, match):
    with pytest.raises(ConfigError, match=match):
        load_config(*args)


def test_non_mapping_file(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(str(path))


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


def test_returned_config_rejects_unknown_attributes():
    cfg = load_config("debug")
    with pytest.raises(Exception, match="lrr"):
        _ = cfg.optim.lrr


def test_format_and_save_round_trip(tmp_path):
    cfg = load_config("debug", ["optim.lr=1e-3", "label=x"])
    text = format_config(cfg)
    assert "optim:" in text and "lr: 0.001" in text and "${" not in text
    path = save_config(cfg, tmp_path / "sub" / "config.yaml")
    assert load_config(str(path)) == cfg


@pytest.mark.parametrize("value", ["0", "-1.0"])
def test_zero_total_norm_is_rejected_not_turned_into_one(value):
    # audiocraft's `total_norm or 1.` would silently train with 1.
    with pytest.raises(ConfigError, match="'balancer.total_norm': expected a number > 0"):
        load_config(None, [f"balancer.total_norm={value}"])
    assert load_config(None, ["balancer.total_norm=0.5"]).balancer.total_norm == 0.5
