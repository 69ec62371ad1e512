"""The GAN training step on the real debug model (single process)."""

import copy
import math

import pytest
import torch
from torch import nn

from raycodec.train import GANStep, ModelEMA, PhaseTimer, build_step
from tests.train.tiny import batch, tiny_cfg, tiny_model

AUDIOCRAFT_METRICS = {
    "d_loss", "d_msstftd", "adv_msstftd", "feat_msstftd", "adv", "feat", "l1", "msspec", "mel",
    "sisnr", "penalty", "bandwidth", "g_loss", "ratio_adv_msstftd", "ratio_feat_msstftd",
    "ratio_l1", "ratio_msspec", "ratio2", "skipped", "d_skipped", "codebook_usage",
    "codebook_perplexity",
}


def _step(cfg=None, seed=0, **model_kw) -> GANStep:
    torch.manual_seed(seed)
    return build_step(tiny_model(**model_kw), tiny_cfg(cfg or {}))


def _params(module):
    return [p.detach().clone() for p in module.parameters()]


def test_step_updates_everything_and_returns_flat_float_metrics():
    step = _step()
    g0, d0 = _params(step.raw_model), _params(step.adversaries["msstftd"].adversary)
    ema0 = {k: v.clone() for k, v in step.ema.state.items()}
    timer = step.timer = PhaseTimer()
    metrics = step(batch(), 0, torch.Generator().manual_seed(1234))
    assert AUDIOCRAFT_METRICS <= set(metrics)
    assert all(type(v) is float and math.isfinite(v) for v in metrics.values())
    assert metrics["skipped"] == 0 and metrics["d_skipped"] == 0
    assert metrics["adv"] == metrics["adv_msstftd"] and metrics["feat"] == metrics["feat_msstftd"]
    assert metrics["d_loss"] == metrics["d_msstftd"]
    assert sum(metrics[k] for k in metrics if k.startswith("ratio_")) == pytest.approx(1.0)
    assert not any(torch.equal(a, b) for a, b in zip(g0, step.raw_model.parameters()))
    disc = step.adversaries["msstftd"].adversary
    assert any(not torch.equal(a, b) for a, b in zip(d0, disc.parameters()))
    assert any(not torch.equal(ema0[k], v) for k, v in step.ema.state.items())
    assert set(timer.totals) == {"forward", "discriminator", "losses", "info_losses",
                                 "loss_grads", "balancer", "backward", "optimizer"}
    assert all(p.grad is None for p in step.raw_model.parameters())


def test_one_backward_pass_through_the_generator():
    step = _step()
    calls = []
    next(step.raw_model.encoder.parameters()).register_hook(lambda g: calls.append(1))
    step(batch(), 0, torch.Generator().manual_seed(0))
    # Balanced gradient and commitment penalty both reach the encoder in ONE backward (DDP).
    assert calls == [1]


def test_discriminator_updates_follow_the_shared_generator():
    step = _step({"adversarial": {"every": 3}})
    rng = torch.Generator().manual_seed(1234)
    updated = [("d_loss" in step(batch(t=1200), i, rng)) for i in range(9)]
    ref = torch.Generator().manual_seed(1234)
    expected = [torch.rand(1, generator=ref).item() <= 1 / 3 for _ in range(9)]
    assert updated == expected and 0 < sum(updated) < 9


def test_non_finite_loss_skips_the_update():
    step = _step()
    step.aux_losses["l1"] = lambda y, x: (y - x).abs().mean() * float("nan")
    g0, opt0 = _params(step.raw_model), copy.deepcopy(step.optimizer.state_dict())
    ema0 = {k: v.clone() for k, v in step.ema.state.items()}
    metrics = step(batch(), 0, torch.Generator().manual_seed(0))
    assert metrics["skipped"] == 1.0 and math.isnan(metrics["l1"])
    assert all(torch.equal(a, b) for a, b in zip(g0, step.raw_model.parameters()))
    assert step.optimizer.state_dict()["state"] == opt0["state"] == {}
    assert all(torch.equal(ema0[k], v) for k, v in step.ema.state.items())
    assert "l1" not in step.balancer.state_dict()["total"] or \
        math.isfinite(step.balancer.state_dict()["total"]["l1"])
    assert all(p.grad is None for p in step.raw_model.parameters())


def test_gradient_clipping(monkeypatch):
    step = _step({"optim": {"max_norm": 1e-3}})
    seen = []
    original = step.optimizer.step
    monkeypatch.setattr(step.optimizer, "step", lambda *a, **k: (
        seen.append(torch.nn.utils.get_total_norm(
            [p.grad for p in step.raw_model.parameters() if p.grad is not None]).item()),
        original(*a, **k)))
    metrics = step(batch(), 0, torch.Generator().manual_seed(0))
    assert metrics["ratio2"] > 1e-2  # the unclipped norm is reported
    assert seen == [pytest.approx(1e-3, rel=1e-3)]


def test_zero_weight_adversary_and_no_adversary():
    metrics = _step({"losses": {"adv": 0.0, "sisnr": 0, "mel": 0}})(batch(), 0,
                                                                    torch.Generator().manual_seed(0))
    assert "adv_msstftd" in metrics and "ratio_adv_msstftd" not in metrics
    assert "ratio_feat_msstftd" in metrics
    metrics = _step({"adversarial": {"adversaries": []}})(batch(), 0, torch.Generator())
    assert not {"d_loss", "adv", "feat"} & set(metrics) and metrics["skipped"] == 0


