"""Named model presets and the builder that turns plain settings into an EncodecModel."""

from __future__ import annotations

import difflib
import inspect
import math
from copy import deepcopy

from raycodec.models.encodec import EncodecModel
from raycodec.models.seanet import SEANetDecoder, SEANetEncoder
from raycodec.quantization import ResidualVectorQuantizer

# Settings are grouped like audiocraft's config sections: top level (`sample_rate`, `channels`,
# `encodec.*`), `seanet.*` and `rvq.*`. Every key is unique across the groups.
_ENCODEC_24KHZ = {
    "sample_rate": 24000, "channels": 1, "causal": True, "renormalize": False,
    "segment": None, "overlap": 0.01, "target_bandwidths": [1.5, 3.0, 6.0, 12.0, 24.0],
    "seanet": {
        "dimension": 128, "n_filters": 32, "n_residual_layers": 1, "ratios": [8, 5, 4, 2],
        "activation": "ELU", "activation_params": {"alpha": 1.0}, "norm": "weight_norm",
        "kernel_size": 7, "residual_kernel_size": 3, "last_kernel_size": 7,
        "dilation_base": 2, "pad_mode": "reflect", "true_skip": False, "compress": 2,
        "lstm": 2, "trim_right_ratio": 1.0, "final_activation": None,
        "final_activation_params": None,
    },
    "rvq": {
        "n_q": 32, "bins": 1024, "decay": 0.99, "kmeans_init": True, "kmeans_iters": 50,
        "threshold_ema_dead_code": 2, "q_dropout": False,
    },
}


def _derive(base: dict, **changes) -> dict:
    preset = deepcopy(base)
    for key, value in changes.items():
        section = next((s for s in ("seanet", "rvq") if key in preset[s]), None)
        (preset[section] if section else preset)[key] = value
    return preset


PRESETS: dict[str, dict] = {
    # The `encodec` package's 24 kHz model (encodec_model_24khz).
    "encodec_24khz": _ENCODEC_24KHZ,
    # The `encodec` package's 48 kHz stereo model: non-causal, group norm, 1 s segments.
    "encodec_48khz": _derive(_ENCODEC_24KHZ, sample_rate=48000, channels=2, causal=False,
                             norm="time_group_norm", renormalize=True, segment=1.0, n_q=16,
                             target_bandwidths=[3.0, 6.0, 12.0, 24.0]),
    # audiocraft's encodec_base_causal (compression/encodec_base_24khz recipe).
    "audiocraft_base_24khz": _derive(_ENCODEC_24KHZ, pad_mode="constant", true_skip=True,
                                     q_dropout=True),
    # A tiny model for fast CPU tests and the demo.
    "debug": _derive(_ENCODEC_24KHZ, pad_mode="constant", true_skip=True, q_dropout=True,
                     dimension=16, n_filters=4),
}

_TOP_KEYS = set(_ENCODEC_24KHZ) - {"seanet", "rvq"}
_ALL_KEYS = _TOP_KEYS | set(_ENCODEC_24KHZ["seanet"]) | set(_ENCODEC_24KHZ["rvq"])


def _unknown_key_error(what: str, key: str, valid) -> ValueError:
    close = difflib.get_close_matches(key, list(valid), n=3)
    if close:
        hint = f"; did you mean {', '.join(close)}?"
    else:
        hint = f"; valid: {', '.join(sorted(valid))}"
    return ValueError(f"unknown {what} {key!r}{hint}")


def preset_settings(name: str, **overrides) -> dict:
    """The preset's settings (nested as top level / seanet / rvq) with flat overrides applied."""
    if name not in PRESETS:
        raise _unknown_key_error("model preset", name, PRESETS)
    for key in overrides:
        if key not in _ALL_KEYS:
            raise _unknown_key_error("model setting", key, _ALL_KEYS)
    return _derive(PRESETS[name], **overrides)


def _accepted(cls, kwargs: dict) -> dict:
    params = inspect.signature(cls).parameters
    return {k: v for k, v in kwargs.items() if k in params}


def build_from_settings(settings: dict) -> EncodecModel:
    """Build an EncodecModel from nested settings as returned by `preset_settings`."""
    seanet = dict(settings["seanet"], channels=settings["channels"], causal=settings["causal"])
    encoder = SEANetEncoder(**_accepted(SEANetEncoder, seanet))
    decoder = SEANetDecoder(**_accepted(SEANetDecoder, seanet))
    frame_rate = math.ceil(settings["sample_rate"] / encoder.hop_length)
    quantizer = ResidualVectorQuantizer(dimension=seanet["dimension"], frame_rate=frame_rate,
                                        **settings["rvq"])
    return EncodecModel(encoder, decoder, quantizer, sample_rate=settings["sample_rate"],
                        channels=settings["channels"], renormalize=settings["renormalize"],
                        segment=settings["segment"], overlap=settings["overlap"],
                        target_bandwidths=settings["target_bandwidths"])


def build_model(name: str = "encodec_24khz", **overrides) -> EncodecModel:
    """Build a preset by name, e.g. build_model("debug", n_q=4, bins=64)."""
    return build_from_settings(preset_settings(name, **overrides))
