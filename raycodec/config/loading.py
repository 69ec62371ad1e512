"""Load, validate, print and save experiment configs (omegaconf).

A config is `default.yaml`, then a shipped override (`debug.yaml`, ...) or a user YAML file, then
`key=value` overrides. Every layer is checked against the defaults' keys before merging and the
result against their types, so that a typo fails before Ray or torch start.
"""

from __future__ import annotations

import copy
import difflib
import functools
import os
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from raycodec.config.schema import (
    ConfigError,
    check_keys,
    check_model,
    check_values,
    is_open,
    iter_keys,
)

DEFAULT_CONFIG = "encodec_base_24khz"
_YAML_SUFFIXES = (".yaml", ".yml")


def _package_dir() -> Path:
    return Path(str(resources.files("raycodec.config")))


def available_configs() -> list[str]:
    """Names of the configs shipped in the package (`default` is the bare defaults file)."""
    return sorted(p.stem for p in _package_dir().glob("*.yaml"))


def _read_yaml(path: Path, what: str) -> dict:
    """A YAML file as a plain (unresolved) dict; ConfigError when unreadable or not a mapping."""
    try:
        node = OmegaConf.load(path)
    except FileNotFoundError:
        raise ConfigError(f"{what} not found: {path}") from None
    except (OSError, OmegaConfBaseException, ValueError) as exc:  # yaml errors are ValueErrors
        raise ConfigError(f"cannot read {what} {path}: {exc}") from None
    if not isinstance(node, DictConfig):
        raise ConfigError(f"{what} {path} must hold a mapping of keys, not a list")
    return OmegaConf.to_container(node, resolve=False)  # type: ignore[return-value]


@functools.lru_cache(maxsize=1)
def _defaults() -> tuple[dict, dict]:
    """(raw defaults with interpolations, resolved defaults), read once per process."""
    raw = _read_yaml(_package_dir() / "default.yaml", "default config")
    resolved = OmegaConf.to_container(OmegaConf.create(raw), resolve=True)
    return raw, resolved  # type: ignore[return-value]


def _is_file_arg(name: str) -> bool:
    # A shipped name wins over a same-named file unless the argument looks like a path.
    return name.endswith(_YAML_SUFFIXES) or os.sep in name or "/" in name or (
        name not in available_configs() and Path(name).is_file())


def _named_layer(name_or_file: str) -> tuple[dict, str]:
    """The override of a shipped config name or a YAML path, and how to name it in errors."""
    if _is_file_arg(name_or_file):
        path = Path(name_or_file).expanduser()
        return _read_yaml(path, "config file"), f" in {path}"
    shipped = available_configs()
    if name_or_file not in shipped:
        close = difflib.get_close_matches(name_or_file, shipped, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise ConfigError(f"unknown config {name_or_file!r}; {hint}(shipped: "
                          f"{', '.join(shipped)}; or give a path to a .yaml file)")
    return _read_yaml(_package_dir() / f"{name_or_file}.yaml", "config"), f" in {name_or_file}"


def _dotlist_layer(item: str) -> dict:
    """One `key=value` override as a nested dict (the value parsed as YAML, like Hydra)."""
    key, sep, _ = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {item!r} is not of the form key=value")
    try:
        return OmegaConf.to_container(OmegaConf.from_dotlist([item]),  # type: ignore[return-value]
                                      resolve=False)
    except (OmegaConfBaseException, ValueError) as exc:
        raise ConfigError(f"cannot parse override {item!r}: {exc}") from None


def _structured(container: dict) -> DictConfig:
    """A DictConfig that rejects unknown keys, except inside free-form sections."""
    cfg = OmegaConf.create(container)
    OmegaConf.set_struct(cfg, True)
    for path in iter_keys(container):
        if is_open(path):
            node = OmegaConf.select(cfg, path)
            if isinstance(node, DictConfig):
                OmegaConf.set_struct(node, False)
    return cfg


@functools.lru_cache(maxsize=1)
def _base() -> DictConfig:
    # Built once: OmegaConf.merge copies its first argument, so the cached node stays pristine.
    return _structured(copy.deepcopy(_defaults()[0]))


def load_config(name_or_file: str | None = None, overrides: Iterable[str] = ()) -> DictConfig:
    """The defaults, then a shipped config name or YAML file, then `key=value` overrides.

    Raises ConfigError (a ValueError) naming the key on unknown keys, wrong types or values.
    """
    raw, resolved_defaults = _defaults()
    layers = []
    if name_or_file:
        layers.append(_named_layer(str(name_or_file)))
    layers += [(_dotlist_layer(item), "") for item in overrides]
    for layer, source in layers:
        check_keys(layer, raw, source)
    try:
        merged = OmegaConf.merge(_base(), *[layer for layer, _ in layers])
        container: dict[str, Any] = OmegaConf.to_container(merged, resolve=True)  # type: ignore
    except OmegaConfBaseException as exc:  # key checks ran first: interpolation errors etc.
        key = getattr(exc, "full_key", None)
        raise ConfigError(f"invalid config{f' at {key!r}' if key else ''}: {exc}") from None
    check_values(container, resolved_defaults)
    check_model(container["model"])
    return _structured(container)


def default_dict() -> dict:
    """The shipped defaults as a plain, resolved dict (a copy)."""
    return copy.deepcopy(_defaults()[1])


def default_config() -> DictConfig:
    """The shipped default config (audiocraft's encodec_base_24khz recipe)."""
    return load_config(None)


def format_config(cfg: DictConfig) -> str:
    """The config as YAML, interpolations resolved, in the defaults' key order."""
    return OmegaConf.to_yaml(cfg, resolve=True)


def save_config(cfg: DictConfig, path: str | os.PathLike) -> Path:
    """Write the config as YAML (reloadable with `load_config(path)`); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(format_config(cfg))
    return path
