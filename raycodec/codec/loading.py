"""Resolve a checkpoint argument (training checkpoint, run folder, `encodec` .th) to a model."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from raycodec.models import EncodecModel, build_from_settings, load_encodec_state, preset_settings


@dataclass
class LoadedCodec:
    """A model in eval mode plus where it came from and its identity."""

    model: EncodecModel
    settings: dict
    source: str  # absolute path of what was loaded
    preset: str
    signature: str | None = None  # training run signature, when known
    extra: dict = field(default_factory=dict)

    @property
    def identity(self) -> bytes:
        """16-byte digest of the architecture settings and every weight (see `model_identity`)."""
        if "identity" not in self.extra:
            self.extra["identity"] = model_identity(self.model, self.settings)
        return self.extra["identity"]


def model_identity(model: EncodecModel, settings: dict) -> bytes:
    """BLAKE2b-128 of the settings (JSON) and the state dict (names, shapes, bytes)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.digest()


def _settings_from_config(yaml_text: str) -> dict:
    from omegaconf import OmegaConf

    from raycodec.config import model_overrides

    cfg = OmegaConf.create(yaml_text)
    return preset_settings(cfg.model, **model_overrides(cfg))


def _eval_weights(solver: dict) -> dict:
    # The EMA holds only floating-point entries; buffers such as `inited` come from the model.
    state = dict(solver["model"])
    ema = solver.get("ema")
    if isinstance(ema, dict) and ema.get("state", {}).get("model"):
        state.update(ema["state"]["model"])
    return state


def _find_checkpoint_dir(path: Path) -> Path | None:
    from raycodec.train.checkpoint import STATE_FILE, latest_checkpoint_meta

    if (path / STATE_FILE).exists():
        return path
    meta = latest_checkpoint_meta(path)
    return Path(meta["path"]) if meta else None


def load_codec(checkpoint: str | Path, preset: str = "encodec_24khz") -> LoadedCodec:
    """Load a checkpoint dir, a run folder (latest checkpoint) or an `encodec` .th (`preset`).

    Raises ValueError with a one-line reason when the path cannot be used.
    """
    path = Path(checkpoint).expanduser().absolute()
    if not path.exists():
        raise ValueError(f"checkpoint not found: {path}")
    if path.is_dir():
        ckpt_dir = _find_checkpoint_dir(path)
        if ckpt_dir is None:
            raise ValueError(f"no checkpoint (state.pt) in {path} or its subfolders")
        from raycodec.train.checkpoint import META_FILE, load_checkpoint

        state = load_checkpoint(ckpt_dir)
        if "solver" not in state or "config" not in state:
            raise ValueError(f"{ckpt_dir} is not a raycodec training checkpoint")
        settings = _settings_from_config(state["config"])
        model = build_from_settings(settings)
        model.load_state_dict(_eval_weights(state["solver"]))
        signature = None
        meta = ckpt_dir / META_FILE
        if meta.exists():
            signature = json.loads(meta.read_text()).get("signature")
        from omegaconf import OmegaConf

        name = OmegaConf.create(state["config"]).model
        return LoadedCodec(model.eval(), settings, str(ckpt_dir), name, signature)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle/zip errors: not a torch file
        raise ValueError(f"cannot read checkpoint {path}: {exc}") from None
    settings = preset_settings(preset)
    model = build_from_settings(settings)
    state = obj.get("model", obj) if isinstance(obj, dict) else obj
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state dict")
    load_encodec_state(model, state)
    return LoadedCodec(model.eval(), settings, str(path), preset)
