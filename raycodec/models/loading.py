"""Load `encodec` package and audiocraft checkpoints into raycodec models."""

from __future__ import annotations

import os
import re

import torch

from raycodec.models.encodec import EncodecModel
from raycodec.models.presets import build_model

# Old-style weight norm and audiocraft's codebook flag -> raycodec's names.
_RENAMES = [
    (re.compile(r"\.weight_g$"), ".parametrizations.weight.original0"),
    (re.compile(r"\.weight_v$"), ".parametrizations.weight.original1"),
    (re.compile(r"\._codebook\.initialized$"), "._codebook.inited"),
]


def map_key(key: str) -> str:
    """An `encodec`/audiocraft state dict key in raycodec's naming (new-style weight norm)."""
    for pattern, repl in _RENAMES:
        key = pattern.sub(repl, key)
    return key


def _extract_model_state(obj) -> dict:
    if not isinstance(obj, dict):
        raise ValueError(f"expected a checkpoint dict, got {type(obj).__name__}")
    # audiocraft compression checkpoints keep the model under best_state['model'].
    best = obj.get("best_state")
    if isinstance(best, dict) and isinstance(best.get("model"), dict):
        return best["model"]
    if isinstance(obj.get("model"), dict):
        return obj["model"]
    return obj


def _summarise(keys: list[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def load_encodec_state(model: EncodecModel, state: dict) -> None:
    """Load a state dict in encodec/audiocraft naming into `model`, checking every key."""
    mapped = {map_key(k): v for k, v in state.items()}
    expected = model.state_dict()
    missing = sorted(set(expected) - set(mapped))
    unexpected = sorted(set(mapped) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys: {_summarise(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {_summarise(unexpected)}")
        raise ValueError("checkpoint does not match the model (" + "; ".join(parts) + ")")
    wrong = [f"{k} {tuple(v.shape)} (expected {tuple(expected[k].shape)})"
             for k, v in mapped.items() if v.shape != expected[k].shape]
    if wrong:
        raise ValueError(f"checkpoint tensors have the wrong shape: {_summarise(wrong)}")
    model.load_state_dict(mapped)


def load_encodec_checkpoint(path_or_state_dict, preset: str = "encodec_24khz",
                            **overrides) -> EncodecModel:
    """Build `preset` and load an `encodec` package or audiocraft checkpoint into it."""
    if isinstance(path_or_state_dict, (str, os.PathLike)):
        try:
            obj = torch.load(path_or_state_dict, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise ValueError(f"checkpoint not found: {path_or_state_dict}") from None
        except Exception as exc:  # pickle errors, zip errors, disallowed globals
            raise ValueError(f"cannot read checkpoint {path_or_state_dict}: {exc}") from exc
    else:
        obj = path_or_state_dict
    model = build_model(preset, **overrides)
    load_encodec_state(model, _extract_model_state(obj))
    return model.eval()
