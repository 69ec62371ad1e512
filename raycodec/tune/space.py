"""Search-space entries of a sweep file, e.g. `losses.adv: loguniform [0.5, 8]`, as Tune domains.

An entry is `<kind> <YAML list>` (or the mapping `{kind: list}`):
  choice [a, b, ...]      one of the values, sampled (or each value once with `algorithm: grid`)
  grid [a, b, ...]        every value, crossed with the other grid entries (Tune's grid_search)
  uniform [low, high]     a float in [low, high]
  loguniform [low, high]  a float in [low, high], uniform in log space (low > 0)
  randint [low, high]     an integer in [low, high], both bounds INCLUDED
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

import yaml

KINDS = ("choice", "grid", "uniform", "loguniform", "randint")


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads `1e-4` as a string; read it as a float, like omegaconf does."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(\d[\d_]*)?\.?\d*[eE][-+]?\d+$"), list("-+0123456789."))


def load_yaml(text: str) -> Any:
    """Parse YAML text (scientific notation without a dot is a float)."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


class SweepError(ValueError):
    """A sweep file or command line that cannot run (printed without a traceback)."""


@dataclass(frozen=True)
class Param:
    """One searched config key: its kind and its values (choices) or bounds."""

    key: str
    kind: str
    values: tuple

    def describe(self) -> str:
        """The entry as written in a sweep file, e.g. `loguniform [0.5, 8.0]`."""
        return f"{self.kind} [{', '.join(json.dumps(v) for v in self.values)}]"

    def probes(self) -> list:
        """Values a trial can get, to validate against the config schema before any trial runs."""
        if self.kind in ("choice", "grid"):
            return list(self.values)
        if self.kind == "randint":
            return [int(v) for v in self.values]
        return [float(v) for v in self.values]  # uniform draws floats, even for `[1, 4]`

    def domain(self, grid: bool = False):
        """The Tune domain (`grid`: a choice becomes a grid_search, for `algorithm: grid`)."""
        from ray import tune

        low, high = (self.values + (None, None))[:2]
        if self.kind == "grid" or (grid and self.kind == "choice"):
            return tune.grid_search(list(self.values))
        if self.kind == "choice":
            return tune.choice(list(self.values))
        if self.kind == "uniform":
            return tune.uniform(float(low), float(high))
        if self.kind == "loguniform":
            return tune.loguniform(float(low), float(high))
        return tune.randint(int(low), int(high) + 1)  # Tune's upper bound is exclusive


def _split(entry: Any, key: str) -> tuple[str, Any]:
    """(kind, values) from `kind [..]` or `{kind: [..]}`."""
    if isinstance(entry, dict) and len(entry) == 1:
        kind, values = next(iter(entry.items()))
        return str(kind), values
    if isinstance(entry, str) and " " in entry.strip():
        kind, _, rest = entry.strip().partition(" ")
        try:
            return kind, load_yaml(rest)
        except yaml.YAMLError:
            raise SweepError(f"search space {key!r}: cannot read the values of {entry!r}; "
                             "write e.g. 'choice [1, 2, 3]'") from None
    raise SweepError(f"search space {key!r}: expected '<kind> [values]' with kind one of "
                     f"{', '.join(KINDS)} (e.g. 'loguniform [0.5, 8]'), got {entry!r}")


def parse_param(key: str, entry: Any) -> Param:
    """Parse and check one search-space entry (bounds, list lengths, log scale > 0)."""
    kind, values = _split(entry, key)
    where = f"search space {key!r} ({kind} {values})"
    if kind not in KINDS:
        raise SweepError(f"search space {key!r}: unknown kind {kind!r}; expected one of "
                         f"{', '.join(KINDS)}")
    if not isinstance(values, list) or not values:
        raise SweepError(f"{where}: the values must be a non-empty [list]")
    if kind in ("choice", "grid"):
        if any(isinstance(v, (dict, list)) for v in values):
            raise SweepError(f"{where}: values must be scalars")
        return Param(key, kind, tuple(values))
    if len(values) != 2:
        raise SweepError(f"{where}: expected [low, high]")
    low, high = values
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    if not numeric or not all(math.isfinite(v) for v in values):
        raise SweepError(f"{where}: bounds must be finite numbers")
    if kind == "randint" and not all(isinstance(v, int) for v in values):
        raise SweepError(f"{where}: randint bounds must be integers")
    if low > high or (low == high and kind != "randint"):
        raise SweepError(f"{where}: low must be below high")
    if kind == "loguniform" and low <= 0:
        raise SweepError(f"{where}: loguniform needs low > 0")
    return Param(key, kind, (low, high))


def parse_space(space: Any, prefix: str = "") -> list[Param]:
    """All entries of the `search.space` mapping, in file order.

    Keys are dotted config keys (`losses.adv`); nested sections (`losses: {adv: ...}`) work too.
    """
    if not isinstance(space, dict) or not space:
        raise SweepError(f"search.space{'.' + prefix[:-1] if prefix else ''} must map config "
                         "keys to entries, e.g. 'losses.adv: loguniform [0.5, 8]'")
    params = []
    for key, entry in space.items():
        path = f"{prefix}{key}"
        if isinstance(entry, dict) and not (len(entry) == 1 and next(iter(entry)) in KINDS):
            params += parse_space(entry, path + ".")
        else:
            params.append(parse_param(path, entry))
    return params
