"""Fine-tuning with `continue_from`: a new experiment initialised from another checkpoint.

audiocraft's semantics: the generator starts from the source's evaluation weights (its weight EMA
or `best_state` when it has one) before step 0; the parts named in `continue_from_parts` that the
source has are taken too: `ema` (the weight EMA), `adv_losses` (each discriminator and its
optimizer's moments; learning rate and betas stay those of the new config) and `balancer` (its
gradient-norm EMA, for the losses both runs balance). The generator's optimizer starts afresh.
`continue_from_parts=[model]` takes only the generator. Resuming the experiment takes precedence.
"""

from __future__ import annotations

from dataclasses import dataclass

from raycodec.models import load_encodec_state
from raycodec.models.loading import map_key

PARTS = ("model", "ema", "adv_losses", "balancer")


@dataclass
class InitState:
    """What a run takes from its `continue_from` source (plain tensors: it travels through
    Ray's object store to every worker, so the path need not exist on the workers' nodes)."""

    source: str
    kind: str
    digest: str
    model: dict | None = None
    ema: dict | None = None
    adv_losses: dict | None = None
    balancer: dict | None = None

    @property
    def taken(self) -> list[str]:
        """The parts this run takes, in PARTS order."""
        return [p for p in PARTS if getattr(self, p) is not None]


def load_init(cfg) -> InitState | None:
    """Resolve `cfg.continue_from` (None when unset); ValueError names an unusable source."""
    if not cfg.get("continue_from"):
        return None
    from raycodec.codec.loading import resolve_checkpoint

    try:
        source = resolve_checkpoint(cfg.continue_from)
    except ValueError as exc:
        raise ValueError(f"continue_from: {exc}") from None
    wanted = set(cfg.continue_from_parts)
    init = InitState(source.path, source.kind, source.digest,
                     model=source.model if "model" in wanted else None)
    for part in ("ema", "adv_losses", "balancer"):
        if part in wanted and part in source.parts:
            setattr(init, part, source.parts[part])
    return init


def init_model(model, init: InitState) -> None:
    """Load the source's generator weights into `model` (ValueError names mismatching keys)."""
    if init.model is None:
        return
    try:
        load_encodec_state(model, init.model)
    except ValueError as exc:
        raise ValueError(f"continue_from {init.source}: the generator {exc}") from None


def _load_adversary(name: str, adversary, state: dict, source: str) -> None:
    optimizer = adversary.optimizer
    settings = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
    try:  # a copy: AdversarialLoss pops its `optimizer` entry
        result = adversary.load_state_dict(dict(state), strict=False)
    except (RuntimeError, ValueError) as exc:  # misshapen tensors, foreign optimizer state
        reason = str(exc).strip().splitlines()[-1].strip()
        raise ValueError(f"continue_from {source}: discriminator {name}: {reason}") from None
    bad = [f"missing {k}" for k in result.missing_keys] + \
        [f"unexpected {k}" for k in result.unexpected_keys]
    if bad:
        raise ValueError(f"continue_from {source}: discriminator {name} does not match ("
                         + ", ".join(bad[:6]) + (", ..." if len(bad) > 6 else "") + ")")
    for group, saved in zip(optimizer.param_groups, settings):  # the new config's lr, betas
        group.update(saved)


def init_solver(step_fn, init: InitState) -> None:
    """Load the source's discriminators, weight EMA and balancer into a fresh GANStep."""
    if init.adv_losses is not None:
        for name, adversary in step_fn.adversaries.items():
            prefix = name + "."
            state = {k[len(prefix):]: v for k, v in init.adv_losses.items()
                     if k.startswith(prefix)}
            if state:  # a discriminator the source lacks starts afresh
                _load_adversary(name, adversary, state, init.source)
    if init.ema is not None and step_fn.ema is not None:
        saved = {map_key(k): v for k, v in init.ema["state"]["model"].items()}
        # Entries the source's EMA lacks (e.g. buffers it does not average) start from the
        # loaded model, which the EMA was built from.
        saved = {**{k: v for k, v in step_fn.ema.state.items() if k not in saved}, **saved}
        try:
            step_fn.ema.load_state_dict({"state": {"model": saved},
                                         "count": float(init.ema.get("count", 0.0))})
        except ValueError as exc:
            raise ValueError(f"continue_from {init.source}: the weight {exc}") from None
    if init.balancer is not None:
        names = set(step_fn.balancer.weights)
        total, fix = init.balancer.get("total", {}), init.balancer.get("fix", {})
        shared = sorted(names & set(total) & set(fix))
        if shared:
            step_fn.balancer.load_state_dict({"total": {k: total[k] for k in shared},
                                              "fix": {k: fix[k] for k in shared}})


def build_solver(cfg, init: InitState | None = None, device="cpu"):
    """The generator of `cfg` and its GANStep, initialised from `init` when given (the
    generator before the step is built, so that the weight EMA starts from its weights)."""
    from raycodec.codec.loading import model_settings
    from raycodec.models import build_from_settings
    from raycodec.train.builders import build_step

    model = build_from_settings(model_settings(cfg))
    if init is not None:
        init_model(model, init)
    step_fn = build_step(model, cfg, device)
    if init is not None:
        init_solver(step_fn, init)
    return step_fn


def check_init(cfg, init: InitState) -> None:
    """Apply `init` to the model and solver of `cfg` on CPU: a mismatch fails before Ray runs."""
    build_solver(cfg, init, "cpu")
