"""PBT lineage: where a trial's weights come from and the hyperparameters they trained with.

A trial's `lineage.json` (in its trial folder, and inside every checkpoint it reports to Tune)
travels with its weights: when PBT clones trial A into trial B, B's new lineage is A's history up
to the clone epoch plus B's new values. Its `schedule` is the config `schedule` that replays the
weights from scratch; its `clones` are what Aim shows to group runs by.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any

LINEAGE_FILE = "lineage.json"


@dataclass
class Clone:
    """One exploit: at `epoch` `trial` took `source`'s weights and these new values.

    A lineage lists its weights' whole history, so a clone made by another trial (whose weights
    this trial later took) names that trial: its copy is `<trial>-e<epoch>-<source>`.
    """

    epoch: int
    source: str
    values: dict[str, Any]
    trial: str = ""  # the trial that took the weights ("" in lineages written before it was kept)


@dataclass
class Lineage:
    """Where a trial's weights come from, and the hyperparameters they trained with."""

    trial: str                        # the trial that trains these weights now
    root: str                         # the trial whose initial weights they are
    schedule: dict[str, dict[int, Any]] = field(default_factory=dict)  # {key: {epoch: value}}
    clones: list[Clone] = field(default_factory=list)

    def continued(self, trial: str, epoch: int, values: dict[str, Any]) -> Lineage:
        """The lineage of `trial` going on from these weights at `epoch` with `values`."""
        schedule = {}
        for key, value in values.items():
            points = {e: v for e, v in self.schedule.get(key, {}).items() if e < epoch}
            if not points or list(points.values())[-1] != value:
                points[epoch] = value
            schedule[key] = points
        clones = list(self.clones)
        if trial != self.trial:
            clones.append(Clone(epoch, self.trial, dict(values), trial))
        return Lineage(trial, self.root, schedule, clones)

    def to_json(self) -> str:
        """JSON text (epochs as strings, as JSON keys are)."""
        return json.dumps(dataclasses.asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Lineage:
        """Read what `to_json` wrote."""
        raw = json.loads(text)
        schedule = {k: {int(e): v for e, v in points.items()}
                    for k, points in raw["schedule"].items()}
        return cls(raw["trial"], raw["root"], schedule, [Clone(**c) for c in raw["clones"]])

    def aim_params(self) -> dict:
        """Run-level Aim params to group by: lineage.root, lineage.parent, lineage.clones."""
        last = self.clones[-1] if self.clones else None
        return {"root": self.root, "parent": last.source if last else self.trial,
                "clones": len(self.clones),
                "cloned_at": [c.epoch for c in self.clones],
                "history": [dataclasses.asdict(c) for c in self.clones]}

    def describe(self) -> str:
        """One cell of the results table, e.g. `e2<-t01 e4:t02<-t03` ('-' when never cloned;
        `t02` names the trial that made an inherited clone)."""
        return " ".join(f"e{c.epoch}" + (f":{c.trial}" if c.trial not in ("", self.trial) else "")
                        + f"<-{c.source}" for c in self.clones) or "-"


def lineage_path(trials_dir: str, trial_id: str) -> str:
    """`<sweep>/trials/<trial id>/lineage.json`: the trial's latest lineage."""
    return os.path.join(trials_dir, trial_id, LINEAGE_FILE)


def read_lineage(trials_dir: str, trial_id: str) -> Lineage | None:
    """The trial's lineage as written when its latest Train run started (None if never)."""
    try:
        with open(lineage_path(trials_dir, trial_id)) as f:
            return Lineage.from_json(f.read())
    except (OSError, ValueError, KeyError):
        return None


def write_text(path: str, text: str) -> None:
    """Write `text` to `path` atomically (a reader never sees half a lineage)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def schedule_override(lineage: Lineage) -> dict:
    """The config `schedule` of a lineage: keys whose value never changed are left out."""
    return {k: v for k, v in lineage.schedule.items() if len(v) > 1}
