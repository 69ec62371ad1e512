"""Final status of each trial in its Aim run, written from the sweep's driver.

Rank 0 of a trial opens the Aim run (full config as hparams, trial id, sampled values, status
`running`); only the driver knows how the trial ended (ASHA stops a trial by killing it).
Statuses already written are remembered in `<sweep folder>/aim_status.json`, so that the final
pass (and a resumed sweep) only reopens the runs whose status changed.
"""

from __future__ import annotations

import json
import os
import warnings

from ray import tune

from raycodec.tracking.aim_tracker import find_run
from raycodec.tune.trial import COMPLETED, ERRORED, SweepContext, nested, trial_status

STATUS_FILE = "aim_status.json"


def _open_run(repo: str, experiment: str, trial_id: str):
    """(run, created): the trial's run, reopened without forcing its lock when possible."""
    import aim

    kwargs = dict(repo=repo, system_tracking_interval=None, capture_terminal_logs=False)
    found = find_run(repo, experiment, trial_id)
    if found is None:
        run = aim.Run(experiment=experiment, **kwargs)
        run.name = trial_id
        return run, True
    try:
        # Waits up to 10 s for a writer that is winding down; a dead writer's lock is freed.
        return aim.Run(run_hash=found, force_resume=False, **kwargs), False
    except Exception:  # still locked: a writer on another machine that died, most likely
        return aim.Run(run_hash=found, force_resume=True, **kwargs), False


def set_status(context: SweepContext, trial_id: str, status: str, sampled: dict) -> None:
    """Set `status` in the trial's Aim run (creating the run, with the full config, if the trial
    died before rank 0 opened it); warns instead of raising: tracking must not stop a sweep."""
    from omegaconf import OmegaConf

    try:
        run, created = _open_run(context.aim_repo, context.spec.name, trial_id)
        try:
            if created:  # never reached training: still one run per trial
                run["trial_id"], run["sweep"] = trial_id, context.spec.name
                run["sampled"] = nested(sampled)
                try:
                    run["hparams"] = OmegaConf.to_container(context.trial_config(sampled))
                except ValueError as exc:  # a config error is why it died
                    run["error"] = str(exc)
            run["status"] = status
        finally:
            run.close()
    except Exception as exc:  # an unreachable repo must not fail the sweep
        warnings.warn(f"Aim: cannot set the status of trial {trial_id}: {exc!r}", stacklevel=2)
        return
    _remember(context, trial_id, status)


def _status_path(context: SweepContext) -> str:
    return os.path.join(context.sweep_dir, STATUS_FILE)


def written_statuses(context: SweepContext) -> dict[str, str]:
    """{trial_id: status} already written to Aim by this sweep's driver."""
    try:
        with open(_status_path(context)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def _remember(context: SweepContext, trial_id: str, status: str) -> None:
    known = written_statuses(context)
    known[trial_id] = status
    tmp = _status_path(context) + ".tmp"
    with open(tmp, "w") as f:
        json.dump(known, f, indent=1, sort_keys=True)
    os.replace(tmp, _status_path(context))


class AimStatusCallback(tune.Callback):
    """Sets `status` in the Aim run of each trial as soon as it is safe to reopen it."""

    def __init__(self, context: SweepContext):
        self.context = context

    def on_trial_complete(self, iteration: int, trials: list, trial, **info) -> None:
        """Completed trials closed their run; early-stopped ones may still be winding down and
        are marked when the sweep ends (two writers on one run corrupt it)."""
        status = trial_status(trial.status, trial.last_result, self.context.spec.max_t)
        if status == COMPLETED:
            set_status(self.context, trial.trial_id, status, trial.config)

    def on_trial_error(self, iteration: int, trials: list, trial, **info) -> None:
        """An errored trial's Train workers are gone (or going) once Tune sees the error."""
        set_status(self.context, trial.trial_id, ERRORED, trial.config)
