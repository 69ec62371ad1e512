"""Reconstruction losses and the loss balancer (audiocraft names, defaults and formulas)."""

from raycodec.losses.balancer import Balancer
from raycodec.losses.builders import (
    AUX_LOSSES,
    DEFAULT_LOSS_KWARGS,
    DEFAULT_LOSS_WEIGHTS,
    L1Loss,
    L2Loss,
    as_dict,
    build_aux_losses,
    build_loss,
)
from raycodec.losses.sisnr import SISNR
from raycodec.losses.spectral import (
    MelSpectrogramL1Loss,
    MelSpectrogramWrapper,
    MRSTFTLoss,
    MultiScaleMelSpectrogramLoss,
)

__all__ = [
    "AUX_LOSSES",
    "DEFAULT_LOSS_KWARGS",
    "DEFAULT_LOSS_WEIGHTS",
    "Balancer",
    "L1Loss",
    "L2Loss",
    "MRSTFTLoss",
    "MelSpectrogramL1Loss",
    "MelSpectrogramWrapper",
    "MultiScaleMelSpectrogramLoss",
    "SISNR",
    "as_dict",
    "build_aux_losses",
    "build_loss",
]
