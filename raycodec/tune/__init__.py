"""Hyperparameter sweeps: Ray Tune + ASHA over training configs, every trial an Aim run."""

from raycodec.tune.runner import SweepResult, cluster_fit, finish, run_sweep, summary
from raycodec.tune.space import Param, SweepError, parse_param, parse_space
from raycodec.tune.spec import SweepSpec, load_sweep, trial_config

__all__ = [
    "Param",
    "SweepError",
    "SweepResult",
    "SweepSpec",
    "cluster_fit",
    "finish",
    "load_sweep",
    "parse_param",
    "parse_space",
    "run_sweep",
    "summary",
    "trial_config",
]
