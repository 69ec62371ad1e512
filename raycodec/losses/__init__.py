"""Reconstruction losses and the loss balancer (audiocraft names, defaults and formulas)."""

from raycodec.losses.balancer import Balancer
from raycodec.losses.builders import (
    AUX_LOSSES,
    L1Loss,
    L2Loss,
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
    "Balancer",
    "L1Loss",
    "L2Loss",
    "MRSTFTLoss",
    "MelSpectrogramL1Loss",
    "MelSpectrogramWrapper",
    "MultiScaleMelSpectrogramLoss",
    "SISNR",
    "build_aux_losses",
    "build_loss",
]
