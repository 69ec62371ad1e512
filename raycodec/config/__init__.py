"""Experiment configs (omegaconf): audiocraft-compatible defaults, validation, identity."""

from raycodec.config.cli import build_parser, parse_train_args
from raycodec.config.identity import EXCLUDED_KEYS, config_diff, experiment_signature
from raycodec.config.loading import (
    DEFAULT_CONFIG,
    available_configs,
    default_config,
    default_dict,
    format_config,
    load_config,
    save_config,
)
from raycodec.config.schema import ConfigError, model_overrides
from raycodec.config.sections import Section, as_dict, check_kwargs

__all__ = [
    "DEFAULT_CONFIG",
    "EXCLUDED_KEYS",
    "ConfigError",
    "Section",
    "as_dict",
    "available_configs",
    "build_parser",
    "check_kwargs",
    "config_diff",
    "default_config",
    "default_dict",
    "experiment_signature",
    "format_config",
    "load_config",
    "model_overrides",
    "parse_train_args",
    "save_config",
]
