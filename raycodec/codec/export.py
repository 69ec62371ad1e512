"""Export a raycodec model to the `encodec` package's checkpoint format (a plain state dict).

Usable by `encodec` users as::

    model = EncodecModel.encodec_model_24khz(pretrained=False)
    model.load_state_dict(torch.load("model.th"))
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import torch

from raycodec.codec.loading import LoadedCodec
from raycodec.models import PRESETS

# The inverse of raycodec.models.loading._RENAMES (new parametrized weight norm -> old names).
_EXPORT_RENAMES = [
    (re.compile(r"\.parametrizations\.weight\.original0$"), ".weight_g"),
    (re.compile(r"\.parametrizations\.weight\.original1$"), ".weight_v"),
]
# Settings that change the network or the meaning of its weights; the rest (EMA decay,
# k-means, dead-code threshold, quantizer dropout, target bandwidths) only matter in training.
_ARCH_TOP = ("sample_rate", "channels", "causal", "renormalize", "segment", "overlap")
_ARCH_RVQ = ("n_q", "bins")
PACKAGE_PRESETS = {"encodec_24khz": "encodec_model_24khz", "encodec_48khz": "encodec_model_48khz"}


def _arch(settings: dict) -> tuple:
    return (tuple(settings[k] for k in _ARCH_TOP),
            tuple(sorted((k, str(v)) for k, v in settings["seanet"].items())),
            tuple(settings["rvq"][k] for k in _ARCH_RVQ))


def matching_package_preset(settings: dict) -> str | None:
    """The `encodec` package preset with exactly this architecture, or None."""
    return next((name for name in PACKAGE_PRESETS if _arch(PRESETS[name]) == _arch(settings)),
                None)


def export_state(state: dict) -> dict:
    """raycodec state dict -> `encodec` package names (weight_g/weight_v)."""
    out = {}
    for key, value in state.items():
        for pattern, repl in _EXPORT_RENAMES:
            key = pattern.sub(repl, key)
        out[key] = value.detach().cpu().clone()
    return out


def export_codec(codec: LoadedCodec, dst: str | Path) -> tuple[str, str]:
    """Write the package-format state dict to `dst`; returns (package preset, sha256 prefix).

    Raises ValueError when the architecture matches no `encodec` package preset.
    """
    preset = matching_package_preset(codec.settings)
    if preset is None:
        raise ValueError(f"the model (preset {codec.preset!r} with overrides) matches no "
                         f"`encodec` package architecture ({', '.join(PACKAGE_PRESETS)})")
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    torch.save(export_state(codec.model.state_dict()), dst)
    digest = hashlib.sha256(dst.read_bytes()).hexdigest()[:8]
    return preset, digest
