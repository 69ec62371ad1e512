"""Time the EnCodec GAN training step: median whole step, per-phase minima, audiocraft anchor.

    python benchmarks/bench_step.py [--presets debug audiocraft_base_24khz] [--batch 8]
        [--seconds 1] [--steps 4] [--warmup 1] [--device cpu] [--autocast bf16] [--compile]
        [--no-anchor] [--check-steps 20 --check-batch 2] [--vjp] [--out PATH]

The headline is the MEDIAN WHOLE STEP over `--steps` timed steps. Next to it: the anchor,
audiocraft's `run_step` replayed on the same modules (`audiocraft_step.py`), timed in the same
process with its steps interleaved with raycodec's so that load from other jobs hits both alike;
the ratio raycodec / audiocraft is the figure to quote. The anchor's steps run with glibc's
malloc defaults, raycodec's with the settings GANStep applies (raycodec/train/allocator.py).
The CPU seconds (user + system) of each step are printed too: on a loaded machine their ratio
is steadier than the wall-time one.
Per-phase minima (forward, discriminator, losses, info_losses, loss_grads, balancer,
backward, optimizer) show where the time goes; their sum is not a step anyone runs.

`--autocast bf16` / `--compile` time that variant; `--check-steps N` then also runs N steps of
the variant and of fp32 eager from the same weights and batches and prints their metrics side
by side (see `step_check.py` for the tolerance). `--vjp` compares the balancer's per-loss VJPs
with one fused weighted VJP.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from audiocraft_step import AudiocraftStep  # noqa: E402
from step_check import compare_metrics, format_comparison, init_codebooks, make_step  # noqa: E402

from raycodec.train import PhaseTimer  # noqa: E402
from raycodec.train.allocator import tune_malloc  # noqa: E402

PHASES = ["forward", "discriminator", "losses", "info_losses", "loss_grads", "balancer",
          "backward", "optimizer"]


def _fused_vjp_seconds(step, x: torch.Tensor, reps: int = 3) -> tuple[float, float]:
    """(time of balancer.loss_grads, time of one weighted VJP) on the same loss graphs."""
    with torch.no_grad():
        qres_x = step.model(x).x
    y = qres_x.detach().requires_grad_(True)
    losses = step._losses(y, x)
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


def _cpu(since: tuple[float, float] | None = None) -> tuple[float, float]:
    """(user, system) CPU seconds of this process, or their increase `since` a reading."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    now = (r.ru_utime, r.ru_stime)
    return now if since is None else (now[0] - since[0], now[1] - since[1])


def _sync(device: torch.device):
    return torch.cuda.synchronize if device.type == "cuda" else None


