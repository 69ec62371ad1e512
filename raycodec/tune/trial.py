"""One Tune trial: the Ray Train job of a sampled config, named after the trial id.

Train V2 trainers cannot be passed to `Tuner` directly: a Tune *function* trainable builds the
TorchTrainer with `TuneReportCallback`, which forwards every per-epoch report to Tune (and ASHA).
"""

from __future__ import annotations

import os
from typing import Any

from omegaconf import DictConfig

from raycodec.config import experiment_signature
from raycodec.tune.spec import plain_value, trial_config

# Final statuses, as the table and the Aim runs show them.
COMPLETED, STOPPED, ERRORED, UNFINISHED = "completed", "stopped_early", "errored", "unfinished"


def nested(flat: dict[str, Any]) -> dict:
    """{'losses.adv': 2.0} -> {'losses': {'adv': 2.0}} (Aim params group by section)."""
    out: dict = {}
    for key, value in flat.items():
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = plain_value(value)
    return out


def trial_run(context: dict, cfg: DictConfig, trial_id: str, sampled: dict) -> dict:
    """The run dict of `build_trainer`: Train run, checkpoints and Aim run named by trial id."""
    # The trial id survives `Tuner.restore`, so a restarted trial finds its checkpoints again;
    # the config signature would not do: two trials may draw the same values.
    storage = context["trials_dir"]
    return {
        "signature": trial_id, "name": trial_id, "storage_path": storage,
        "run_dir": os.path.join(storage, trial_id), "aim_repo": context["aim_repo"],
        "aim_params": {"sweep": context["name"], "trial_id": trial_id,
                       "sampled": nested(sampled), "status": "running",
                       "config_signature": experiment_signature(cfg, context.get("init_digest"))},
    }


def run_trial(config: dict, context: dict) -> None:
    """Tune function trainable: build the trial's config and TorchTrainer, then fit it."""
    from ray import tune
    from ray.tune.integration.ray_train import TuneReportCallback

    from raycodec.train.job import build_trainer

    trial_id = tune.get_context().get_trial_id()
    cfg = trial_config(context, config)
    # Every trial starts from the same `continue_from` weights, put in the object store once.
    trainer = build_trainer(cfg, trial_run(context, cfg, trial_id, config),
                            callbacks=[TuneReportCallback()], init=context.get("init"))
    if trainer is None:  # its last epoch was checkpointed before the sweep was interrupted
        return
    # A diverged or crashed run raises here: Tune marks the trial errored, the sweep goes on.
    trainer.fit()


def trial_status(status: str, last_result: dict | None, max_t: int) -> str:
    """completed / stopped_early / errored / unfinished, from Tune's trial status and result."""
    if status == "ERROR":
        return ERRORED
    if status != "TERMINATED":
        return UNFINISHED  # pending, running or paused when the sweep was interrupted
    epoch = (last_result or {}).get("epoch") or 0
    return COMPLETED if epoch >= max_t else STOPPED
