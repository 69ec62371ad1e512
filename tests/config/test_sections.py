"""Builders take complete config sections: no defaults of their own, clear errors on gaps."""

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from raycodec.adversarial import build_adversaries, build_optimizer
from raycodec.config import ConfigError, Section, as_dict, check_kwargs, default_dict, load_config


def test_section_is_a_plain_dict_that_names_missing_keys():
    cfg = Section(load_config(None, ["optim.lr=1e-4"]))
    assert type(cfg["optim"]["adam"]) is Section and isinstance(cfg["optim"], dict)
    assert cfg["optim"]["lr"] == 1e-4 and cfg["mel"]["sample_rate"] == 24000  # resolved
    with pytest.raises(ConfigError, match="config lacks 'optim.ema.decays'"):
        cfg["optim"]["ema"]["decays"]
    assert as_dict(OmegaConf.create({"a": {"b": 1}})) == {"a": {"b": 1}} and as_dict(None) == {}
    with pytest.raises(ValueError, match="expected a mapping"):
        as_dict([1, 2])


def test_check_kwargs_names_the_accepted_keys():
    check_kwargs(nn.Linear, {"in_features": 2, "bias": False}, "linear")
    with pytest.raises(ValueError, match=r"linear: unknown keys \['biass'\]; .*'bias'"):
        check_kwargs(nn.Linear, {"biass": False}, "linear")


def test_builders_take_the_yaml_values_and_fill_in_nothing():
    cfg = load_config(None, ["optim.adam.betas=[0.8,0.95]", "msstftd.filters=4",
                             "msstftd.n_ffts=[256]", "msstftd.hop_lengths=[64]",
                             "msstftd.win_lengths=[256]"])
    adversary = build_adversaries(cfg)["msstftd"]
    assert adversary.optimizer.param_groups[0]["betas"] == (0.8, 0.95)
    assert adversary.adversary.num_discriminators == 1
    partial = {"optimizer": "adam", "lr": 1e-3}  # no `adam` section: not silently Adam's betas
    with pytest.raises(ConfigError, match="config lacks 'optim.adam'"):
        build_optimizer([nn.Parameter(torch.zeros(1))], partial)
    gap = default_dict()
    del gap["adversarial"]["normalize"]
    with pytest.raises(ConfigError, match="config lacks 'adversarial.normalize'"):
        build_adversaries(gap)
