"""Aim tracking for one experiment: one run per signature, resumed on restart, rank 0 only.

Tracking must never kill a multi-day run: every call warns instead of raising once the run is
open, and a run that cannot be opened at all is reported before training starts.
"""

from __future__ import annotations

import functools
import os
import time
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np


def resolve_repo(repo: str | os.PathLike) -> str:
    """An `aim://host:port` URL as is, else an absolute, writable local directory."""
    repo = str(repo)
    if repo.startswith("aim://"):
        return repo
    path = Path(repo).expanduser().absolute()
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".raycodec_write_test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise ValueError(f"Aim repo {path} is not writable ({exc.strerror}); set "
                         "tracking.repo to a writable directory or an aim://host:port server") \
            from None
    return str(path)


def find_run(repo: str, experiment: str, name: str) -> str | None:
    """Hash of the Aim run named `name` in `experiment` (the one lookup every caller uses)."""
    import aim

    # Names and experiments are queryable at once; params only after Aim reindexes.
    query = f"run.name == '{name}' and run.experiment == '{experiment}'"
    runs = aim.Repo.from_path(repo, init=True).query_runs(query, report_mode=0).iter_runs()
    hashes = [c.run.hash for c in runs]
    return hashes[0] if hashes else None


def _safe(method):
    """Turn tracker errors into warnings: tracking hiccups must not stop training."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        if self.run is None:
            return None
        try:
            return method(self, *args, **kwargs)
        except Exception as exc:  # any Aim/storage failure
            warnings.warn(f"Aim tracking failed in {method.__name__}: {exc!r}", stacklevel=2)
            return None
    return wrapper


class AimTracker:
    """The Aim run named `signature` in `experiment`; reopened when it already exists."""

    def __init__(self, repo: str, experiment: str, signature: str,
                 hparams: Mapping | None = None, attempts: int = 5):
        import aim

        self.repo = resolve_repo(repo)
        self.experiment, self.signature = experiment, signature
        self.run = None
        last_error: Exception | None = None
        # Lock races when many trials start at once: retry with backoff.
        for attempt in range(attempts):
            try:
                existing = self._find_run_hash()
                self.run = aim.Run(run_hash=existing, repo=self.repo, experiment=experiment,
                                   force_resume=existing is not None,
                                   system_tracking_interval=None, capture_terminal_logs=False)
                break
            except Exception as exc:  # retried below, reported if it never works
                last_error = exc
                time.sleep(0.5 * 2 ** attempt)
        if self.run is None:
            raise RuntimeError(f"cannot open an Aim run in {self.repo}: {last_error!r}")
        self.resumed = existing is not None
        self.hash = self.run.hash
        self._set_identity(hparams)

    def _find_run_hash(self) -> str | None:
        return find_run(self.repo, self.experiment, self.signature)

    @_safe
    def _set_identity(self, hparams: Mapping | None) -> None:
        self.run.name = self.signature
        self.run["signature"] = self.signature
        if hparams is not None:
            self.run["hparams"] = _plain(hparams)

    @_safe
    def set(self, key: str, value) -> None:
        """Store a run-level param (e.g. trial id, status)."""
        self.run[key] = _plain(value)

    @_safe
    def log_metrics(self, metrics: Mapping[str, float], step: int, epoch: int | None = None,
                    subset: str = "train") -> None:
        """Track scalar metrics under context {'subset': subset}."""
        for name, value in metrics.items():
            self.run.track(float(value), name=name, step=step, epoch=epoch,
                           context={"subset": subset})

    @_safe
    def log_hparams(self, values: Mapping[str, float], step: int, epoch: int) -> None:
        """Track scheduled hyperparameters (`losses.adv`, ...) per epoch, context
        {'subset': 'schedule'}: one sequence per hyperparameter."""
        for name, value in values.items():
            self.run.track(float(value), name=name, step=step, epoch=epoch,
                           context={"subset": "schedule"})

    @_safe
    def log_audio(self, name: str, audio, sample_rate: int, step: int,
                  epoch: int | None = None, context: Mapping | None = None,
                  caption: str = "") -> None:
        """Track a [C, T] waveform as WAV at its true sample rate."""
        import aim

        data = np.asarray(_numpy(audio), dtype=np.float32).T  # Aim wants (T, C)
        self.run.track(aim.Audio(np.clip(data, -1, 1), rate=int(sample_rate), caption=caption),
                       name=name, step=step, epoch=epoch, context=dict(context or {}))

    @_safe
    def log_image(self, name: str, image: np.ndarray, step: int, epoch: int | None = None,
                  context: Mapping | None = None, caption: str = "") -> None:
        """Track an image (H x W uint8, e.g. a mel spectrogram from `mel_image`)."""
        import aim

        self.run.track(aim.Image(image, caption=caption), name=name, step=step, epoch=epoch,
                       context=dict(context or {}))

    def close(self) -> None:
        """Finish the run (safe to call twice)."""
        if self.run is not None:
            try:
                self.run.close()
            except Exception as exc:  # closing must not mask the training result
                warnings.warn(f"Aim run close failed: {exc!r}", stacklevel=2)
            self.run = None


def mel_image(audio, sample_rate: int, n_mels: int = 80) -> np.ndarray:
    """Log-mel spectrogram of a [C, T] waveform as a uint8 image, low frequencies at the bottom."""
    import torch
    import torchaudio

    wav = torch.as_tensor(_numpy(audio), dtype=torch.float32).mean(dim=0)
    mel = torchaudio.transforms.MelSpectrogram(sample_rate, n_fft=1024, hop_length=256,
                                               n_mels=n_mels)(wav)
    db = 10 * torch.log10(mel.clamp_min(1e-10))
    db = db.clamp_min(db.max() - 80)
    img = (db - db.min()) / (db.max() - db.min() + 1e-9) * 255
    return img.flip(0).to(torch.uint8).numpy()


def _numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


def _plain(value):
    """OmegaConf and other mappings -> plain dicts and lists that Aim stores."""
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(value, (DictConfig, ListConfig)):
            return OmegaConf.to_container(value, resolve=True)
    except ImportError:  # pragma: no cover - omegaconf is a dependency
        pass
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
