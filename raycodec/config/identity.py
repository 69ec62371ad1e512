"""Experiment identity: what a config changes from the defaults, and a short hash of it.

The signature names the experiment (Aim run, checkpoint folder): rerunning or resuming the same
config anywhere gives the same signature, while any change that alters results gives a new one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from fnmatch import fnmatch
from typing import Any

from omegaconf import DictConfig, OmegaConf

from raycodec.config.loading import default_dict

# Keys that do not change what a run computes: logging, paths, placement and scheduling (like
# dora's `exclude` list in audiocraft). The Ray world size is left out too: the batch size is
# global, and a run resumed on another number of workers is the same experiment. `debug.*` is
# left out so that a run made to fail for a test resumes under its own signature.
EXCLUDED_KEYS = (
    "tracking.*", "checkpoint.*", "ray.*", "debug.*",
    "dataset.path", "dataset.manifest", "dataset.*.manifest",
    "dataset.evaluate.batch_size", "evaluate.*",
    "balancer.monitor", "compile", "compile_kwargs", "compile_kwargs.*", "optim.ema.device",
    "continue_from",  # a path: the source's content hash stands in for it
)


def is_excluded(key: str) -> bool:
    """Whether a dotted key is left out of the experiment signature."""
    return any(fnmatch(key, pattern) for pattern in EXCLUDED_KEYS)


def flatten(node: Mapping, prefix: str = "") -> dict[str, Any]:
    """Dotted leaf keys of a nested mapping; lists and empty mappings are leaves."""
    flat: dict[str, Any] = {}
    for key, value in node.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, path + "."))
        else:
            flat[path] = value
    return flat


def _plain(cfg: Mapping) -> dict:
    if isinstance(cfg, DictConfig):
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    return dict(cfg)


def _covered(key: str, current: Mapping[str, Any]) -> bool:
    return any(c.startswith(key + ".") or key.startswith(c + ".") for c in current)


def config_diff(cfg: Mapping, *, result_only: bool = False) -> dict[str, Any]:
    """Flat `{dotted.key: value}` of what differs from the shipped defaults (a removed key maps
    to None); with `result_only`, keys in EXCLUDED_KEYS are left out."""
    defaults = flatten(default_dict())
    current = flatten(_plain(cfg))
    diff = {k: v for k, v in current.items() if k not in defaults or defaults[k] != v}
    # A default that is gone entirely (not replaced by a mapping or a null above it) shows as None.
    diff.update({k: None for k in defaults if k not in current and not _covered(k, current)})
    if result_only:
        diff = {k: v for k, v in diff.items() if not is_excluded(k)}
    return dict(sorted(diff.items()))


def experiment_signature(cfg: Mapping, source_digest: str | None = None) -> str:
    """8 hex digits: sha1 of the canonical JSON of the result-affecting diff from the defaults.

    A config with `continue_from` needs `source_digest`, the content hash of its source: the
    same path holding other weights is another experiment.
    """
    diff = config_diff(cfg, result_only=True)
    if _plain(cfg).get("continue_from"):
        if not source_digest:
            raise ValueError("experiment_signature: continue_from is set; pass the source's "
                             "content hash (source_digest)")
        diff["continue_from"] = source_digest
    else:
        diff.pop("continue_from_parts", None)  # means nothing without a source
    payload = json.dumps(diff, sort_keys=True,
                         separators=(",", ":"), ensure_ascii=True, default=str)
    return hashlib.sha1(payload.encode("utf-8")).hexdigest()[:8]
