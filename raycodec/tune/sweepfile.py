"""Sweep files on disk: find, read, apply `sweep.<key>=value` overrides, check section keys."""

from __future__ import annotations

import copy
import difflib
import json
from pathlib import Path
from typing import Any

import yaml

from raycodec.tune.space import SweepError, load_yaml

SWEEPS_DIR = Path("experiments") / "sweeps"
SECTIONS: dict[str, tuple[str, ...] | None] = {
    "name": None, "description": None, "config": None, "overrides": None,
    "search": ("algorithm", "num_samples", "seed", "space"),
    "scheduler": ("type", "metric", "mode", "max_t", "grace_period", "reduction_factor",
                  "perturbation_interval", "quantile_fraction", "resample_probability",
                  "mutations", "synch"),
    "resources": ("workers", "cpus_per_worker", "gpus_per_worker"),
    "max_concurrent_trials": None,
}


def find_sweep(name_or_file: str) -> Path:
    """A sweep file path: a path as given, else experiments/sweeps/NAME.yaml (cwd, then repo)."""
    given = Path(name_or_file).expanduser()
    if given.suffix in (".yaml", ".yml") or "/" in name_or_file:
        if not given.is_file():
            raise SweepError(f"sweep file not found: {given}")
        return given.absolute()
    roots = [Path.cwd(), Path(__file__).resolve().parents[2]]
    for root in roots:
        path = root / SWEEPS_DIR / f"{name_or_file}.yaml"
        if path.is_file():
            return path
    shipped = sorted({p.stem for r in roots for p in (r / SWEEPS_DIR).glob("*.yaml")})
    close = difflib.get_close_matches(name_or_file, shipped, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise SweepError(f"unknown sweep {name_or_file!r}; {hint}(shipped: "
                     f"{', '.join(shipped) or 'none'}; or give a path to a .yaml file)")


def read_sweep(path: Path) -> dict:
    """The sweep file as a dict (SweepError when unreadable or not a mapping)."""
    try:
        raw = load_yaml(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise SweepError(f"cannot read sweep file {path}: {exc}") from None
    if not isinstance(raw, dict):
        raise SweepError(f"sweep file {path} must hold a mapping of keys")
    return raw


def split_overrides(items: list[str]) -> tuple[list[str], list[str]]:
    """(config overrides, sweep-file overrides): `sweep.<key>=<value>` items go to the second."""
    config, sweep = [], []
    for item in items:
        if "=" not in item:
            raise SweepError(f"override {item!r} is not of the form key=value")
        (sweep if item.startswith("sweep.") else config).append(item)
    return config, sweep


def apply_sweep_overrides(raw: dict, items: list[str]) -> dict:
    """`sweep.search.num_samples=8` style items applied to the raw sweep dict (a copy)."""
    raw = copy.deepcopy(raw)
    for item in items:
        key, _, text = item[len("sweep."):].partition("=")
        try:
            value = load_yaml(text)
        except yaml.YAMLError:
            value = text
        parts = key.split(".")
        if parts[:2] == ["search", "space"] and len(parts) > 2:  # a dotted config key
            parts = ["search", "space", ".".join(parts[2:])]
        node = raw
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[parts[-1]] = value
    return raw


def check_sections(raw: dict, source: str) -> None:
    """Unknown top-level or section keys are errors, with the closest valid key."""
    for key, value in raw.items():
        if key not in SECTIONS:
            close = difflib.get_close_matches(str(key), list(SECTIONS), n=2, cutoff=0.6)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise SweepError(f"unknown key {key!r} in {source}{hint} "
                             f"(valid: {', '.join(SECTIONS)})")
        allowed = SECTIONS[key]
        if allowed is None or value is None:
            continue
        if not isinstance(value, dict):
            raise SweepError(f"{key!r} in {source} must be a mapping of {', '.join(allowed)}")
        for sub in value:
            if sub not in allowed:
                close = difflib.get_close_matches(str(sub), list(allowed), n=2, cutoff=0.6)
                hint = f"; did you mean {key}.{close[0]}?" if close else ""
                raise SweepError(f"unknown key '{key}.{sub}' in {source}{hint} "
                                 f"(valid: {', '.join(allowed)})")


def flat_overrides(node: Any, prefix: str = "") -> list[str]:
    """The sweep's `overrides` mapping (dotted or nested keys) as key=value items."""
    if node is None:
        return []
    if not isinstance(node, dict):
        raise SweepError("'overrides' must map config keys to values, e.g. 'optim.epochs: 3'")
    items = []
    for key, value in node.items():
        if isinstance(value, dict) and value and f"{prefix}{key}" != "schedule":  # dotted keys
            items += flat_overrides(value, f"{prefix}{key}.")
        else:
            items.append(f"{prefix}{key}={json.dumps(value)}")
    return items
