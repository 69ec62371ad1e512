"""`evaluate.every`: the heavy evaluation (ViSQOL, PESQ, STOI, ...) during training.

Rank 0 snapshots the evaluation weights and launches a separate Ray task on held-out files; the
training workers go on at once, and the results are logged to Aim (subset `evaluate`, keys
`<metric>_<bw>kbps`) when they are ready, at the end of a later epoch or of training.
"""

from __future__ import annotations

import math
import time
import warnings

import ray
import torch

from raycodec.tracking.names import metric_key
from raycodec.train.console import say

DRAIN_TIMEOUT_S = 600.0  # at the end of training: how long to wait for pending evaluations


def evaluate_weights(state: dict, settings: dict, paths: list[str], bandwidths: list[float],
                     max_seconds: float | None = None, speech: bool = True) -> dict[str, float]:
    """Mean evaluation metrics of the model `settings` + `state` over the first `max_seconds`
    (None: all) of each file of `paths`, per bandwidth."""
    from raycodec.codec.audio import AudioSource
    from raycodec.evaluate.evaluator import METRICS, clip_metrics
    from raycodec.models import build_from_settings

    torch.set_num_threads(1)  # one CPU, as requested: leave the others to training
    model = build_from_settings(settings)
    model.load_state_dict(state)
    model.eval()
    sums: dict[str, list[float]] = {}
    for path in paths:
        with AudioSource(path, model.sample_rate, model.channels) as src:
            n = src.length if max_seconds is None else \
                min(src.length, math.ceil(max_seconds * model.sample_rate))
            x = src.read(0, n)  # a seek-based read: long files cost only what is evaluated
        for bw in bandwidths:
            for name, value in clip_metrics(model, x, bw, speech).items():
                if name in METRICS and value is not None and math.isfinite(value):
                    sums.setdefault(metric_key(name, bw), []).append(float(value))
    return {k: sum(v) / len(v) for k, v in sums.items()}


class BackgroundEvaluations:
    """Rank 0's evaluation tasks in flight, logged to the tracker as they finish."""

    def __init__(self, tracker, settings: dict, paths: list[str], bandwidths: list[float],
                 max_seconds: float | None = None):
        self.tracker, self.settings, self.max_seconds = tracker, settings, max_seconds
        self.paths, self.bandwidths = list(paths), [float(b) for b in bandwidths]
        self.pending: dict = {}  # ObjectRef -> (step, epoch)
        self._task = ray.remote(num_cpus=1)(evaluate_weights)

    def launch(self, model: torch.nn.Module, step: int, epoch: int) -> None:
        """Start evaluating a snapshot of `model`'s weights; returns at once."""
        state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        ref = self._task.remote(state, self.settings, self.paths, self.bandwidths,
                                self.max_seconds)
        self.pending[ref] = (step, epoch)

    def poll(self, timeout: float = 0.0) -> int:
        """Log the evaluations that finished (within `timeout` s); returns how many remain."""
        deadline = time.monotonic() + timeout
        while self.pending:
            left = max(0.0, deadline - time.monotonic())
            done, _ = ray.wait(list(self.pending), num_returns=1, timeout=left)
            if not done:
                break
            step, epoch = self.pending.pop(done[0])
            try:
                metrics = ray.get(done[0])
            except Exception as exc:  # a broken evaluation must not stop training
                warnings.warn(f"evaluation of epoch {epoch} failed: {exc!r}", stacklevel=2)
                continue
            self.tracker.log_metrics(metrics, step, epoch, "evaluate")
            shown = ", ".join(f"{k} {v:.3g}" for k, v in sorted(metrics.items())
                              if k.startswith(("visqol", "pesq", "stoi")))
            say(f"[raycodec] evaluation of epoch {epoch}: {shown or 'no heavy metric'}")
        return len(self.pending)

    def drain(self) -> None:
        """At the end of training: wait (bounded) for the evaluations still running."""
        if self.poll(DRAIN_TIMEOUT_S):
            warnings.warn(f"{len(self.pending)} evaluation(s) still running after "
                          f"{DRAIN_TIMEOUT_S:.0f} s were dropped", stacklevel=2)
            for ref in self.pending:
                ray.cancel(ref)
