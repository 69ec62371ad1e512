"""Adversarial criteria, feature matching and `AdversarialLoss` (one discriminator + optimizer)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from raycodec.distrib import all_ranks_true

Criterion = Callable[[torch.Tensor], torch.Tensor]


def at_least_fp32(x: torch.Tensor) -> torch.Tensor:
    """Half/bfloat16 -> float32 (losses run in fp32 under autocast); fp32/fp64 unchanged."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


# Generator criteria: push D(fake) towards "real".
def hinge_loss(x: torch.Tensor) -> torch.Tensor:
    """Generator hinge: -mean(D(fake))."""
    return -x.mean() if x.numel() else x.new_zeros(())


def hinge2_loss(x: torch.Tensor) -> torch.Tensor:
    """Generator hinge2: -mean(min(D(fake) - 1, 0))."""
    return -torch.clamp(x - 1, max=0).mean() if x.numel() else x.new_zeros(())


def mse_loss(x: torch.Tensor) -> torch.Tensor:
    """Generator LSGAN: MSE(D(fake), 1)."""
    return F.mse_loss(x, torch.ones_like(x)) if x.numel() else x.new_zeros(())


# Discriminator criteria.
def hinge_real_loss(x: torch.Tensor) -> torch.Tensor:
    """-mean(min(D(real) - 1, 0))."""
    return -torch.clamp(x - 1, max=0).mean()


def hinge_fake_loss(x: torch.Tensor) -> torch.Tensor:
    """-mean(min(-D(fake) - 1, 0))."""
    return -torch.clamp(-x - 1, max=0).mean()


def mse_real_loss(x: torch.Tensor) -> torch.Tensor:
    """MSE(D(real), 1)."""
    return F.mse_loss(x, torch.ones_like(x))


def mse_fake_loss(x: torch.Tensor) -> torch.Tensor:
    """MSE(D(fake), 0)."""
    return F.mse_loss(x, torch.zeros_like(x))


# name -> (generator criterion, discriminator real criterion, discriminator fake criterion)
ADV_CRITERIA: dict[str, tuple[Criterion, Criterion, Criterion]] = {
    "hinge": (hinge_loss, hinge_real_loss, hinge_fake_loss),
    "hinge2": (hinge2_loss, hinge_real_loss, hinge_fake_loss),
    "mse": (mse_loss, mse_real_loss, mse_fake_loss),
}
FEAT_CRITERIA = {"l1": F.l1_loss, "l2": F.mse_loss}


class FeatureMatchingLoss(nn.Module):
    """Sum over feature maps of L1/L2(fake, real), divided by their number when `normalize`."""

    def __init__(self, loss: str = "l1", normalize: bool = True):
        super().__init__()
        if loss not in FEAT_CRITERIA:
            raise ValueError(f"unknown feat_loss {loss!r}; expected one of {sorted(FEAT_CRITERIA)}")
        self.loss = FEAT_CRITERIA[loss]
        self.normalize = normalize

    def forward(self, fmap_fake: list[torch.Tensor], fmap_real: list[torch.Tensor]) -> torch.Tensor:
        if len(fmap_fake) != len(fmap_real) or not fmap_fake:
            raise ValueError(
                f"feature matching: expected equal, non-empty lists of feature maps, "
                f"got {len(fmap_fake)} and {len(fmap_real)}"
            )
        total = 0
        for fake, real in zip(fmap_fake, fmap_real):
            if fake.shape != real.shape:
                raise ValueError(f"feature matching: shapes {fake.shape} != {real.shape}")
            total = total + self.loss(at_least_fp32(fake), at_least_fp32(real))
        return total / len(fmap_fake) if self.normalize else total