def test_state_round_trip_resumes_identically():
    a = _step(seed=0)
    rng = torch.Generator().manual_seed(5)
    a(batch(seed=1), 0, rng)
    state = copy.deepcopy(a.state_dict())
    assert set(state) == {"model", "optimizer", "adv_losses", "balancer", "ema"}
    b = _step(seed=1)
    b.load_state_dict(state)
    rng_b = torch.Generator()
    rng_b.set_state(rng.get_state())
    ma, mb = a(batch(seed=2), 1, rng), b(batch(seed=2), 1, rng_b)
    assert ma == mb
    for pa, pb in zip(a.raw_model.parameters(), b.raw_model.parameters()):
        assert torch.equal(pa, pb)
    assert a.balancer.state_dict() == b.balancer.state_dict()


def test_model_ema():
    model = nn.Linear(2, 2)
    ema = ModelEMA(model, decay=0.5)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.step()  # unbiased: the first average is the current weights
    assert torch.equal(ema.state["weight"], model.weight)
    with torch.no_grad():
        model.weight.fill_(4.0)
    ema.step()  # count = 1.5 -> weight 2/3 on the new value
    assert torch.allclose(ema.state["weight"], torch.full((2, 2), 3.0))
    other = ModelEMA(nn.Linear(2, 2), decay=0.5)
    other.load_state_dict(ema.state_dict())
    assert other.count == ema.count and torch.equal(other.state["weight"], ema.state["weight"])
    target = nn.Linear(2, 2)
    other.copy_to(target)
    assert torch.equal(target.weight, ema.state["weight"])
    with pytest.raises(ValueError, match="keys differ"):
        ModelEMA(nn.Linear(2, 3, bias=False)).load_state_dict(ema.state_dict())


def test_bf16_autocast_keeps_the_quantizer_in_fp32():
    step = _step({"autocast": True})
    dtypes = {}

    def record(name, use_input=False):
        def hook(module, inputs, output):
            dtypes.setdefault(name, (inputs[0] if use_input else output).dtype)
        return hook

    model = step.raw_model
    model.decoder.register_forward_hook(record("decoder"))
    model.encoder.register_forward_hook(record("encoder"))
    model.quantizer.register_forward_hook(record("codes_in", use_input=True))
    disc = step.adversaries["msstftd"].adversary
    disc.discriminators[0].convs[1].register_forward_hook(record("disc"))
    metrics = step(batch(), 0, torch.Generator().manual_seed(0))
    assert dtypes == {"encoder": torch.bfloat16, "codes_in": torch.bfloat16,
                      "decoder": torch.bfloat16, "disc": torch.bfloat16}
    assert model.quantizer.vq.layers[0]._codebook.embed.dtype == torch.float32
    assert metrics["skipped"] == 0 and all(math.isfinite(v) for v in metrics.values())
    assert all(p.dtype == torch.float32 for p in model.parameters())


@pytest.mark.slow
def test_torch_compile_runs_on_cpu():
    # aot_eager runs Dynamo + AOTAutograd (graph capture, the part that breaks) without
    # Inductor's C++ codegen, which takes ~3 min for this model on 2 cores (see the benchmark).
    from torch._dynamo.utils import counters

    counters.clear()
    eager = _step()
    compiled = _step({"compile": True, "compile_kwargs": {"backend": "aot_eager"}})
    rng_a, rng_b = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    for i in range(2):
        me, mc = eager(batch(seed=i), i, rng_a), compiled(batch(seed=i), i, rng_b)
        assert mc["skipped"] == 0
        for key in ("l1", "msspec", "d_loss", "adv_msstftd", "feat_msstftd", "penalty"):
            assert mc[key] == pytest.approx(me[key], rel=1e-4, abs=1e-6), key
    # Whole encoder, decoder (LSTMs included) and discriminator graphs: no graph breaks.
    assert not counters["graph_break"], dict(counters["graph_break"])
    assert counters["stats"]["unique_graphs"] >= 3
    # Compiled in place: state dict keys are unchanged (checkpoints stay loadable).
    assert set(compiled.state_dict()["model"]) == set(eager.state_dict()["model"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")
def test_cuda_request_without_gpu_is_a_clear_error():
    with pytest.raises(RuntimeError, match="no CUDA GPU is available"):
        build_step(tiny_model(), tiny_cfg(), device="cuda")


def test_bad_config_and_input():
    model = tiny_model()
    with pytest.raises(ValueError, match="unknown loss 'l5'"):
        build_step(model, tiny_cfg({"losses": {"l5": 1.0}}))
    with pytest.raises(ValueError, match="unknown keys \\['decay'\\]"):
        build_step(model, tiny_cfg({"balancer": {"decay": 0.9}}))
    with pytest.raises(ValueError, match="autocast_dtype"):
        build_step(model, tiny_cfg({"autocast": True, "autocast_dtype": "int8"}))
    with pytest.raises(ValueError, match="adversarial.every"):
        build_step(model, tiny_cfg({"adversarial": {"every": 0}}))
    step = build_step(model, tiny_cfg())
    with pytest.raises(ValueError, match=r"\[B, 1, T\]"):
        step(torch.zeros(2, 2400), 0, torch.Generator())
