"""Loss balancer (EnCodec, audiocraft `losses/balancer.py` semantics).

Each loss gets a share `w_i / sum(w)` of a gradient of fixed norm `total_norm` on the model
output, whatever the natural scale of its gradient. Gradient norms are tracked with a
bias-corrected EMA (flashy's averager) that is part of the state dict, so resumes continue it.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.distributed as dist
from torch import autograd

from raycodec.distrib import world_size


class Balancer:
    """Balance the gradients of several losses w.r.t. one tensor (the model output).

    Distributed: the per-loss norms are summed across ranks with ONE all_reduce per call (every
    rank must call `compute`/`backward` every step). The norm kept is that of the gradient of the
    *global* loss (the mean of the ranks' mean losses, which is what DDP's gradient averaging
    optimizes), so W ranks with B/W items each give exactly the balanced update of one process
    with B items. audiocraft averages the local norms instead, which makes its balanced gradient
    W times smaller under W ranks than on one GPU; with one process both are identical.
    """

    def __init__(
        self,
        weights: Mapping[str, float],
        balance_grads: bool = True,
        total_norm: float = 1.0,
        ema_decay: float = 0.999,
        per_batch_item: bool = True,
        epsilon: float = 1e-12,
        monitor: bool = False,
    ):
        weights = {str(k): float(v) for k, v in dict(weights).items()}
        bad = {k: v for k, v in weights.items() if v < 0}
        if bad:
            raise ValueError(f"balancer: expected weights >= 0, got {bad}")
        # audiocraft writes `total_norm or 1.`, silently turning 0 into 1; a zero norm would mean
        # no balanced gradient at all, so it is an error here (and in config validation).
        if total_norm is None or not total_norm > 0:
            raise ValueError(f"balancer.total_norm: expected a number > 0, got {total_norm}")
        self.weights = weights
        self.balance_grads = balance_grads
        self.total_norm = float(total_norm)
        self.ema_decay = ema_decay or 1.0  # 0/None means a plain running mean, as flashy
        self.per_batch_item = per_batch_item
        self.epsilon = epsilon
        self.monitor = monitor
        self._total: dict[str, torch.Tensor] = {}
        self._fix: dict[str, torch.Tensor] = {}
        self._metrics: dict[str, torch.Tensor] = {}

    @property
    def metrics(self) -> dict[str, torch.Tensor]:
        """`ratio_<name>` (share of each loss in the summed EMA norms) when `monitor=True`."""
        return self._metrics

    def _local_stat(self, grad: torch.Tensor) -> torch.Tensor:
        if self.per_batch_item:
            return torch.linalg.vector_norm(grad.flatten(1), dim=1).mean()
        return grad.pow(2).sum()  # squared, so that ranks can be summed exactly

    def _update_ema(self, names: list[str], norms: torch.Tensor) -> torch.Tensor:
        """Fold this step's norms into the EMA and return the bias-corrected averages."""
        out = []
        for name, norm in zip(names, norms):
            total = self._total.get(name)
            fix = self._fix.get(name)
            if total is None:
                total = fix = torch.zeros((), dtype=torch.float64, device=norm.device)
            total, fix = total.to(norm.device), fix.to(norm.device)
            # A non-finite norm (the step will be skipped) must not poison the average forever.
            ok = torch.isfinite(norm)
            total = torch.where(ok, total * self.ema_decay + norm, total)
            fix = torch.where(ok, fix * self.ema_decay + 1, fix)
            self._total[name], self._fix[name] = total, fix
            out.append(torch.where(fix > 0, total / fix, norm))
        return torch.stack(out)

    def loss_grads(
        self, losses: Mapping[str, torch.Tensor], input: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """dL_i/d(input) for every loss (zeros for a loss that does not depend on input)."""
        if not losses:
            raise ValueError("balancer: expected at least one loss")
        unknown = [n for n in losses if n not in self.weights]
        if unknown:
            raise ValueError(f"balancer: no weight for {unknown}; weights are {self.weights}")
        grads = {}
        for name, loss in losses.items():
            grad = None
            if loss.requires_grad:
                (grad,) = autograd.grad(loss, [input], retain_graph=True, allow_unused=True)
            grads[name] = torch.zeros_like(input) if grad is None else grad
        return grads

    def combine(
        self, losses: Mapping[str, torch.Tensor], grads: Mapping[str, torch.Tensor],
        input: torch.Tensor, weight: float = 1.0,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Balance precomputed per-loss gradients: (gradient for `input`, effective loss).

        `weight`: this rank's items over an equal share (W * n_rank / B) when ranks hold
        unequal slices of the global batch; the norms and the gradient then stay those of the
        global batch's mean loss (raycodec/train/elastic.py). 1 leaves everything untouched.
        """
        names = list(losses)
        if self.per_batch_item and input.dim() < 2:
            raise ValueError(f"balancer: per_batch_item needs a batched input, got {input.shape}")
        stats = torch.stack([self._local_stat(grads[n]).double() for n in names])
        if weight != 1.0:  # rank r's part of the global-loss gradient is (weight / W) x local
            stats = stats * weight ** 2
        world = world_size()
        if world > 1:
            dist.all_reduce(stats)
        if self.per_batch_item:
            norms = stats / (world * world)  # mean over ranks, then / W: global-loss gradient
        else:
            norms = stats.sqrt() / world
        avg_norms = self._update_ema(names, norms)

        self._metrics = {}
        if self.monitor:
            ratios = avg_norms / avg_norms.sum()
            self._metrics = {f"ratio_{n}": r for n, r in zip(names, ratios)}

        if self.balance_grads:
            total_weights = sum(self.weights[n] for n in names)
            if total_weights <= 0:
                raise ValueError(f"balancer: the weights of {names} sum to 0")
            ratios = torch.tensor(
                [self.weights[n] / total_weights for n in names], dtype=torch.float64,
                device=avg_norms.device,
            )
            scales = ratios * self.total_norm / (self.epsilon + avg_norms)
        else:
            scales = torch.tensor([self.weights[n] for n in names], dtype=torch.float64)
        scales = scales.to(device=input.device, dtype=input.dtype)
        out_grad = torch.zeros_like(input)
        for name, scale in zip(names, scales):
            out_grad.add_(grads[name] * scale)
        if weight != 1.0:  # DDP averages over ranks: a bigger slice weighs more
            out_grad.mul_(weight)
        values = torch.stack([losses[n].detach().to(input.dtype) for n in names])
        effective = (scales * values).sum()
        return out_grad, effective

    def compute(
        self, losses: Mapping[str, torch.Tensor], input: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(gradient to backpropagate into `input`, effective loss) without calling backward."""
        return self.combine(losses, self.loss_grads(losses, input), input)

    def backward(self, losses: Mapping[str, torch.Tensor], input: torch.Tensor) -> torch.Tensor:
        """Backpropagate the balanced gradient through `input`; return the effective loss."""
        grad, effective = self.compute(losses, input)
        input.backward(grad)
        return effective

    def state_dict(self) -> dict:
        """The gradient-norm EMA (`total`, `fix` per loss), as plain floats."""
        return {
            "total": {k: float(v) for k, v in self._total.items()},
            "fix": {k: float(v) for k, v in self._fix.items()},
        }

    def load_state_dict(self, state: Mapping) -> None:
        """Restore the EMA saved by `state_dict`."""
        if set(state) != {"total", "fix"} or set(state["total"]) != set(state["fix"]):
            raise ValueError(
                f"balancer: expected a state with matching 'total' and 'fix', got {state}"
            )
        as_t = lambda v: torch.tensor(float(v), dtype=torch.float64)  # noqa: E731
        self._total = {k: as_t(v) for k, v in state["total"].items()}
        self._fix = {k: as_t(v) for k, v in state["fix"].items()}