@contextlib.contextmanager
def readonly(module: nn.Module) -> Iterator[None]:
    """Graphs built inside do not reach the parameters of `module` (no grads, no DDP hooks)."""
    flags = [(p, p.requires_grad) for p in module.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


class AdversarialLoss(nn.Module):
    """One adversary, its optimizer and criteria; audiocraft's `AdversarialLoss` layout.

    `state_dict()` holds `adversary.*` and `optimizer` (the optimizer's own state dict), as in
    audiocraft's `adv_losses` checkpoints. For DDP, call `distribute(wrap)`: `train_adv` then
    runs the wrapped module, while `forward` (generator losses) uses the plain module.
    """

    def __init__(
        self,
        adversary: nn.Module,
        optimizer: torch.optim.Optimizer,
        adv_loss: str = "hinge",
        feat_loss: str | None = "l1",
        normalize: bool = True,
        autocast_dtype: torch.dtype | None = None,
    ):
        super().__init__()
        if adv_loss not in ADV_CRITERIA:
            raise ValueError(
                f"unknown adv_loss {adv_loss!r}; expected one of {sorted(ADV_CRITERIA)}"
            )
        self.adversary = adversary
        self.optimizer = optimizer
        self.loss, self.loss_real, self.loss_fake = ADV_CRITERIA[adv_loss]
        self.feat = FeatureMatchingLoss(feat_loss, normalize) if feat_loss else None
        self.normalize = normalize
        self.autocast_dtype = autocast_dtype
        self.last_skipped = False
        # Not registered as a submodule: keeps the state dict free of `module.` prefixes.
        object.__setattr__(self, "_train_module", adversary)

    def distribute(self, wrap: Callable[[nn.Module], nn.Module]) -> None:
        """Run the discriminator update through `wrap(adversary)` (e.g. DDP)."""
        object.__setattr__(self, "_train_module", wrap(self.adversary))

    def _autocast(self, x: torch.Tensor):
        enabled = self.autocast_dtype is not None
        return torch.autocast(x.device.type, dtype=self.autocast_dtype, enabled=enabled)

    def _run(self, module: nn.Module, x: torch.Tensor) -> tuple[list, list]:
        with self._autocast(x):
            logits, fmaps = module(x)
        if not isinstance(logits, list) or not isinstance(fmaps, list) or not logits \
                or len(logits) != len(fmaps):
            raise ValueError("adversary: expected (list of logits, list of feature map lists)")
        return logits, fmaps

    def train_adv(self, fake: torch.Tensor, real: torch.Tensor,
                  weight: float = 1.0) -> torch.Tensor:
        """One discriminator update on (fake, real); returns the detached loss.

        A single forward on cat([real, fake]) (DDP allows one forward per backward). The step is
        skipped, on every rank alike, if the loss or the gradients are not finite. `weight`
        scales this rank's gradient when ranks hold unequal slices of the batch (elastic).
        """
        if fake.shape != real.shape:
            raise ValueError(f"train_adv: fake {tuple(fake.shape)} != real {tuple(real.shape)}")
        n = real.shape[0]
        logits, _ = self._run(self._train_module, torch.cat([real, fake.detach()]))
        loss = 0
        for logit in logits:
            logit = at_least_fp32(logit)
            loss = loss + self.loss_real(logit[:n]) + self.loss_fake(logit[n:])
        if self.normalize:
            loss = loss / len(logits)
        self.optimizer.zero_grad(set_to_none=True)
        (loss * weight if weight != 1.0 else loss).backward()
        grads = [p.grad for p in self.adversary.parameters() if p.grad is not None]
        grad_norm = torch.nn.utils.get_total_norm(grads) if grads else loss.new_zeros(())
        self.last_skipped = not all_ranks_true(torch.isfinite(loss) & torch.isfinite(grad_norm))
        if not self.last_skipped:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(adversarial loss, feature matching loss) of the generator output `fake`."""
        if fake.shape != real.shape:
            raise ValueError(
                f"adversarial loss: fake {tuple(fake.shape)} != real {tuple(real.shape)}"
            )
        with readonly(self.adversary):
            logits_fake, fmaps_fake = self._run(self.adversary, fake)
            fmaps_real = None
            if self.feat is not None:
                with torch.no_grad():  # D(real) only provides feature-matching targets
                    _, fmaps_real = self._run(self.adversary, real)
        adv = sum(self.loss(at_least_fp32(logit)) for logit in logits_fake)
        feat = at_least_fp32(fake.new_zeros(()))
        if self.feat is not None:
            feat = sum(self.feat(ff, fr) for ff, fr in zip(fmaps_fake, fmaps_real))
        if self.normalize:
            adv, feat = adv / len(logits_fake), feat / len(logits_fake)
        return adv, feat

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        destination[prefix + "optimizer"] = self.optimizer.state_dict()

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        key = prefix + "optimizer"
        if key in state_dict:
            self.optimizer.load_state_dict(state_dict.pop(key))
        elif strict:
            missing_keys.append(key)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)
