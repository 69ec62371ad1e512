"""The shipped defaults mirror audiocraft's compression solver and encodec_base_24khz recipe."""

import pytest

from raycodec.config import DEFAULT_CONFIG, available_configs, default_config, load_config
from raycodec.config.schema import KNOWN_PRESETS, NULL_DEFAULT_TYPES, model_overrides

AUDIOCRAFT = {
    "sample_rate": 24000, "channels": 1, "seed": 2036, "label": None,
    "losses.adv": 4.0, "losses.feat": 4.0, "losses.l1": 0.1, "losses.mel": 0.0,
    "losses.msspec": 2.0, "losses.sisnr": 0.0, "losses.mrstft": 0.0, "losses.l2": 0.0,
    "balancer.balance_grads": True, "balancer.total_norm": 1.0, "balancer.ema_decay": 0.999,
    "balancer.per_batch_item": True, "balancer.epsilon": 1e-12,
    "adversarial.every": 1, "adversarial.adversaries": ["msstftd"],
    "adversarial.adv_loss": "hinge", "adversarial.feat_loss": "l1",
    "mrstft.factor_sc": 0.5, "mrstft.factor_mag": 0.5, "mrstft.normalized": False,
    "mel.sample_rate": 24000, "mel.n_fft": 1024, "mel.hop_length": 256, "mel.win_length": 1024,
    "mel.n_mels": 64, "mel.f_min": 64, "mel.f_max": None, "mel.floor_level": 1e-5,
    "sisnr.segment": 5.0, "sisnr.sample_rate": 24000,
    "msspec.range_start": 6, "msspec.range_end": 11, "msspec.n_mels": 64, "msspec.f_min": 64,
    "msspec.normalized": True, "msspec.alphas": False, "msspec.floor_level": 1e-5,
    "msstftd.filters": 32, "msstftd.norm": "weight_norm",
    "msstftd.n_ffts": [1024, 2048, 512, 256, 128], "msstftd.hop_lengths": [256, 512, 128, 64, 32],
    "msstftd.win_lengths": [1024, 2048, 512, 256, 128], "msstftd.activation": "LeakyReLU",
    "msstftd.activation_params": {"negative_slope": 0.3},
    "mpd.periods": [2, 3, 5, 7, 11], "mpd.filters": 8, "mpd.filter_scales": 4,
    "msd.filters": 16, "msd.scale_norms": ["spectral_norm", "weight_norm", "weight_norm"],
    "optim.epochs": 200, "optim.updates_per_epoch": 2000, "optim.lr": 3e-4,
    "optim.optimizer": "adam", "optim.adam.betas": [0.5, 0.9], "optim.adam.weight_decay": 0.0,
    "optim.max_norm": 0.0, "optim.ema.use": True, "optim.ema.updates": 1, "optim.ema.decay": 0.99,
    "dataset.batch_size": 64, "dataset.segment_duration": 1.0, "dataset.min_segment_ratio": 0.5,
    "dataset.valid.num_samples": 10000,
    "model": "audiocraft_base_24khz", "ray.address": None, "ray.use_gpu": False,
    "debug.fail_at_step": None, "autocast": False, "compile": False,
}


def _get(cfg, dotted):
    node = cfg
    for key in dotted.split("."):
        node = node[key]
    return node


@pytest.fixture(scope="module")
def defaults():
    return default_config()


@pytest.mark.parametrize("key", sorted(AUDIOCRAFT))
def test_defaults_match_audiocraft(defaults, key):
    value = _get(defaults, key)
    expected = AUDIOCRAFT[key]
    if hasattr(value, "items") or isinstance(expected, list):
        from omegaconf import OmegaConf

        value = OmegaConf.to_container(value)
    assert value == expected


def test_default_types_are_floats_where_audiocraft_writes_floats():
    cfg = default_config()
    assert isinstance(cfg.losses.adv, float) and isinstance(cfg.optim.lr, float)
    assert isinstance(cfg.dataset.segment_duration, float)


def test_shipped_configs_load():
    assert {"default", "debug", DEFAULT_CONFIG} <= set(available_configs())
    for name in available_configs():
        load_config(name)
    assert load_config(DEFAULT_CONFIG) == default_config() == load_config("default")


def test_debug_config_is_small():
    cfg = load_config("debug")
    assert cfg.model == "debug" and cfg.optim.epochs == 2
    assert cfg.optim.updates_per_epoch <= 20 and cfg.dataset.batch_size <= 16
    assert 0.5 <= cfg.dataset.segment_duration <= 1.0
    assert cfg.ray.num_workers == 2 and cfg.ray.use_gpu is False


def test_model_sections_mirror_presets():
    # Imports torch: keeps the torch-free key tables in sync with the preset registry.
    from raycodec.models.presets import PRESETS, preset_settings

    ref = PRESETS["encodec_24khz"]
    cfg = default_config()
    assert set(cfg.seanet) == set(ref["seanet"]) and set(cfg.rvq) == set(ref["rvq"])
    assert set(cfg.encodec) == set(ref) - {"seanet", "rvq", "sample_rate", "channels"}
    assert set(KNOWN_PRESETS) <= set(PRESETS)
    for section in ("seanet", "rvq"):
        for key, value in ref[section].items():
            kind = NULL_DEFAULT_TYPES[f"{section}.{key}"]
            if value is not None and kind != "dict":
                name = "list" if isinstance(value, list) else type(value).__name__
                # A float key takes the presets' ints too (threshold_ema_dead_code: 2).
                assert kind.startswith(name) or (kind == "float" and name == "int"), \
                    (section, key)
    cfg = load_config("debug", ["seanet.n_filters=8", "rvq.n_q=4"])
    settings = preset_settings(cfg.model, **model_overrides(cfg))
    assert settings["seanet"]["n_filters"] == 8 and settings["seanet"]["dimension"] == 16
    assert settings["rvq"]["n_q"] == 4 and settings["sample_rate"] == 24000
