"""Training step (GAN + balancer + EMA), DDP helpers and its builder."""

from raycodec.train.builders import (
    build_step,
    compile_modules,
    resolve_device,
)
from raycodec.train.ema import ModelEMA
from raycodec.train.step import GANStep, PhaseTimer, average_metrics, to_floats

__all__ = [
    "GANStep",
    "ModelEMA",
    "PhaseTimer",
    "average_metrics",
    "build_step",
    "compile_modules",
    "resolve_device",
    "to_floats",
]
