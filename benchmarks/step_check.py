"""Build benchmark steps and compare the metrics of a bf16/compiled step with fp32 eager.

`compare_metrics` runs N steps of each variant from the same weights on the same batches and
reports, per metric, the mean over the N steps and the relative gap. TOLERANCE states what
"equal metrics" means: the reconstruction metrics (what the codec is judged on) within 5% of
fp32, the adversarial ones (a two-player game whose trajectories drift apart) within 15%.
"""

from __future__ import annotations

import time

import torch

from raycodec.config import load_config
from raycodec.models import build_model
from raycodec.train import GANStep, build_step

RECONSTRUCTION = ("l1", "msspec", "mel", "sisnr")
ADVERSARIAL = ("d_loss", "adv", "feat")
TOLERANCE = {**{k: 0.05 for k in RECONSTRUCTION}, **{k: 0.15 for k in ADVERSARIAL}}
AUTOCAST = {"bf16": "bfloat16"}


def make_step(preset: str, device: str = "cpu", autocast: str | None = None,
              compile: bool = False, seed: int = 0, compile_backend: str | None = None
              ) -> GANStep:
    """A GANStep for `preset` with audiocraft's solver defaults; same `seed`, same weights.

    `compile_backend` (e.g. aot_eager) replaces inductor: CPU tests trace the compile path
    without minutes of C++ code generation."""
    if autocast is not None and autocast not in AUTOCAST:
        raise ValueError(f"autocast: expected one of {sorted(AUTOCAST)}, got {autocast!r}")
    torch.manual_seed(seed)
    model = build_model(preset)
    overrides = [f"sample_rate={model.sample_rate}", f"channels={model.channels}",
                 f"autocast={autocast is not None}", f"compile={compile}",
                 f"autocast_dtype={AUTOCAST.get(autocast, 'bfloat16')}"]
    if compile_backend:
        overrides.append(f"compile_kwargs={{backend: {compile_backend}}}")
    return build_step(model, load_config(None, overrides), device)


@torch.no_grad()
def init_codebooks(step: GANStep, x: torch.Tensor) -> None:
    """Run k-means for every codebook now: with quantizer dropout a codebook is initialised the
    first time a step reaches it, which would land 50 k-means iterations in a timed step."""
    model = step.raw_model
    quantizer = getattr(model, "quantizer", None)
    if quantizer is None:
        return
    dropout, quantizer.q_dropout = quantizer.q_dropout, False
    active, quantizer.n_q_active = quantizer.n_q_active, quantizer.n_q
    try:
        # encoder.forward, not encoder(): skips torch.compile, which would build extra
        # no-grad graphs just for this.
        quantizer(model.encoder.forward(x))
    finally:
        quantizer.q_dropout, quantizer.n_q_active = dropout, active


def batches(n: int, batch: int, channels: int, length: int, sample_rate: int, seed: int = 0):
    """`n` reproducible batches: a random chord plus noise, as in speech/music amplitudes."""
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(length) / sample_rate
    for _ in range(n):
        freqs = 100 + 2000 * torch.rand(batch, channels, 3, 1, generator=gen)
        tone = torch.sin(2 * torch.pi * freqs * t).sum(2) / 3
        yield 0.3 * tone + 0.02 * torch.randn(batch, channels, length, generator=gen)


def run_steps(step: GANStep, n: int, batch: int, seconds: float, seed: int = 0):
    """(per-step metric dicts, seconds per step) of `n` steps on the reproducible batches."""
    model = step.raw_model
    dev = next(model.parameters()).device
    torch.manual_seed(seed)  # k-means init draws from the global generator
    rng = torch.Generator().manual_seed(1234)
    out, times = [], []
    length = int(seconds * model.sample_rate)
    for i, x in enumerate(batches(n, batch, model.channels, length, model.sample_rate, seed)):
        start = time.perf_counter()
        out.append(step(x.to(dev), i, rng))
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        times.append(time.perf_counter() - start)
    return out, times


def compare_metrics(preset: str, steps: int, batch: int, seconds: float, device: str,
                    autocast: str | None, compile: bool, compile_backend: str | None = None
                    ) -> dict:
    """N steps of fp32 eager and of the variant from the same weights; per-metric gaps."""
    ref, ref_t = run_steps(make_step(preset, device), steps, batch, seconds)
    variant = make_step(preset, device, autocast, compile, compile_backend=compile_backend)
    var, var_t = run_steps(variant, steps, batch, seconds)
    rows = {}
    for key in RECONSTRUCTION + ADVERSARIAL:
        if key not in ref[0]:
            continue
        a = sum(m[key] for m in ref) / steps
        b = sum(m[key] for m in var) / steps
        gap = abs(b - a) / max(abs(a), 1e-6)
        rows[key] = {"fp32": a, "variant": b, "rel_gap": gap, "tolerance": TOLERANCE[key],
                     "ok": gap <= TOLERANCE[key]}
    return {"preset": preset, "steps": steps, "batch": batch, "autocast": autocast,
            "compile": compile, "metrics": rows, "ok": all(r["ok"] for r in rows.values()),
            "fp32_step_s": ref_t, "variant_step_s": var_t}


def format_comparison(check: dict) -> str:
    """The side-by-side table printed by bench_step.py and gpu_check."""
    name = "+".join(filter(None, [check["autocast"], "compile" if check["compile"] else None]))
    lines = [f"{check['preset']}: mean of {check['steps']} steps, fp32 vs {name} "
             f"(batch {check['batch']})",
             f"{'metric':<10}{'fp32':>12}{name:>16}{'gap':>10}{'tol':>8}"]
    for key, r in check["metrics"].items():
        flag = "" if r["ok"] else "  OUT OF TOLERANCE"
        lines.append(f"{key:<10}{r['fp32']:>12.5f}{r['variant']:>16.5f}"
                     f"{100 * r['rel_gap']:>9.2f}%{100 * r['tolerance']:>7.0f}%{flag}")
    lines.append("within tolerance" if check["ok"] else "NOT within tolerance")
    return "\n".join(lines)
