"""Time the EnCodec GAN training step per phase (audiocraft default losses and adversary).

    python benchmarks/bench_step.py [--presets debug audiocraft_base_24khz] [--batch 8]
        [--seconds 1] [--steps 4] [--warmup 1] [--device cpu] [--out PATH]

Reports each phase's minimum over `--steps` timed steps (shared machines add noise); `step` is
their sum. Phases: forward (generator), discriminator (update: one forward on cat([real, fake]),
backward, Adam), losses (adversarial + aux losses with weight > 0), info_losses (weight 0, logged
only), loss_grads (one VJP per balanced loss w.r.t. the model output), balancer (norms, EMA,
all-reduce, combination), backward (the single fused backward through the generator) and
optimizer (grad norm, finite check, Adam, weight EMA). `loss_grads` is also compared with one
fused weighted VJP, which is what the step would cost without balancing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import torch

from raycodec.models import build_model
from raycodec.train import PhaseTimer, build_step

PHASES = ["forward", "discriminator", "losses", "info_losses", "loss_grads", "balancer",
          "backward", "optimizer"]


def _fused_vjp_seconds(step, x: torch.Tensor, reps: int = 3) -> tuple[float, float]:
    """(time of balancer.loss_grads, time of one weighted VJP) on the same loss graphs."""
    with torch.no_grad():
        qres_x = step.model(x).x
    y = qres_x.detach().requires_grad_(True)
    losses = {}
    for name, adversary in step.adversaries.items():
        losses[f"adv_{name}"], losses[f"feat_{name}"] = adversary(y, x)
    for name, criterion in step.aux_losses.items():
        losses[name] = criterion(y, x)
    weights = step.balancer.weights
    per_loss, fused = [], []
    for _ in range(reps):  # minimum over repetitions: the least disturbed measurement
        t0 = time.perf_counter()
        step.balancer.loss_grads(losses, y)
        per_loss.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        total = sum(weights[n] * v for n, v in losses.items())
        torch.autograd.grad(total, [y], retain_graph=True)
        fused.append(time.perf_counter() - t0)
    return min(per_loss), min(fused)


def bench_preset(preset: str, batch: int, seconds: float, steps: int, warmup: int,
                 device: str) -> dict:
    """Build `preset` with audiocraft's default solver config and time `steps` steps."""
    torch.manual_seed(0)
    model = build_model(preset)
    step = build_step(model, {}, device)
    x = 0.1 * torch.randn(batch, model.channels, int(seconds * model.sample_rate), device=device)
    rng = torch.Generator().manual_seed(1234)
    for i in range(warmup):  # k-means init and first-call allocations
        step(x, i, rng)
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else None
    runs = []
    for i in range(steps):
        timer = step.timer = PhaseTimer(sync=sync)
        start = time.perf_counter()
        metrics = step(x, warmup + i, rng)
        runs.append((time.perf_counter() - start, dict(timer.totals)))
    step.timer = PhaseTimer()
    # Per-phase minimum over the timed steps: on a shared machine the rest is interference.
    phases = {p: min(r[1].get(p, 0.0) for r in runs) for p in PHASES}
    total = sum(phases.values())
    per_loss, fused = _fused_vjp_seconds(step, x)
    return {
        "all_steps_s": [r[0] for r in runs],
        "fastest_step_s": min(r[0] for r in runs),
        "preset": preset,
        "params_generator": sum(p.numel() for p in step.raw_model.parameters()),
        "params_discriminators": sum(p.numel() for a in step.adversaries.values()
                                     for p in a.adversary.parameters()),
        "step_s": total,
        "phases_s": phases,
        "phases_pct": {p: 100 * t / total for p, t in phases.items()},
        "balancer_pct": 100 * phases["balancer"] / total,
        "loss_grads_vs_fused_vjp_s": {"per_loss": per_loss, "fused": fused},
        "balancing_overhead_pct": 100 * (phases["balancer"] + per_loss - fused) / total,
        "skipped": metrics["skipped"],
    }


def _table(results: list[dict]) -> str:
    head = f"{'phase':<14}" + "".join(f"{r['preset']:>30}" for r in results)
    lines = [head, "-" * len(head)]
    for p in PHASES + ["step"]:
        row = f"{p:<14}"
        for r in results:
            t = r["step_s"] if p == "step" else r["phases_s"][p]
            row += f"{t:>20.3f} s ({100 * t / r['step_s']:5.1f}%)"
        lines.append(row)
    lines.append("")
    for r in results:
        vjp = r["loss_grads_vs_fused_vjp_s"]
        lines.append(
            f"{r['preset']}: balancer math {r['balancer_pct']:.2f}% of the step; per-loss VJPs "
            f"{vjp['per_loss']:.3f} s vs one fused weighted VJP {vjp['fused']:.3f} s -> "
            f"balancing overhead {r['balancing_overhead_pct']:.1f}% of the step"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", nargs="+", default=["debug", "audiocraft_base_24khz"])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default="benchmarks/results/bench_step.json")
    args = parser.parse_args()

    results = [bench_preset(p, args.batch, args.seconds, args.steps, args.warmup, args.device)
               for p in args.presets]
    print(_table(results))
    info = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "device": args.device, "batch": args.batch, "seconds": args.seconds,
            "steps": args.steps, "warmup": args.warmup}
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"config": info, "results": results}, f, indent=2)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
