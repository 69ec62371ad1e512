"""Export a raycodec model: the `encodec` package's format, or an audiocraft checkpoint.

The `encodec` format is a plain state dict, usable by `encodec` users as::

    model = EncodecModel.encodec_model_24khz(pretrained=False)
    model.load_state_dict(torch.load("model.th"))

The audiocraft format (any architecture) is the layout of audiocraft's compression solver:
`best_state['model']` (the evaluation weights), and when the source has them `adv_losses`
(discriminators and their optimizers) and `ema`; `continue_from` and every command read it back.
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
    return {_rename(key): value.detach().cpu().clone() for key, value in state.items()}


def audiocraft_state(codec: LoadedCodec) -> dict:
    """audiocraft's compression checkpoint layout of `codec` (and its source's training parts)."""
    state = {"best_state": {"model": export_state(codec.model.state_dict())}}
    source = codec.extra.get("source")
    parts = source.parts if source is not None else {}
    if "adv_losses" in parts:  # `<name>.adversary.*` weights and `<name>.optimizer`
        state["adv_losses"] = {_rename(k): v if k.endswith(".optimizer") else v.detach().cpu()
                               for k, v in parts["adv_losses"].items()}
    if "ema" in parts:
        ema = parts["ema"]
        state["ema"] = {"state": {"model": export_state(ema["state"]["model"])},
                        "count": ema.get("count", 0.0)}
    return state


def _rename(key: str) -> str:
    for pattern, repl in _EXPORT_RENAMES:
        key = pattern.sub(repl, key)
    return key


def export_codec(codec: LoadedCodec, dst: str | Path, fmt: str = "encodec") -> tuple[str, str]:
    """Write `codec` to `dst` in format `fmt` (encodec | audiocraft); returns (what was written:
    the package preset or 'audiocraft', sha256 prefix).

    Raises ValueError when the `encodec` format is asked for an architecture that matches no
    `encodec` package preset.
    """
    if fmt == "audiocraft":
        state, written = audiocraft_state(codec), "audiocraft"
    elif fmt == "encodec":
        written = matching_package_preset(codec.settings)
        if written is None:
            raise ValueError(f"the model (preset {codec.preset!r} with overrides) matches no "
                             f"`encodec` package architecture ({', '.join(PACKAGE_PRESETS)}); "
                             "--format audiocraft exports any architecture")
        state = export_state(codec.model.state_dict())
    else:
        raise ValueError(f"unknown export format {fmt!r}; expected encodec or audiocraft")
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, dst)
    digest = hashlib.sha256(dst.read_bytes()).hexdigest()[:8]
    return written, digest
