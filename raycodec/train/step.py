"""One EnCodec GAN training step (audiocraft's compression solver `run_step`), DDP-safe.

Order: generator forward; discriminator update(s) with probability 1 / `adversarial.every`
(drawn from a generator shared by all ranks); balanced losses; ONE backward for the balanced
gradient and the commitment penalty; clipping, optimizer step, weight EMA.
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping

import torch
import torch.distributed as dist
from torch import nn

from raycodec.adversarial.losses import AdversarialLoss, at_least_fp32
from raycodec.distrib import all_ranks_true, collective_device, world_size, wrap_ddp
from raycodec.losses.balancer import Balancer
from raycodec.train.allocator import tune_malloc
from raycodec.train.ema import ModelEMA


class PhaseTimer:
    """Accumulates wall time per named phase; `sync` (e.g. cuda.synchronize) brackets each."""

    def __init__(self, sync: Callable[[], None] | None = None):
        self.sync = sync or (lambda: None)
        self.totals: dict[str, float] = defaultdict(float)
        self.counts: dict[str, int] = defaultdict(int)

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        self.sync()
        start = time.perf_counter()
        try:
            yield
        finally:
            self.sync()
            self.totals[name] += time.perf_counter() - start
            self.counts[name] += 1


def _no_timer(name: str) -> contextlib.nullcontext:
    return contextlib.nullcontext()


def to_floats(metrics: Mapping[str, torch.Tensor | float]) -> dict[str, float]:
    """Tensors -> Python floats with a single device sync."""
    keys = [k for k, v in metrics.items() if isinstance(v, torch.Tensor)]
    out = {k: float(v) for k, v in metrics.items() if not isinstance(v, torch.Tensor)}
    if keys:
        values = torch.stack([metrics[k].detach().float().reshape(()).cpu() for k in keys]).tolist()
        out.update(zip(keys, values))
    return dict(sorted(out.items()))


def average_metrics(metrics: Mapping[str, float]) -> dict[str, float]:
    """Average float metrics across ranks (one all_reduce; every rank passes the same keys)."""
    if world_size() == 1:
        return dict(metrics)
    keys = sorted(metrics)
    values = torch.tensor([float(metrics[k]) for k in keys], dtype=torch.float64)
    values = collective_device(values)
    dist.all_reduce(values)
    return dict(zip(keys, (values / world_size()).tolist()))


class GANStep:
    """Callable training step: `step(batch, step_idx, rng) -> dict[str, float]`.

    `model` may be DDP-wrapped; `adversaries` maps names to `AdversarialLoss`; `aux_losses` are
    balanced, `info_losses` only logged. Metric names follow audiocraft (`d_loss`, `d_<adv>`,
    `adv_<adv>`, `feat_<adv>`, `adv`, `feat`, aux names, `penalty`, `bandwidth`, `g_loss`,
    `ratio_<loss>`, `ratio2` = total generator grad norm before clipping), plus `skipped`
    (1 when a non-finite loss/gradient cancelled the generator update) and `d_skipped`.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        balancer: Balancer,
        adversaries: Mapping[str, AdversarialLoss] | None = None,
        aux_losses: Mapping[str, nn.Module] | None = None,
        info_losses: Mapping[str, nn.Module] | None = None,
        adv_every: float = 1.0,
        max_norm: float = 0.0,
        ema: ModelEMA | None = None,
        ema_every: int = 1,
        autocast_dtype: torch.dtype | None = None,
        zero_weight: tuple[str, ...] = (),
    ):
        if adv_every < 1:
            raise ValueError(f"adversarial.every: expected >= 1, got {adv_every}")
        self.model = model
        self.optimizer = optimizer
        self.balancer = balancer
        self.adversaries = adversaries if isinstance(adversaries, nn.ModuleDict) \
            else nn.ModuleDict(dict(adversaries or {}))
        self.aux_losses = dict(aux_losses or {})
        self.info_losses = dict(info_losses or {})
        self.adv_every = adv_every
        self.max_norm = max_norm
        self.ema = ema
        self.ema_every = ema_every
        self.autocast_dtype = autocast_dtype
        # `adv`/`feat` with weight 0: computed and logged but not balanced.
        self.zero_weight = set(zero_weight)
        self.timer: Callable[[str], contextlib.AbstractContextManager] = _no_timer
        param = next(self.raw_model.parameters(), None)
        if param is not None and param.device.type == "cpu":
            tune_malloc()  # CPU steps reuse freed activations instead of re-faulting pages

    @property
    def raw_model(self) -> nn.Module:
        """The model without its DDP wrapper."""
        return getattr(self.model, "module", self.model)

    def distribute(self, wrap: Callable[[nn.Module], nn.Module] | None = None) -> None:
        """Wrap the model (unless already wrapped) and every discriminator, default with DDP."""
        wrap = wrap or wrap_ddp
        if self.model is self.raw_model:
            self.model = wrap(self.model)
        for adversary in self.adversaries.values():
            adversary.distribute(wrap)

    def _autocast(self, device: torch.device):
        dtype = self.autocast_dtype
        return torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None)

    def _check_batch(self, batch: torch.Tensor) -> torch.Tensor:
        model = self.raw_model
        channels = getattr(model, "channels", None)
        if not isinstance(batch, torch.Tensor) or batch.dim() != 3 or (
            channels is not None and batch.shape[1] != channels
        ):
            shape = tuple(batch.shape) if isinstance(batch, torch.Tensor) else type(batch).__name__
            raise ValueError(f"step: expected a [B, {channels}, T] waveform batch, got {shape}")
        param = next(model.parameters())
        return batch.to(param.device, dtype=param.dtype, non_blocking=True)

    def _losses(self, y: torch.Tensor, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Generator losses to balance: `adv_<name>`, `feat_<name>` and aux losses."""
        losses = {}
        for name, adversary in self.adversaries.items():
            losses[f"adv_{name}"], feat = adversary(y, x)
            if adversary.feat is not None:
                losses[f"feat_{name}"] = feat
        for name, criterion in self.aux_losses.items():
            losses[name] = criterion(y, x)
        return losses

    def __call__(self, batch: torch.Tensor, step: int, rng: torch.Generator,
                 weight: float = 1.0) -> dict[str, float]:
        """Run one training step on `batch` [B, C, T]; returns flat float metrics.

        `weight` (elastic, unequal slices of the global batch): this rank's items over an equal
        share, W * n_rank / B; every gradient is scaled by it so that DDP's average is the
        global batch's gradient (raycodec/train/elastic.py). Metrics stay this rank's own.
        """
        timer = self.timer
        x = self._check_batch(batch)
        metrics: dict[str, torch.Tensor | float] = {}

        with timer("forward"), self._autocast(x.device):
            qres = self.model(x)
        y = at_least_fp32(qres.x)  # losses and the balancer run in fp32 under autocast
        metrics["bandwidth"] = qres.bandwidth
        metrics.update(qres.metrics)

        if len(self.adversaries) and torch.rand(1, generator=rng).item() <= 1 / self.adv_every:
            with timer("discriminator"):
                d_losses = {f"d_{n}": a.train_adv(y, x, weight)
                            for n, a in self.adversaries.items()}
                metrics["d_loss"] = torch.stack(list(d_losses.values())).sum()
                metrics["d_skipped"] = float(any(a.last_skipped for a in self.adversaries.values()))
                metrics.update(d_losses)

        with timer("losses"):
            balanced = self._losses(y, x)
        for name in [n for n in balanced if n.split("_")[0] in self.zero_weight]:
            metrics[name] = balanced.pop(name).detach()
        metrics.update({k: v.detach() for k, v in balanced.items()})
        with timer("info_losses"), torch.no_grad():  # weight 0: logged only
            for name, criterion in self.info_losses.items():
                metrics[name] = criterion(y, x)

        with timer("loss_grads"):  # one VJP per balanced loss, through its own graph only
            loss_grads = self.balancer.loss_grads(balanced, y)
        with timer("balancer"):
            grad, g_loss = self.balancer.combine(balanced, loss_grads, y, weight)
        del loss_grads, balanced  # frees the loss graphs (discriminator activations) early
        metrics["g_loss"] = g_loss
        metrics.update(self.balancer.metrics)

        with timer("backward"):
            self.optimizer.zero_grad(set_to_none=True)
            outputs, grads = [y], [grad]
            penalty = qres.penalty
            if penalty is not None and penalty.requires_grad:
                outputs.append(penalty)  # commitment loss, weight 1, outside the balancer
                grads.append(torch.full_like(penalty, weight))
            # One backward for everything: DDP allows one backward per forward.
            torch.autograd.backward(outputs, grads)
        if penalty is not None:
            metrics["penalty"] = penalty.detach()

        with timer("optimizer"):
            params = [p for p in self.raw_model.parameters() if p.grad is not None]
            grad_norm = torch.nn.utils.get_total_norm([p.grad for p in params]) if params \
                else y.new_zeros(())
            finite = torch.isfinite(grad_norm) & torch.isfinite(g_loss)
            if penalty is not None:
                finite &= torch.isfinite(penalty.detach())
            ok = all_ranks_true(finite)
            if ok:
                if self.max_norm > 0:
                    torch.nn.utils.clip_grads_with_norm_(params, self.max_norm, grad_norm)
                self.optimizer.step()
                if self.ema is not None and step % self.ema_every == 0:
                    self.ema.step()
            self.optimizer.zero_grad(set_to_none=True)
        metrics["ratio2"] = grad_norm
        metrics["skipped"] = float(not ok)

        for prefix in ("adv", "feat"):
            parts = [v for k, v in metrics.items() if k.startswith(prefix + "_")]
            if parts:
                metrics[prefix] = torch.stack(parts).sum()
        return to_floats(metrics)

    def state_dict(self) -> dict:
        """audiocraft-like checkpoint layout: model, optimizer, adv_losses, ema, balancer."""
        state = {
            "model": self.raw_model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "adv_losses": self.adversaries.state_dict(),
            "balancer": self.balancer.state_dict(),
        }
        if self.ema is not None:
            state["ema"] = self.ema.state_dict()
        return state

    def load_state_dict(self, state: Mapping) -> None:
        """Restore everything saved by `state_dict` (a missing `balancer` restarts its EMA)."""
        self.raw_model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.adversaries.load_state_dict(state["adv_losses"])
        if "balancer" in state:
            self.balancer.load_state_dict(state["balancer"])
        if self.ema is not None and "ema" in state:
            self.ema.load_state_dict(state["ema"])

