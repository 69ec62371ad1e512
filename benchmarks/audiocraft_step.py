"""The benchmark anchor: audiocraft's `CompressionSolver.run_step`, replayed on raycodec modules.

audiocraft cannot be installed next to this torch, so `bench_step.py` times this replay instead.
It runs the same modules and weights as `GANStep` (SEANet, RVQ, MS-STFT discriminator, losses,
balancer math, optimizers) in audiocraft's order and with audiocraft's per-op choices, which are
where the two steps differ in cost:

- discriminator update: separate forwards on fake and on real (raycodec: one on the concatenation);
- generator adversarial loss: D(fake) and D(real), both with autograd on (raycodec: D(real) in
  no_grad), with torchaudio's `Spectrogram` module and contiguous (not channels-last) 2D convs;
- msspec: four mel spectrograms per scale (linear and log transforms, each of x and of y);
- the commitment penalty backpropagated on its own (`retain_graph=True`, then `ratio1`), then the
  balanced backward: two passes through the generator (raycodec: one fused backward);
- `ratio2` as a Python sum of per-parameter norms.

With equal weights and inputs it returns the same metric values as `GANStep` (tested), so the
time ratio compares two implementations of one computation.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from raycodec.adversarial.losses import AdversarialLoss, readonly
from raycodec.adversarial.msstftd import MultiScaleSTFTDiscriminator
from raycodec.losses.spectral import MultiScaleMelSpectrogramLoss
from raycodec.train.step import GANStep, to_floats


def _msstftd_forward(disc: MultiScaleSTFTDiscriminator, x: torch.Tensor):
    """audiocraft's MultiScaleSTFTDiscriminator.forward: torchaudio STFT, contiguous layout."""
    logits, fmaps = [], []
    for sub in disc.discriminators:
        activation = copy.copy(sub.activation)
        activation.inplace = False  # audiocraft's activations allocate their outputs
        z = sub.spec_transform(x)  # [B, C, freq, frames], complex
        z = torch.cat([z.real, z.imag], dim=1).transpose(-1, -2)  # [B, 2C, frames, freq]
        fmap = []
        for conv in sub.convs:
            z = activation(conv(z))
            fmap.append(z)
        logits.append(sub.conv_post(z))
        fmaps.append(fmap)
    return logits, fmaps


def _forward(adversary: nn.Module, x: torch.Tensor):
    if isinstance(adversary, MultiScaleSTFTDiscriminator):
        return _msstftd_forward(adversary, x)
    return adversary(x)


def train_adv(adv: AdversarialLoss, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """audiocraft's AdversarialLoss.train_adv: two discriminator forwards, backward, Adam."""
    logits_fake, _ = _forward(adv.adversary, fake.detach())
    logits_real, _ = _forward(adv.adversary, real.detach())
    loss = torch.tensor(0.0, device=fake.device)
    for lf, lr in zip(logits_fake, logits_real):
        loss = loss + adv.loss_fake(lf) + adv.loss_real(lr)
    if adv.normalize:
        loss = loss / len(logits_fake)
    adv.optimizer.zero_grad()
    loss.backward()
    adv.optimizer.step()
    return loss.detach()


def generator_adv(adv: AdversarialLoss, fake: torch.Tensor, real: torch.Tensor):
    """audiocraft's AdversarialLoss.forward: (adv, feat) with D(fake) and D(real) under readonly."""
    with readonly(adv.adversary):
        logits_fake, fmaps_fake = _forward(adv.adversary, fake)
        _, fmaps_real = _forward(adv.adversary, real)
    n = len(logits_fake)
    adv_loss = sum(adv.loss(logit) for logit in logits_fake)
    feat = torch.tensor(0.0, device=fake.device)
    if adv.feat is not None:
        feat = sum(adv.feat(ff, fr) for ff, fr in zip(fmaps_fake, fmaps_real))
    if adv.normalize:
        adv_loss, feat = adv_loss / n, feat / n
    return adv_loss, feat


def msspec(loss: MultiScaleMelSpectrogramLoss, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """audiocraft's MultiScaleMelSpectrogramLoss: linear and log mel computed separately."""
    total = torch.tensor(0.0, device=x.device)
    for melspec, alpha in zip(loss.mels, loss.alphas):
        total = total + F.l1_loss(melspec.mel(x), melspec.mel(y))
        log_x, log_y = melspec.to_log(melspec.mel(x)), melspec.to_log(melspec.mel(y))
        total = total + alpha * F.mse_loss(log_x, log_y)
    return total / loss.total if loss.normalized else total


class AudiocraftStep:
    """audiocraft's run_step on the components of `step` (a GANStep without DDP)."""

    def __init__(self, step: GANStep):
        self.step = step

    def _aux(self, name: str, criterion: nn.Module, y_pred: torch.Tensor, y: torch.Tensor):
        if isinstance(criterion, MultiScaleMelSpectrogramLoss):
            return msspec(criterion, y_pred, y)
        return criterion(y_pred, y)

    def __call__(self, batch: torch.Tensor, step_idx: int, rng: torch.Generator) -> dict:
        """One training step; returns the same float metrics as GANStep (plus `ratio1`)."""
        s = self.step
        model = s.raw_model
        x = batch
        qres = model(x)
        y, y_pred = x.clone(), qres.x
        metrics: dict = {"bandwidth": qres.bandwidth, **qres.metrics}
        if len(s.adversaries) and torch.rand(1, generator=rng).item() <= 1 / s.adv_every:
            d_losses = {f"d_{n}": train_adv(a, y_pred, y) for n, a in s.adversaries.items()}
            metrics["d_loss"] = torch.sum(torch.stack(list(d_losses.values())))
            metrics.update(d_losses)
        balanced = {}
        for name, adv in s.adversaries.items():
            balanced[f"adv_{name}"], feat = generator_adv(adv, y_pred, y)
            if adv.feat is not None:
                balanced[f"feat_{name}"] = feat
        for name, criterion in s.aux_losses.items():
            balanced[name] = self._aux(name, criterion, y_pred, y)
        for name in [n for n in balanced if n.split("_")[0] in s.zero_weight]:
            metrics[name] = balanced.pop(name).detach()  # weight 0: logged, not balanced
        metrics.update({k: v.detach() for k, v in balanced.items()})
        penalty = qres.penalty
        if penalty is not None and penalty.requires_grad:
            penalty.backward(retain_graph=True)
            ratio1 = sum(p.grad.norm(p=2).pow(2) for p in model.parameters() if p.grad is not None)
            metrics["ratio1"] = ratio1.sqrt()
            metrics["penalty"] = penalty.detach()
        grads = s.balancer.loss_grads(balanced, y_pred)
        grad, metrics["g_loss"] = s.balancer.combine(balanced, grads, y_pred)
        y_pred.backward(grad)
        metrics.update(s.balancer.metrics)
        ratio2 = sum(p.grad.norm(p=2).pow(2) for p in model.parameters() if p.grad is not None)
        metrics["ratio2"] = ratio2.sqrt()
        if s.max_norm > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), s.max_norm)
        s.optimizer.step()
        s.optimizer.zero_grad()
        if s.ema is not None and step_idx % s.ema_every == 0:
            s.ema.step()
        with torch.no_grad():
            for name, criterion in s.info_losses.items():
                metrics[name] = criterion(y_pred, y)
        for prefix in ("adv", "feat"):
            parts = [v for k, v in metrics.items() if k.startswith(prefix + "_")]
            if parts:
                metrics[prefix] = torch.stack(parts).sum()
        return to_floats(metrics)
