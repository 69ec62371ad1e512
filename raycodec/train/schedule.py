"""Hyperparameter schedules: `losses.*`, `adversarial.every` and `optim.lr` per epoch.

A config's `schedule` (checked by `raycodec.config.schema.check_schedule`) is piecewise constant
over epochs. `at_epoch` sets a GANStep to the values of one epoch between two epochs: the balancer
keeps its gradient-norm EMA, both optimizers keep their moments, the data stream goes on. PBT
trials hand their hyperparameter history on as such a schedule (raycodec.tune.pbt).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from raycodec.config.schema import value_at

LR, EVERY = "optim.lr", "adversarial.every"


def schedulable_keys(cfg: Mapping) -> list[str]:
    """Every key a schedule may change: `losses.<name>`, `adversarial.every`, `optim.lr`."""
    return [f"losses.{name}" for name in cfg["losses"]] + [EVERY, LR]


def plain_value(cfg: Mapping, key: str) -> Any:
    """The config's own value of a dotted `section.leaf` key."""
    section, _, leaf = key.partition(".")
    return cfg[section][leaf]


def values_at(cfg: Mapping, epoch: int) -> dict[str, Any]:
    """The value of every schedulable key during `epoch` (0-based)."""
    schedule = cfg.get("schedule") or {}
    return {key: value_at(schedule.get(key), plain_value(cfg, key), epoch)
            for key in schedulable_keys(cfg)}


def history(cfg: Mapping, keys: list[str]) -> dict[str, dict[int, Any]]:
    """`{key: {epoch: value}}` from epoch 0 on: the config's value, then its schedule."""
    schedule = cfg.get("schedule") or {}
    out = {}
    for key in keys:
        points = {int(e): v for e, v in (schedule.get(key) or {}).items()}
        out[key] = {0: points.pop(0, plain_value(cfg, key)), **dict(sorted(points.items()))}
    return out


def _set_loss_weight(step, name: str, weight: float) -> None:
    """Move a loss between the balanced and the logged-only ones; the EMA of the others stays."""
    if name in ("adv", "feat"):
        keys = [f"{name}_{n}" for n, a in step.adversaries.items()
                if name == "adv" or a.feat is not None]
        (step.zero_weight.discard if weight > 0 else step.zero_weight.add)(name)
    else:
        keys = [name]
        criterion = step.aux_losses.pop(name, None) or step.info_losses.pop(name)
        (step.aux_losses if weight > 0 else step.info_losses)[name] = criterion
    for key in keys:
        if weight > 0:
            step.balancer.weights[key] = weight
        else:
            step.balancer.weights.pop(key, None)


def _optimizers(step) -> list:
    return [step.optimizer, *(a.optimizer for a in step.adversaries.values())]


def current_values(step) -> dict[str, Any]:
    """The values a GANStep trains with now, under the schedule's key names."""
    weights = step.balancer.weights
    out = {LR: float(step.optimizer.param_groups[0]["lr"]), EVERY: step.adv_every}
    for kind in ("adv", "feat"):
        found = [w for k, w in weights.items() if k.startswith(kind + "_")]
        out[f"losses.{kind}"] = found[0] if found else 0.0
    out.update({f"losses.{k}": weights.get(k, 0.0) for k in (*step.aux_losses, *step.info_losses)})
    return out


def apply(step, values: Mapping[str, Any]) -> dict[str, Any]:
    """Set `values` ({schedulable key: value}) on a GANStep; returns those that changed."""
    now = current_values(step)
    changed = {}
    for key, value in values.items():
        if key in now and float(now[key]) == float(value):
            continue
        changed[key] = value
        if key == LR:
            for optimizer in _optimizers(step):  # the discriminators share optim.lr
                for group in optimizer.param_groups:
                    group["lr"] = float(value)
        elif key == EVERY:
            step.adv_every = float(value)
        else:
            _set_loss_weight(step, key.partition(".")[2], float(value))
    return changed


def at_epoch(step, cfg: Mapping, epoch: int, tracker=None, step_idx: int = 0) -> dict[str, Any]:
    """The epoch boundary: set this epoch's values (also after a resume, whose optimizer state
    brought the saved learning rate back) and track the scheduled ones; returns the changes."""
    values = values_at(cfg, epoch)
    changed = apply(step, values)
    scheduled = {k: v for k, v in values.items() if k in (cfg.get("schedule") or {})}
    if tracker is not None and scheduled:
        tracker.log_hparams(scheduled, step_idx, epoch)
    return changed
