"""Discriminators (MS-STFT, MPD, MSD), adversarial criteria and `AdversarialLoss`."""

from raycodec.adversarial.builders import (
    ADVERSARIES,
    build_adversaries,
    build_adversary,
    build_optimizer,
)
from raycodec.adversarial.conv import NormConv1d, NormConv2d, to_legacy_state_dict
from raycodec.adversarial.losses import (
    ADV_CRITERIA,
    AdversarialLoss,
    FeatureMatchingLoss,
    readonly,
)
from raycodec.adversarial.msstftd import DiscriminatorSTFT, MultiScaleSTFTDiscriminator
from raycodec.adversarial.waveform import (
    MultiPeriodDiscriminator,
    MultiScaleDiscriminator,
    PeriodDiscriminator,
    ScaleDiscriminator,
)

__all__ = [
    "ADVERSARIES",
    "ADV_CRITERIA",
    "AdversarialLoss",
    "DiscriminatorSTFT",
    "FeatureMatchingLoss",
    "MultiPeriodDiscriminator",
    "MultiScaleDiscriminator",
    "MultiScaleSTFTDiscriminator",
    "NormConv1d",
    "NormConv2d",
    "PeriodDiscriminator",
    "ScaleDiscriminator",
    "build_adversaries",
    "build_adversary",
    "build_optimizer",
    "readonly",
    "to_legacy_state_dict",
]