def _peak_memory_mb(device: torch.device) -> float:
    """Peak allocated CUDA memory, or the process's peak RSS on CPU (process-wide)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_preset(preset: str, batch: int, seconds: float, steps: int, warmup: int,
                 device: str, autocast: str | None = None, compile: bool = False,
                 anchor: bool = True, vjp: bool = False, compile_backend: str | None = None
                 ) -> dict:
    """Time `steps` GAN steps of `preset` (and of the audiocraft anchor, interleaved)."""
    step = make_step(preset, device, autocast=autocast, compile=compile,
                     compile_backend=compile_backend)
    dev = next(step.raw_model.parameters()).device
    ref = AudiocraftStep(make_step(preset, device)) if anchor else None
    sample_rate, channels = step.raw_model.sample_rate, step.raw_model.channels
    x = 0.1 * torch.randn(batch, channels, int(seconds * sample_rate),
                          generator=torch.Generator().manual_seed(0)).to(dev)
    rng, ref_rng = torch.Generator().manual_seed(1234), torch.Generator().manual_seed(1234)
    for s in [step] + ([ref.step] if ref is not None else []):
        init_codebooks(s, x)
    for i in range(warmup):  # first-call allocations, compilation
        step(x, i, rng)
        if ref is not None:
            ref(x, i, ref_rng)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    sync = _sync(dev) or (lambda: None)
    runs, ref_runs = [], []
    for i in range(steps):
        order = ["ref", "ours"] if i % 2 else ["ours", "ref"]
        for who in order:
            if who == "ref" and ref is None:
                continue
            # audiocraft's process runs with glibc's malloc defaults; GANStep tunes them.
            tune_malloc(who == "ours" and dev.type == "cpu")
            sync()
            start, cpu0 = time.perf_counter(), _cpu()
            if who == "ours":
                timer = step.timer = PhaseTimer(sync=_sync(dev))
                metrics = step(x, warmup + i, rng)
                sync()
                runs.append((time.perf_counter() - start, dict(timer.totals), _cpu(cpu0)))
            else:
                ref(x, warmup + i, ref_rng)
                sync()
                ref_runs.append((time.perf_counter() - start, _cpu(cpu0)))
            last = runs[-1][0::2] if who == "ours" else ref_runs[-1]
            print(f"{preset} step {i} {'raycodec' if who == 'ours' else 'anchor':>8}: "
                  f"{last[0]:.2f} s wall, {sum(last[1]):.2f} s CPU", flush=True)
    step.timer = PhaseTimer()
    median = statistics.median(r[0] for r in runs)
    phases = {p: min(r[1].get(p, 0.0) for r in runs) for p in PHASES}
    out = {
        "preset": preset, "autocast": autocast, "compile": compile,
        "median_step_s": median,
        "all_steps_s": [r[0] for r in runs],
        "audio_s_per_s": batch * seconds / median,
        "peak_memory_mb": _peak_memory_mb(dev),
        "params_generator": sum(p.numel() for p in step.raw_model.parameters()),
        "params_discriminators": sum(p.numel() for a in step.adversaries.values()
                                     for p in a.adversary.parameters()),
        "phase_minima_s": phases,
        "phase_minima_sum_s": sum(phases.values()),
        "skipped": metrics["skipped"],
    }
    out["median_cpu_s"] = statistics.median(sum(r[2]) for r in runs)
    out["median_sys_s"] = statistics.median(r[2][1] for r in runs)
    if ref is not None:
        out["anchor_median_step_s"] = statistics.median(r[0] for r in ref_runs)
        out["anchor_all_steps_s"] = [r[0] for r in ref_runs]
        out["ratio_to_anchor"] = median / out["anchor_median_step_s"]
        out["anchor_median_cpu_s"] = statistics.median(sum(r[1]) for r in ref_runs)
        out["anchor_median_sys_s"] = statistics.median(r[1][1] for r in ref_runs)
        out["cpu_ratio_to_anchor"] = out["median_cpu_s"] / out["anchor_median_cpu_s"]
    if vjp:
        per_loss, fused = _fused_vjp_seconds(step, x)
        out["loss_grads_vs_fused_vjp_s"] = {"per_loss": per_loss, "fused": fused}
    return out


def _table(results: list[dict]) -> str:
    head = f"{'':<26}" + "".join(f"{r['preset']:>26}" for r in results)
    lines = [head, "-" * len(head)]

    def row(label: str, fmt) -> None:
        lines.append(f"{label:<26}" + "".join(f"{fmt(r):>26}" for r in results))

    row("MEDIAN WHOLE STEP", lambda r: f"{r['median_step_s']:.3f} s")
    row("audiocraft anchor (median)", lambda r: f"{r['anchor_median_step_s']:.3f} s"
        if "anchor_median_step_s" in r else "-")
    row("ratio raycodec/audiocraft", lambda r: f"{r['ratio_to_anchor']:.3f}"
        if "ratio_to_anchor" in r else "-")
    row("median CPU s (user+sys)",
        lambda r: f"{r['median_cpu_s']:.2f} (sys {r['median_sys_s']:.2f})")
    row("anchor CPU s (user+sys)", lambda r: f"{r['anchor_median_cpu_s']:.2f} "
        f"(sys {r['anchor_median_sys_s']:.2f})" if "anchor_median_cpu_s" in r else "-")
    row("CPU-time ratio", lambda r: f"{r['cpu_ratio_to_anchor']:.3f}"
        if "cpu_ratio_to_anchor" in r else "-")
    row("audio-seconds per second", lambda r: f"{r['audio_s_per_s']:.2f}")
    row("peak memory", lambda r: f"{r['peak_memory_mb']:.0f} MB")
    lines.append("per-phase minima:")
    for p in PHASES:
        row(f"  {p}", lambda r, p=p: f"{r['phase_minima_s'][p]:.3f} s")
    row("  (sum of minima)", lambda r: f"{r['phase_minima_sum_s']:.3f} s")
    for r in results:
        if "loss_grads_vs_fused_vjp_s" in r:
            v = r["loss_grads_vs_fused_vjp_s"]
            lines.append(f"{r['preset']}: per-loss VJPs {v['per_loss']:.3f} s vs one fused "
                         f"weighted VJP {v['fused']:.3f} s")
    return "\n".join(lines)


def _load() -> str:
    try:
        return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:  # pragma: no cover - not on every platform
        return "load average unknown"


def main(argv: list[str] | None = None) -> dict:
    """Parse arguments, run the benchmark, print the table and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", nargs="+", default=["debug", "audiocraft_base_24khz"])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--autocast", choices=["bf16"], default=None)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--no-anchor", dest="anchor", action="store_false")
    parser.add_argument("--check-steps", type=int, default=0)
    parser.add_argument("--check-batch", type=int, default=None)
    parser.add_argument("--vjp", action="store_true")
    parser.add_argument("--out", default="benchmarks/results/bench_step.json")
    args = parser.parse_args(argv)

    load_before = _load()
    results = [bench_preset(p, args.batch, args.seconds, args.steps, args.warmup, args.device,
                            args.autocast, args.compile, args.anchor, args.vjp)
               for p in args.presets]
    print(_table(results))
    checks = []
    if args.check_steps and (args.autocast or args.compile):
        for p in args.presets:
            check = compare_metrics(p, args.check_steps, args.check_batch or args.batch,
                                    args.seconds, args.device, args.autocast, args.compile)
            print("\n" + format_comparison(check))
            checks.append(check)
    info = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "load_before": load_before, "load_after": _load(), **vars(args)}
    print(f"\n{load_before} before, {info['load_after']} after (other jobs share these CPUs)")
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    report = {"config": info, "results": results, "metric_checks": checks}
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
    print(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
