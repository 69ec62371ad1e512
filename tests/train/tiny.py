"""A tiny real model + config shared by the step tests (fast on 2 CPU cores)."""

import torch
from omegaconf import DictConfig, OmegaConf

from raycodec.config import default_dict
from raycodec.models import build_model

SR = 24000

# Small discriminator and msspec range; everything else is audiocraft's default config.
TINY_CFG = {
    "msstftd": {"filters": 4, "n_ffts": [256, 128], "hop_lengths": [64, 32],
                "win_lengths": [256, 128]},
    "msspec": {"range_start": 6, "range_end": 9},
    "losses": {"sisnr": 0.0, "mel": 0.0},
}


def tiny_cfg(*overrides: dict) -> DictConfig:
    """The complete default config with TINY_CFG, then `overrides`, merged on top (no key checks,
    so that tests can hand the builders bad keys)."""
    return OmegaConf.merge(default_dict(), TINY_CFG, *overrides)


def tiny_model(**overrides):
    """build_model("debug") with 4 small codebooks; no k-means (its first call is slow)."""
    kwargs = {"n_q": 4, "bins": 64, "kmeans_init": False, **overrides}
    return build_model("debug", **kwargs)


def batch(b=2, t=2400, seed=0):
    g = torch.Generator().manual_seed(seed)
    return 0.1 * torch.randn(b, 1, t, generator=g)
