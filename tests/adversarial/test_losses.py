"""Adversarial criteria, feature matching and the AdversarialLoss wrapper."""

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from raycodec.adversarial import (
    ADV_CRITERIA,
    AdversarialLoss,
    FeatureMatchingLoss,
    build_optimizer,
)
from raycodec.adversarial import build_adversaries as _build_adversaries
from raycodec.config import default_dict

SMALL = {"filters": 4, "n_ffts": [256, 128], "hop_lengths": [64, 32], "win_lengths": [256, 128]}
OPTIM = default_dict()["optim"]


def build_adversaries(overrides):
    """build_adversaries on the complete default config with `overrides` merged on top."""
    return _build_adversaries(OmegaConf.merge(default_dict(), overrides))


def test_criteria_formulas():
    x = torch.tensor([-2.0, -0.5, 0.5, 2.0])
    gen, real, fake = ADV_CRITERIA["hinge"]
    assert gen(x).item() == pytest.approx(0.0)  # -mean
    assert real(x).item() == pytest.approx((3 + 1.5 + 0.5 + 0) / 4)  # -mean(min(x - 1, 0))
    assert fake(x).item() == pytest.approx((0 + 0.5 + 1.5 + 3) / 4)  # -mean(min(-x - 1, 0))
    gen2, _, _ = ADV_CRITERIA["hinge2"]
    assert gen2(x).item() == pytest.approx((3 + 1.5 + 0.5 + 0) / 4)
    gen, real, fake = ADV_CRITERIA["mse"]
    assert gen(x).item() == pytest.approx(((x - 1) ** 2).mean().item())
    assert real(x).item() == pytest.approx(((x - 1) ** 2).mean().item())
    assert fake(x).item() == pytest.approx((x**2).mean().item())
    assert ADV_CRITERIA["hinge"][0](torch.zeros(0)).item() == 0


def test_feature_matching_is_normalized_by_the_number_of_maps():
    a = [torch.zeros(2, 3), torch.zeros(2, 5)]
    b = [torch.ones(2, 3), torch.full((2, 5), 3.0)]
    assert FeatureMatchingLoss("l1")(a, b).item() == pytest.approx((1 + 3) / 2)
    assert FeatureMatchingLoss("l2")(a, b).item() == pytest.approx((1 + 9) / 2)
    assert FeatureMatchingLoss("l1", normalize=False)(a, b).item() == pytest.approx(4)
    with pytest.raises(ValueError, match="non-empty"):
        FeatureMatchingLoss()(a, b[:1])
    with pytest.raises(ValueError, match="unknown feat_loss"):
        FeatureMatchingLoss("l3")


def _adv(**kw):
    cfg = {"msstftd": SMALL, "adversarial": kw}
    return build_adversaries(cfg)["msstftd"]


def test_train_adv_runs_one_forward_on_real_and_fake_and_steps():
    torch.manual_seed(0)
    adv = _adv()
    seen = []
    adv.adversary.register_forward_hook(lambda m, i, o: seen.append(i[0].shape[0]))
    real, fake = torch.randn(3, 1, 1000), torch.randn(3, 1, 1000, requires_grad=True)
    before = [p.detach().clone() for p in adv.adversary.parameters()]
    weights = [i for i, (n, _) in enumerate(adv.adversary.named_parameters()) if "bias" not in n]
    loss = adv.train_adv(fake, real)
    assert seen == [6]  # a single forward on cat([real, fake])
    assert not loss.requires_grad and fake.grad is None
    # Every weight moves (conv_post biases may not: with all logits inside the hinge margins
    # their real and fake gradients cancel exactly).
    params = list(adv.adversary.parameters())
    assert all(not torch.equal(before[i], params[i]) for i in weights)
    assert all(p.grad is None for p in adv.adversary.parameters())
    assert not adv.last_skipped
    # audiocraft's value: sum over scales of real + fake criteria, / number of scales.
    adv2 = _adv()
    for p, b in zip(adv2.adversary.parameters(), before):
        p.data.copy_(b)
    with torch.no_grad():
        logits, _ = adv2.adversary(torch.cat([real, fake]))
        _, real_c, fake_c = ADV_CRITERIA["hinge"]
        ref = sum(real_c(t[:3]) + fake_c(t[3:]) for t in logits) / len(logits)
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5)


