"""What a valid config looks like: key names, types and choices, read off the defaults.

A key's type is the type of its default value (ints are accepted where floats are expected);
keys whose default is null take the type listed in `NULL_DEFAULT_TYPES`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from fnmatch import fnmatch
from typing import Any


class ConfigError(ValueError):
    """A config that cannot be run: unknown key, wrong type or value, unreadable file."""


# Sections whose keys are free (kwargs of a torch activation, Ray resources): no key checks.
OPEN_SECTIONS = ("*.activation_params", "seanet.final_activation_params",
                 "ray.resources_per_worker", "compile_kwargs", "schedule")
# Keys a `schedule` may change at an epoch boundary (raycodec.train.schedule applies them).
SCHEDULABLE = ("losses.*", "adversarial.every", "optim.lr")

# Types of keys whose default is null (the model overrides mirror raycodec.models.presets).
NULL_DEFAULT_TYPES: dict[str, str] = {
    "label": "str", "continue_from": "str", "evaluate.manifest": "str",
    "encodec.causal": "bool", "encodec.renormalize": "bool", "encodec.segment": "float",
    "encodec.overlap": "float", "encodec.target_bandwidths": "list[float]",
    "seanet.dimension": "int", "seanet.n_filters": "int", "seanet.n_residual_layers": "int",
    "seanet.ratios": "list[int]", "seanet.activation": "str", "seanet.activation_params": "dict",
    "seanet.norm": "str", "seanet.kernel_size": "int", "seanet.residual_kernel_size": "int",
    "seanet.last_kernel_size": "int", "seanet.dilation_base": "int", "seanet.pad_mode": "str",
    "seanet.true_skip": "bool", "seanet.compress": "int", "seanet.lstm": "int",
    "seanet.trim_right_ratio": "float", "seanet.final_activation": "str",
    "seanet.final_activation_params": "dict",
    "rvq.n_q": "int", "rvq.bins": "int", "rvq.decay": "float", "rvq.kmeans_init": "bool",
    "rvq.kmeans_iters": "int", "rvq.threshold_ema_dead_code": "float", "rvq.q_dropout": "bool",
    "mel.f_max": "float", "msspec.f_max": "float",
    "msd.inner_kernel_sizes": "list[int]", "msd.strides": "list[int]", "msd.paddings": "list[int]",
    "optim.ema.device": "str",
    "dataset.path": "str", "dataset.manifest": "str", "dataset.train.manifest": "str",
    "dataset.valid.manifest": "str",
    "dataset.evaluate.bandwidths": "list[float]",
    "ray.address": "str", "ray.resources_per_worker": "dict", "ray.storage_path": "str",
    "tracking.repo": "str",
    "debug.fail_at_step": "int",
}
# Keys with a non-null default that may be set to null (audiocraft gives null a meaning).
NULLABLE = {"optim.ema.decay", "adversarial.feat_loss", "checkpoint.keep_last", "sisnr.segment",
            "evaluate.max_seconds"}

CHOICES: dict[str, tuple[str, ...]] = {
    "optim.optimizer": ("adam", "adamw"),
    "adversarial.adversaries": ("msstftd", "mpd", "msd"),
    "adversarial.adv_loss": ("hinge", "hinge2", "mse"),
    "adversarial.feat_loss": ("l1", "l2"),
    "autocast_dtype": ("bfloat16", "float16"),
    "continue_from_parts": ("model", "ema", "adv_losses", "balancer"),
}
# Keys that take one of several types: an int, or a [MIN, MAX] range (elastic Ray Train workers).
UNION_TYPES: dict[str, tuple[str, ...]] = {"ray.num_workers": ("int", "list[int]")}
# Numbers that must be > 0: a zero here would silently turn training off.
POSITIVE = ("balancer.total_norm", "evaluate.max_seconds")
# Model presets known without importing torch; other names are checked against the registry.
KNOWN_PRESETS = ("encodec_24khz", "encodec_48khz", "audiocraft_base_24khz", "debug")
MODEL_SECTIONS = ("encodec", "seanet", "rvq")


def is_open(path: str) -> bool:
    """Whether `path` is a free-form mapping whose keys are not checked."""
    return any(fnmatch(path, pattern) for pattern in OPEN_SECTIONS)


def iter_keys(node: Mapping, prefix: str = "") -> Iterator[str]:
    """Every dotted key of a nested mapping, sections included, not descending open sections."""
    for key, value in node.items():
        path = f"{prefix}{key}"
        yield path
        if isinstance(value, Mapping) and not is_open(path):
            yield from iter_keys(value, path + ".")


def suggest(key: str, valid: list[str]) -> str:
    """'; did you mean a, b?' from the closest valid dotted keys ('' when none is close)."""
    parent, _, leaf = key.rpartition(".")
    by_leaf: dict[str, list[str]] = {}
    for path in valid:
        by_leaf.setdefault(path.rpartition(".")[2], []).append(path)
    siblings = {p.rpartition(".")[2]: p for p in valid if p.rpartition(".")[0] == parent}
    # Most specific first: a misspelt key of a known section (`optim.lrr`), then a misspelt
    # section (`optm.lr`), then a known key in the wrong place (`lr` for `optim.lr`).
    close = [siblings[s] for s in difflib.get_close_matches(leaf, list(siblings), 3, 0.6)]
    if not close and parent:
        close = difflib.get_close_matches(key, valid, n=3, cutoff=0.8)
    if not close:
        close = [p for name in difflib.get_close_matches(leaf, list(by_leaf), 3, 0.75)
                 for p in by_leaf[name]][:3]
    return f"; did you mean {', '.join(close)}?" if close else ""


def check_keys(override: Mapping, defaults: Mapping, source: str = "") -> None:
    """Raise ConfigError on the first key of `override` that `defaults` does not have."""
    _check_keys(override, defaults, source, "", list(iter_keys(defaults)))


def _check_keys(override: Mapping, defaults: Mapping, source: str, prefix: str,
                valid: list[str]) -> None:
    for key, value in override.items():
        path = f"{prefix}{key}"
        if key not in defaults:
            # Name the full key (`optm.lr`, not `optm`): it is what the user typed.
            while isinstance(value, Mapping) and len(value) == 1:
                inner, value = next(iter(value.items()))
                path = f"{path}.{inner}"
            raise ConfigError(f"unknown key {path!r}{source}{suggest(path, valid)}")
        default = defaults[key]
        # Descend only into known sections: a mapping given for a scalar is a type error.
        if isinstance(value, Mapping) and isinstance(default, Mapping) and not is_open(path):
            _check_keys(value, default, source, path + ".", valid)


def expected_type(path: str, default: Any) -> str:
    """The type name a key must hold: int, float, bool, str, dict, list[...] or any."""
    if default is None:
        return NULL_DEFAULT_TYPES.get(path, "any")
    if isinstance(default, bool):
        return "bool"
    for kind in (int, float, str):
        if isinstance(default, kind):
            return kind.__name__
    if isinstance(default, Mapping):
        return "dict"
    kinds = {expected_type(path, item) for item in default}
    return f"list[{kinds.pop()}]" if len(kinds) == 1 else "list"


def coerce(value: Any, kind: str) -> Any:
    """`value` converted to `kind` where lossless (int -> float, number -> str); raise TypeError."""
    if kind == "any":
        return value
    if kind.startswith("list"):
        if not isinstance(value, list):
            raise TypeError
        inner = kind[5:-1] or "any"
        return [coerce(item, inner) for item in value]
    if kind == "dict":
        if not isinstance(value, Mapping):
            raise TypeError
        return value
    if isinstance(value, bool):  # bool is an int subclass: never a number here
        if kind != "bool":
            raise TypeError
        return value
    if kind == "float" and isinstance(value, (int, float)):
        return float(value)
    if kind == "str" and isinstance(value, (int, float)):
        return str(value)  # `label=2` on the command line
    if type(value).__name__ != kind:
        raise TypeError
    return value


def check_values(cfg: dict, defaults: Mapping, prefix: str = "") -> None:
    """Check and coerce, in place, the types and choices of every key of a resolved config."""
    for key, value in cfg.items():
        path = f"{prefix}{key}"
        default = defaults.get(key) if isinstance(defaults, Mapping) else None
        if isinstance(default, Mapping) and not is_open(path) and isinstance(value, dict):
            check_values(value, default, path + ".")
            continue
        if value is None and (default is None or path in NULLABLE):
            continue
        kinds = UNION_TYPES.get(path, (expected_type(path, default),))
        cfg[key] = _coerce_any(path, value, kinds)
        _check_choice(path, cfg[key])
        if path in UNION_TYPES and isinstance(cfg[key], list):
            _check_range(path, cfg[key])
        if path in POSITIVE and not cfg[key] > 0:
            raise ConfigError(f"bad value {cfg[key]!r} for {path!r}: expected a number > 0")
    if not prefix and cfg.get("schedule"):
        cfg["schedule"] = check_schedule(cfg["schedule"], cfg)


def _coerce_any(path: str, value: Any, kinds: tuple[str, ...]) -> Any:
    """`value` coerced to the first of `kinds` that takes it; ConfigError when none does."""
    for kind in kinds:
        try:
            return coerce(value, kind)
        except TypeError:
            continue
    given = "null" if value is None else f"{value!r} ({type(value).__name__})"
    raise ConfigError(f"wrong type for {path!r}: expected {' or '.join(kinds)}, got {given}")


def _check_range(path: str, value: list) -> None:
    """A [MIN, MAX] range of counts: two ints with 1 <= MIN <= MAX."""
    if len(value) != 2 or not 1 <= value[0] <= value[1]:
        raise ConfigError(f"bad value {value!r} for {path!r}: expected an int or [MIN, MAX] "
                          "with 1 <= MIN <= MAX")


def _check_choice(path: str, value: Any) -> None:
    choices = CHOICES.get(path)
    if choices is None:
        return
    for item in value if isinstance(value, list) else [value]:
        if item not in choices:
            hint = suggest(str(item), list(choices)) or f"; expected one of {', '.join(choices)}"
            raise ConfigError(f"bad value {item!r} for {path!r}{hint}")


def check_model(name: str) -> None:
    """Raise ConfigError when `model` names no preset (imports torch only for unknown names)."""
    if name in KNOWN_PRESETS:
        return
    from raycodec.models.presets import PRESETS

    if name not in PRESETS:
        raise ConfigError(f"unknown model preset {name!r} for 'model'"
                          f"{suggest(name, list(PRESETS))}")


def model_overrides(cfg: Mapping) -> dict[str, Any]:
    """Flat kwargs for `preset_settings(cfg.model, **kwargs)`: sample_rate, channels and the
    non-null `encodec.*`, `seanet.*`, `rvq.*` keys, as plain Python values."""
    from omegaconf import DictConfig, OmegaConf

    if isinstance(cfg, DictConfig):
        cfg = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    overrides = {"sample_rate": cfg["sample_rate"], "channels": cfg["channels"]}
    for section in MODEL_SECTIONS:
        overrides.update({k: v for k, v in (cfg.get(section) or {}).items() if v is not None})
    return overrides


def _scheduled_value(key: str, value: Any) -> Any:
    """One schedule value, coerced to the key's type and checked against its range."""
    kind = "int" if key == "adversarial.every" else "float"
    try:
        value = coerce(value, kind)
    except TypeError:
        raise ConfigError(f"wrong type in schedule {key!r}: expected {kind}, got "
                          f"{value!r}") from None
    low, strict = {"adversarial.every": (1, False), "optim.lr": (0, True)}.get(key, (0, False))
    if not (value > low if strict else value >= low):
        raise ConfigError(f"bad value {value!r} in schedule {key!r}: expected a number "
                          f"{'>' if strict else '>='} {low}")
    return value


