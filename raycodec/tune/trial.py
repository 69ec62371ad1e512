"""One Tune trial: the Ray Train job of a sampled config, named after the trial id.

Train V2 trainers cannot be passed to `Tuner` directly: a Tune *function* trainable builds the
TorchTrainer with `TuneReportCallback`, which forwards every per-epoch report to Tune (and ASHA).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig

from raycodec.config import experiment_signature
from raycodec.train.plan import JobPlan, RunInfo
from raycodec.tune.spec import SweepSpec, plain_value

# Final statuses, as the table and the Aim runs show them.
COMPLETED, STOPPED, ERRORED, UNFINISHED = "completed", "stopped_early", "errored", "unfinished"


@dataclass
class SweepContext:
    """What the sweep's driver, its status callback and its reports share (small: Tune pickles
    the callback with its state; the trials get the data through `run_trial`'s `plan`)."""

    spec: SweepSpec
    sweep_dir: str
    aim_repo: str

    @property
    def trials_dir(self) -> str:
        """`<sweep folder>/trials`: each trial's Ray Train run and checkpoints."""
        return os.path.join(self.sweep_dir, "trials")

    def trial_config(self, sampled: dict[str, Any], experiment: bool = True) -> DictConfig:
        """The config a trial with these sampled values runs (`SweepSpec.trial_config`)."""
        return self.spec.trial_config(sampled, experiment)


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


def trial_run(context: SweepContext, cfg: DictConfig, trial_id: str, sampled: dict,
              init_digest: str | None = None) -> RunInfo:
    """The trial's run: Train run, checkpoints and Aim run named by its trial id."""
    # The trial id survives `Tuner.restore`, so a restarted trial finds its checkpoints again;
    # the config signature would not do: two trials may draw the same values.
    storage = context.trials_dir
    return RunInfo(
        signature=trial_id, name=trial_id, storage_path=storage,
        run_dir=os.path.join(storage, trial_id), aim_repo=context.aim_repo,
        aim_params={"sweep": context.spec.name, "trial_id": trial_id,
                    "sampled": nested(sampled), "status": "running",
                    "config_signature": experiment_signature(cfg, init_digest)},
    )


def run_trial(config: dict, context: SweepContext, plan: JobPlan) -> None:
    """Tune function trainable: the trial's config and TorchTrainer, fitted.

    `plan` is the sweep's, prepared once by the driver: manifest tables and `continue_from`
    weights come from it (through the object store), nothing is read or checked again.
    """
    from ray import tune
    from ray.tune.integration.ray_train import TuneReportCallback

    from raycodec.train.job import build_trainer

    trial_id = tune.get_context().get_trial_id()
    cfg = context.trial_config(config)
    run = trial_run(context, cfg, trial_id, config, plan.init_digest)
    trainer = build_trainer(plan.for_trial(cfg, run), callbacks=[TuneReportCallback()])
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
