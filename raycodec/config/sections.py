"""Config sections as the builders see them: plain dicts whose missing keys name themselves.

Builders take their section of a complete config (`load_config()`), audiocraft style, and merge
no defaults of their own: `default.yaml` is the only place a default lives.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

from raycodec.config.schema import ConfigError


def as_dict(cfg: Any) -> dict:
    """A plain (deep-copied, resolved) dict from a dict, an OmegaConf config or None."""
    if cfg is None:
        return {}
    if isinstance(cfg, DictConfig):
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    if not isinstance(cfg, Mapping):
        raise ValueError(f"expected a mapping (dict or DictConfig), got {type(cfg).__name__}")
    return copy.deepcopy(dict(cfg))


def check_kwargs(klass: type, kwargs: Mapping[str, Any], section: str) -> None:
    """Raise a ValueError naming the accepted keys when `kwargs` has keys `klass` does not take."""
    params = inspect.signature(klass.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = [n for n in params if n != "self"]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ValueError(f"{section}: unknown keys {unknown}; expected a subset of {accepted}")


class Section(dict):
    """A config (section) as a plain dict; a missing key raises ConfigError with its dotted name.

    Nested mappings are Sections too, so `cfg["optim"]["ema"]["decay"]` names `optim.ema.decay`
    when a hand-made partial config lacks it, instead of a bare KeyError deep in a builder.
    """

    def __init__(self, cfg: Any = None, path: str = ""):
        super().__init__()
        self.path = path
        for key, value in as_dict(cfg).items():
            self[key] = Section(value, self._dotted(key)) if isinstance(value, Mapping) else value

    def _dotted(self, key: Any) -> str:
        return f"{self.path}.{key}" if self.path else str(key)

    def __missing__(self, key: Any) -> Any:
        raise ConfigError(f"config lacks {self._dotted(key)!r}; builders take a complete config "
                          "(raycodec.config.load_config, optionally with overrides)")
