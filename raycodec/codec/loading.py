"""The one checkpoint resolver: every command that takes a checkpoint goes through it.

Accepted forms: a raycodec run folder (its newest checkpoint), a checkpoint folder, the
`state.pt` inside it, an `encodec` package `.th` (a plain state dict) and an audiocraft
compression checkpoint (the model under `best_state['model']`, adversaries under `adv_losses`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from raycodec.models import EncodecModel, build_from_settings, load_encodec_state, preset_settings

RAYCODEC, AUDIOCRAFT, ENCODEC = "raycodec", "audiocraft", "encodec"


@dataclass
class CheckpointSource:
    """What a checkpoint argument resolves to: generator weights plus the training parts."""

    path: str                  # the file read (state.pt or .th), absolute
    kind: str                  # raycodec | audiocraft | encodec
    model: dict                # generator weights to use (EMA / best state when kept)
    digest: str                # sha256 of the file's bytes: the source's identity
    parts: dict = field(default_factory=dict)  # of ema, adv_losses, balancer: what it has
    config: str | None = None  # raycodec: the training config YAML (the architecture)
    signature: str | None = None  # raycodec: the training run's signature
    epoch: int = 0

    @property
    def location(self) -> str:
        """The checkpoint folder of a raycodec checkpoint, else the file."""
        return str(Path(self.path).parent) if self.kind == RAYCODEC else self.path


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


def model_settings(cfg: Mapping | str) -> dict:
    """The generator settings of a config (`model` preset + `encodec/seanet/rvq` overrides)."""
    from omegaconf import OmegaConf

    from raycodec.config import model_overrides

    if isinstance(cfg, str):  # a checkpoint's saved YAML
        cfg = OmegaConf.create(cfg)
    return preset_settings(cfg["model"], **model_overrides(cfg))


def file_digest(path: str | Path) -> str:
    """sha256 (hex) of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _is_state_dict(obj) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(
        isinstance(v, torch.Tensor) for v in obj.values())


def _audiocraft(obj: dict) -> tuple[dict, dict] | None:
    """(model, parts) of an audiocraft checkpoint: a solver checkpoint keeps `best_state` =
    {'model': ...}, an exported package `best_state` = the state dict itself."""
    best = obj.get("best_state")
    model = best.get("model") if isinstance(best, dict) and "model" in best else best
    if not _is_state_dict(model):
        return None
    parts = {k: obj[k] for k in ("ema", "adv_losses", "balancer") if isinstance(obj.get(k), dict)}
    return model, parts


def _resolve_file(path: Path) -> CheckpointSource:
    from raycodec.train.checkpoint import as_training_checkpoint, eval_weights, is_training_state

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle/zip errors, disallowed globals: not a torch checkpoint
        raise ValueError(f"cannot read checkpoint {path}: {str(exc).splitlines()[0]}") from None
    digest = file_digest(path)
    if is_training_state(obj):
        ck = as_training_checkpoint(obj, path.parent)
        parts = {k: ck.solver[k] for k in ("ema", "adv_losses", "balancer") if k in ck.solver}
        return CheckpointSource(str(path), RAYCODEC, eval_weights(ck.solver), digest, parts,
                                ck.config, ck.signature, ck.epoch)
    if isinstance(obj, dict):
        found = _audiocraft(obj)
        if found is not None:
            return CheckpointSource(str(path), AUDIOCRAFT, found[0], digest, found[1])
        model = obj.get("model", obj)  # `{'model': state_dict}` wrappers, else the dict itself
        if _is_state_dict(model):
            return CheckpointSource(str(path), ENCODEC, model, digest)
    raise ValueError(f"{path} holds no model state dict (expected a raycodec checkpoint, an "
                     "`encodec` .th or an audiocraft checkpoint)")


def resolve_checkpoint(checkpoint: str | Path) -> CheckpointSource:
    """Resolve any accepted checkpoint form; ValueError with a one-line reason otherwise."""
    from raycodec.train.checkpoint import STATE_FILE, find_checkpoint_dir

    path = Path(checkpoint).expanduser().absolute()
    if not path.exists():
        raise ValueError(f"checkpoint not found: {path}")
    if path.is_dir():
        ckpt_dir = find_checkpoint_dir(path)
        if ckpt_dir is None:
            raise ValueError(f"no checkpoint ({STATE_FILE}) in {path} or its subfolders")
        path = ckpt_dir / STATE_FILE
    return _resolve_file(path)


def load_codec(checkpoint: str | Path, preset: str = "encodec_24khz") -> LoadedCodec:
    """A model in eval mode from any checkpoint form (`preset`: the architecture of a .th or
    audiocraft file; a raycodec checkpoint names its own). ValueError on unusable input."""
    source = resolve_checkpoint(checkpoint)
    if source.config is not None:
        settings = model_settings(source.config)
        from omegaconf import OmegaConf

        preset = str(OmegaConf.create(source.config).model)
    else:
        settings = preset_settings(preset)
    model = build_from_settings(settings)
    load_encodec_state(model, source.model)
    return LoadedCodec(model.eval(), settings, source.location, preset, source.signature,
                       {"source": source})
