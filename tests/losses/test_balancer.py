"""Balancer: audiocraft's math, EMA semantics, degenerate gradients and state round trip."""

import pytest
import torch

from raycodec.losses import Balancer

B, T = 4, 64


def _losses(y, scale_b=1e4, seed=0):
    """a only sees the first half of y, b the second half (so their gradients are separable);
    b's natural gradient is `scale_b` times larger."""
    g = torch.Generator().manual_seed(seed)
    ta, tb = torch.randn(B, 1, T // 2, generator=g), torch.randn(B, 1, T // 2, generator=g)
    return {
        "a": (y[..., : T // 2] * ta).mean(),
        "b": scale_b * (y[..., T // 2:] * tb).mean(),
    }


def _item_norms(g):
    return g.flatten(1).norm(dim=1)


def test_balanced_components_follow_weights_and_total_norm():
    y = torch.randn(B, 1, T, requires_grad=True)
    balancer = Balancer({"a": 1.0, "b": 3.0}, ema_decay=0.9)
    for step in range(60):  # warm the EMA up on gradient scales that fluctuate by +-5%
        balancer.compute(_losses(y, scale_b=1e4 * (1 + 0.05 * (-1) ** step)), y)
    grad, _ = balancer.compute(_losses(y), y)
    norm_a = _item_norms(grad[..., : T // 2]).mean().item()
    norm_b = _item_norms(grad[..., T // 2:]).mean().item()
    assert norm_b / norm_a == pytest.approx(3.0, rel=0.01)
    assert norm_a + norm_b == pytest.approx(1.0, rel=0.01)  # total_norm per batch item
    # With constant gradient scales the bias-corrected EMA is exact from the first step.
    fresh = Balancer({"a": 1.0, "b": 3.0})
    grad, effective = fresh.compute(_losses(y), y)
    assert _item_norms(grad[..., : T // 2]).mean().item() == pytest.approx(0.25, rel=1e-5)
    assert _item_norms(grad[..., T // 2:]).mean().item() == pytest.approx(0.75, rel=1e-5)


def test_effective_loss_and_backward():
    y = torch.randn(B, 1, T, requires_grad=True)
    losses = _losses(y)
    balancer = Balancer({"a": 1.0, "b": 3.0}, total_norm=2.0)
    grad, effective = Balancer({"a": 1.0, "b": 3.0}, total_norm=2.0).compute(losses, y)
    ga = torch.autograd.grad(losses["a"], y, retain_graph=True)[0]
    gb = torch.autograd.grad(losses["b"], y, retain_graph=True)[0]
    sa = 0.25 * 2.0 / _item_norms(ga).mean()
    sb = 0.75 * 2.0 / _item_norms(gb).mean()
    assert torch.allclose(grad, sa * ga + sb * gb, rtol=1e-5)
    assert effective.item() == pytest.approx((sa * losses["a"] + sb * losses["b"]).item(), rel=1e-5)
    out = balancer.backward(losses, y)
    assert torch.allclose(y.grad, grad, rtol=1e-5) and out.item() == pytest.approx(effective.item())


def test_global_norm_mode():
    y = torch.randn(B, 1, T, requires_grad=True)
    grad, _ = Balancer({"a": 1.0, "b": 1.0}, per_batch_item=False).compute(_losses(y), y)
    assert grad[..., : T // 2].norm().item() == pytest.approx(0.5, rel=1e-5)
    assert grad[..., T // 2:].norm().item() == pytest.approx(0.5, rel=1e-5)


def test_no_balancing_is_the_weighted_sum():
    y = torch.randn(B, 1, T, requires_grad=True)
    losses = _losses(y)
    grad, effective = Balancer({"a": 2.0, "b": 0.5}, balance_grads=False).compute(losses, y)
    expected = torch.autograd.grad(2.0 * losses["a"] + 0.5 * losses["b"], y)[0]
    assert torch.allclose(grad, expected, rtol=1e-6)
    weighted = (2.0 * losses["a"] + 0.5 * losses["b"]).item()
    assert effective.item() == pytest.approx(weighted, rel=1e-6)


def test_ema_is_flashy_bias_corrected_average():
    y = torch.randn(B, 1, T, requires_grad=True)
    balancer = Balancer({"a": 1.0}, ema_decay=0.5, monitor=True)
    norms = []
    for k in (1.0, 2.0, 3.0):
        loss = {"a": k * (y * torch.ones_like(y)).sum()}
        norms.append(_item_norms(torch.ones_like(y) * k).mean().item())
        grad, _ = balancer.compute(loss, y)
    total = (norms[0] * 0.5 + norms[1]) * 0.5 + norms[2]
    fix = (0.5 + 1) * 0.5 + 1
    assert balancer.state_dict()["total"]["a"] == pytest.approx(total)
    assert balancer.state_dict()["fix"]["a"] == pytest.approx(fix)
    # The gradient is scaled by 1 / EMA, not by 1 / current norm.
    assert _item_norms(grad).mean().item() == pytest.approx(norms[2] / (total / fix), rel=1e-6)
    assert balancer.metrics == {"ratio_a": pytest.approx(1.0)}


def test_monitor_ratios_sum_to_one():
    y = torch.randn(B, 1, T, requires_grad=True)
    balancer = Balancer({"a": 1.0, "b": 1.0}, monitor=True)
    balancer.compute(_losses(y), y)
    ratios = {k: float(v) for k, v in balancer.metrics.items()}
    assert set(ratios) == {"ratio_a", "ratio_b"}
    assert sum(ratios.values()) == pytest.approx(1.0)
    assert ratios["ratio_b"] == pytest.approx(1e4 / (1e4 + 1), rel=1e-3)


def test_zero_gradient_loss_gives_no_nan():
    y = torch.randn(B, 1, T, requires_grad=True)
    losses = {"a": (y * 0).sum(), "b": (y**2).mean(), "c": torch.tensor(1.0)}
    balancer = Balancer({"a": 1.0, "b": 1.0, "c": 1.0})
    for _ in range(2):
        grad, effective = balancer.compute(losses, y)
        assert torch.isfinite(grad).all() and torch.isfinite(effective)
    expected_b = torch.autograd.grad(losses["b"], y)[0]
    expected_b = expected_b / _item_norms(expected_b).mean() / 3
    assert torch.allclose(grad, expected_b, rtol=1e-5)


def test_non_finite_norm_does_not_poison_the_ema():
    y = torch.randn(B, 1, T, requires_grad=True)
    balancer = Balancer({"a": 1.0})
    balancer.compute({"a": (y**2).mean()}, y)
    before = balancer.state_dict()
    grad, _ = balancer.compute({"a": (y**2).mean() * float("nan")}, y)
    assert not torch.isfinite(grad).all()  # the step will see it and skip the update
    assert balancer.state_dict() == before


def test_state_round_trip_continues_the_ema():
    y = torch.randn(B, 1, T, requires_grad=True)
    a = Balancer({"a": 1.0, "b": 3.0})
    for seed in range(5):
        a.compute(_losses(y, scale_b=10.0**seed, seed=seed), y)
    b = Balancer({"a": 1.0, "b": 3.0})
    b.load_state_dict(a.state_dict())
    fresh = Balancer({"a": 1.0, "b": 3.0})
    losses = _losses(y, scale_b=1.0, seed=9)
    ga, ea = a.compute(losses, y)
    gb, eb = b.compute(losses, y)
    gf, _ = fresh.compute(losses, y)
    assert torch.equal(ga, gb) and torch.equal(ea, eb)
    assert not torch.allclose(ga, gf)  # without the state the result differs
    assert a.state_dict() == b.state_dict()


def test_errors():
    y = torch.randn(B, 1, T, requires_grad=True)
    with pytest.raises(ValueError, match="no weight for \\['z'\\]"):
        Balancer({"a": 1.0}).compute({"z": y.sum()}, y)
    with pytest.raises(ValueError, match=">= 0"):
        Balancer({"a": -1.0})
    with pytest.raises(ValueError, match="at least one loss"):
        Balancer({"a": 1.0}).compute({}, y)
    with pytest.raises(ValueError, match="sum to 0"):
        Balancer({"a": 0.0}).compute({"a": y.sum()}, y)
    with pytest.raises(ValueError, match="matching"):
        Balancer({"a": 1.0}).load_state_dict({"total": {"a": 1.0}})
    with pytest.raises(ValueError, match="total_norm: expected a number > 0, got 0"):
        Balancer({"a": 1.0}, total_norm=0)  # audiocraft's `or 1.` would silently make it 1