def check_schedule(schedule: Any, cfg: Mapping) -> dict[str, dict[int, Any]]:
    """The `schedule` mapping checked (keys, epochs, types) and made canonical: int epochs in
    order, entries that change nothing dropped, so that equal schedules sign equally."""
    if not isinstance(schedule, Mapping):
        raise ConfigError("'schedule' must map config keys to {epoch: value}, e.g. "
                          "schedule: {losses.adv: {0: 4.0, 20: 2.0}}")
    valid = [f"losses.{k}" for k in cfg["losses"]] + ["adversarial.every", "optim.lr"]
    out: dict[str, dict[int, Any]] = {}
    for key, points in schedule.items():
        key = str(key)
        if key not in valid:
            raise ConfigError(f"schedule key {key!r} cannot be scheduled{suggest(key, valid)} "
                              f"(schedulable: {', '.join(valid)})")
        if not isinstance(points, Mapping) or not points:
            raise ConfigError(f"schedule {key!r} must map epochs to values, e.g. "
                              "{0: 4.0, 20: 2.0}")
        bad = [e for e in points if not str(e).isdigit()]
        if bad:
            raise ConfigError(f"schedule {key!r}: epoch {bad[0]!r} is not an integer >= 0")
        section, _, leaf = key.partition(".")
        current, entries = cfg[section][leaf], {}
        for epoch in sorted(points, key=int):
            value = _scheduled_value(key, points[epoch])
            if value != current:  # a no-op entry would only change the signature
                entries[int(epoch)], current = value, value
        if entries:
            out[key] = entries
    for epoch in sorted({0, *(e for points in out.values() for e in points)}):
        weights = [value_at(out.get(f"losses.{k}"), v, epoch) for k, v in cfg["losses"].items()]
        if not any(w > 0 for w in weights):
            raise ConfigError(f"schedule: every loss weight is 0 from epoch {epoch}")
    return out


def value_at(points: Mapping[int, Any] | None, default: Any, epoch: int) -> Any:
    """A piecewise-constant schedule's value at `epoch` (`default` before its first entry)."""
    value = default
    for start, item in sorted((points or {}).items()):
        if start > epoch:
            break
        value = item
    return value
