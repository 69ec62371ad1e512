"""Training checkpoints: everything needed to resume exactly, written atomically.

This module owns the layout. A checkpoint directory holds `state.pt` (torch.save of plain tensors
and containers, loaded with weights_only=True): `solver` (GANStep.state_dict: model, optimizer,
adv_losses, balancer, ema), `epoch`, `step`, `rng` and `config` (the resolved YAML); and
`meta.json` (epoch, step and signature, readable without torch). A run folder holds one
checkpoint directory per saved epoch.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

STATE_FILE, META_FILE = "state.pt", "meta.json"


def rng_state(extra: dict[str, torch.Generator] | None = None) -> dict:
    """Python, numpy and torch RNG states (and named generators) as weights_only-safe values."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": {"version": version, "state": list(internal), "gauss": gauss},
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": pos,
                  "has_gauss": has_gauss, "cached": cached},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    for name, gen in (extra or {}).items():
        state[f"generator.{name}"] = gen.get_state()
    return state


def set_rng_state(state: dict, extra: dict[str, torch.Generator] | None = None) -> None:
    """Restore what `rng_state` saved."""
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    npy = state["numpy"]
    np.random.set_state((npy["kind"], npy["keys"].numpy().astype(np.uint32), npy["pos"],
                         npy["has_gauss"], npy["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    for name, gen in (extra or {}).items():
        if f"generator.{name}" in state:
            gen.set_state(state[f"generator.{name}"])


def save_checkpoint(directory: str | Path, state: dict, meta: dict) -> Path:
    """Write state.pt and meta.json into `directory` atomically (temp file + rename)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / (STATE_FILE + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, directory / STATE_FILE)
    tmp_meta = directory / (META_FILE + ".tmp")
    tmp_meta.write_text(json.dumps(meta))
    os.replace(tmp_meta, directory / META_FILE)
    return directory


def load_checkpoint(directory: str | Path) -> dict:
    """Load a checkpoint written by `save_checkpoint` (weights_only: no code runs on load)."""
    path = Path(directory) / STATE_FILE
    if not path.exists():
        raise ValueError(f"no {STATE_FILE} in checkpoint directory {directory}")
    return torch.load(path, map_location="cpu", weights_only=True)


def latest_checkpoint_meta(run_dir: str | Path) -> dict | None:
    """meta.json of the newest checkpoint under a Ray Train run folder (None if there is none)."""
    metas = []
    for meta in Path(run_dir).glob(f"*/{META_FILE}"):
        try:
            data = json.loads(meta.read_text())
        except (OSError, ValueError):
            continue  # a checkpoint being written or a broken one: ignore it
        if (meta.parent / STATE_FILE).exists():
            metas.append(dict(data, path=str(meta.parent)))
    return max(metas, key=lambda m: (m["step"], m["path"])) if metas else None


@dataclass
class TrainingCheckpoint:
    """A raycodec training checkpoint as read back from its directory."""

    directory: str
    solver: dict
    epoch: int
    step: int
    rng: dict
    config: str  # the resolved config YAML: it describes the architecture
    signature: str | None = None


def write_training_checkpoint(directory: str | Path, solver: dict, epoch: int, step: int,
                              rng: dict, config: str, signature: str) -> Path:
    """Write the checkpoint of `epoch`/`step` (state.pt + meta.json) into `directory`."""
    state = {"solver": solver, "epoch": epoch, "step": step, "rng": rng, "config": config}
    return save_checkpoint(directory, state, {"epoch": epoch, "step": step,
                                              "signature": signature})


def is_training_state(obj) -> bool:
    """Whether a loaded state.pt is a raycodec training checkpoint (and not a bare state dict)."""
    return isinstance(obj, dict) and isinstance(obj.get("solver"), dict) and "config" in obj


def as_training_checkpoint(state: dict, directory: str | Path) -> TrainingCheckpoint:
    """Wrap a loaded state.pt (see `is_training_state`); the signature comes from meta.json."""
    meta = Path(directory) / META_FILE
    signature = None
    if meta.exists():
        try:
            signature = json.loads(meta.read_text()).get("signature")
        except (OSError, ValueError):
            pass  # an unreadable meta.json only loses the signature
    return TrainingCheckpoint(str(directory), state["solver"], int(state.get("epoch", 0)),
                              int(state.get("step", 0)), state.get("rng", {}),
                              str(state["config"]), signature)


def find_checkpoint_dir(path: str | Path) -> Path | None:
    """`path` itself when it holds state.pt, else the newest checkpoint of a run folder."""
    path = Path(path)
    if (path / STATE_FILE).exists():
        return path
    meta = latest_checkpoint_meta(path)
    return Path(meta["path"]) if meta else None


def eval_weights(solver: dict) -> dict:
    """The weights to evaluate or export: the model's, with the weight EMA on top when kept."""
    # The EMA holds only floating-point entries; buffers such as `inited` come from the model.
    state = dict(solver["model"])
    ema = solver.get("ema")
    if isinstance(ema, dict) and ema.get("state", {}).get("model"):
        state.update(ema["state"]["model"])
    return state