def test_generator_losses_leave_the_discriminator_untouched():
    torch.manual_seed(0)
    adv = _adv()
    real, fake = torch.randn(2, 1, 1000), torch.randn(2, 1, 1000, requires_grad=True)
    adv_loss, feat_loss = adv(fake, real)
    (adv_loss + feat_loss).backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    assert all(p.grad is None and p.requires_grad for p in adv.adversary.parameters())
    logits, fmaps = adv.adversary(fake.detach())
    _, fmaps_real = adv.adversary(real)
    ref_adv = sum(-t.mean() for t in logits) / 2
    ref_feat = sum(FeatureMatchingLoss()(a, b) for a, b in zip(fmaps, fmaps_real)) / 2
    assert adv_loss.item() == pytest.approx(ref_adv.item(), rel=1e-5)
    assert feat_loss.item() == pytest.approx(ref_feat.item(), rel=1e-5)


def test_non_finite_discriminator_step_is_skipped():
    adv = _adv()
    before = [p.detach().clone() for p in adv.adversary.parameters()]
    fake = torch.full((2, 1, 1000), float("nan"))
    loss = adv.train_adv(fake, torch.randn(2, 1, 1000))
    assert not torch.isfinite(loss) and adv.last_skipped
    assert all(torch.equal(b, p) for b, p in zip(before, adv.adversary.parameters()))


def test_state_round_trip_includes_the_optimizer():
    torch.manual_seed(0)
    a = _adv()
    a.train_adv(torch.randn(2, 1, 1000), torch.randn(2, 1, 1000))
    state = nn.ModuleDict({"msstftd": a}).state_dict()  # audiocraft's `adv_losses` layout
    assert "msstftd.optimizer" in state
    assert "msstftd.adversary.discriminators.0.convs.0.conv.weight" in state
    torch.manual_seed(1)
    b = _adv()
    nn.ModuleDict({"msstftd": b}).load_state_dict(state)
    for pa, pb in zip(a.adversary.parameters(), b.adversary.parameters()):
        assert torch.equal(pa, pb)
    sa, sb = a.optimizer.state_dict(), b.optimizer.state_dict()
    assert sa["state"][0]["step"] == sb["state"][0]["step"] == 1
    assert torch.equal(sa["state"][3]["exp_avg"], sb["state"][3]["exp_avg"])
    # Both continue identically.
    real, fake = torch.randn(2, 1, 1000), torch.randn(2, 1, 1000)
    assert a.train_adv(fake, real).item() == b.train_adv(fake, real).item()
    with pytest.raises(RuntimeError, match="optimizer"):
        _adv().load_state_dict({k: v for k, v in a.state_dict().items() if k != "optimizer"})


def test_builders():
    advs = build_adversaries({"adversarial": {"adversaries": ["msstftd", "mpd"], "adv_loss": "mse",
                                              "feat_loss": None},
                              "msstftd": SMALL, "mpd": {"filters": 2, "max_filters": 8},
                              "optim": {"lr": 1e-3}})
    assert list(advs) == ["msstftd", "mpd"]
    assert advs["mpd"].feat is None and advs["mpd"].loss is ADV_CRITERIA["mse"][0]
    group = advs["msstftd"].optimizer.param_groups[0]
    assert group["lr"] == 1e-3 and group["betas"] == (0.5, 0.9) and group["weight_decay"] == 0
    assert len(build_adversaries({"adversarial": {"adversaries": []}})) == 0
    with pytest.raises(ValueError, match="unknown \\['gan'\\]"):
        build_adversaries({"adversarial": {"adversaries": ["gan"]}})
    with pytest.raises(ValueError, match="unknown adv_loss"):
        build_adversaries({"adversarial": {"adv_loss": "wgan"}, "msstftd": SMALL})
    opt = build_optimizer([nn.Parameter(torch.zeros(1))],
                          {**OPTIM, "optimizer": "adamw", "adam": {"betas": [0.8, 0.99]}})
    assert isinstance(opt, torch.optim.AdamW) and opt.param_groups[0]["betas"] == (0.8, 0.99)
    with pytest.raises(ValueError, match="unknown optim.optimizer"):
        build_optimizer([nn.Parameter(torch.zeros(1))], {**OPTIM, "optimizer": "sgd"})


def test_wrapper_validates_shapes():
    adv = _adv()
    with pytest.raises(ValueError, match="fake"):
        adv(torch.randn(2, 1, 100), torch.randn(2, 1, 101))
    with pytest.raises(ValueError, match="unknown adv_loss"):
        AdversarialLoss(nn.Identity(), None, adv_loss="x")
