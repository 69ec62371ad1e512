"""Training checkpoints: everything needed to resume exactly, written atomically.

Layout of a checkpoint directory: `state.pt` (torch.save of plain tensors and containers, loaded
with weights_only=True) and `meta.json` (epoch and step, readable without torch).
"""

from __future__ import annotations

import json
import os
import random
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
