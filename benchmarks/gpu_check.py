"""The prepared GPU check (issue 15); run it through `benchmarks/gpu_check.sh`.

    bash benchmarks/gpu_check.sh                        # one CUDA GPU, <= 8 minutes on an H100
    bash benchmarks/gpu_check.sh --device cpu --quick   # every code path, tiny sizes, on CPU

Parts (`--parts`, default all):
  step   the GAN step of the audiocraft base preset at batch 16 and 64 x 1 s in fp32, bf16
         autocast and bf16 + torch.compile: median step, audio-seconds/s, peak memory; then
         20 steps of bf16 + compile against fp32 from the same weights (metric gaps).
  train  a 1-GPU `experiments/train.py` job of two short epochs on generated audio.
  codec  `raycodec compress` / `decompress --device` of a 30 s file with the 24 kHz model.
Targets: bf16 + compile >= 2x fp32 at equal metrics; >= 70 audio-s/s at batch 64 x 1 s.
`--quick` shrinks every size (debug preset, batch 2 x 0.25 s, 2 epochs of 2 updates, a 3 s
file) and compiles with aot_eager, so CPU tests run the same code in about a minute.
Writes one JSON (`--out`) and prints a table; scratch files stay under `--work`.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from bench_step import bench_preset  # noqa: E402
from step_check import compare_metrics, format_comparison  # noqa: E402

VARIANTS = [("fp32", None, False), ("bf16", "bf16", False), ("bf16+compile", "bf16", True)]
FULL = {"preset": "audiocraft_base_24khz", "batches": [16, 64], "seconds": 1.0, "steps": 5,
        "warmup": 2, "check_steps": 20, "check_batch": 16, "backend": None,
        "train": ["model=audiocraft_base_24khz", "msstftd.filters=32", "optim.updates_per_epoch=20",
                  "dataset.batch_size=16", "dataset.segment_duration=1.0"],
        "minutes": 2.0, "codec_preset": "encodec_24khz", "codec_seconds": 30.0}
QUICK = {"preset": "debug", "batches": [2], "seconds": 0.25, "steps": 1, "warmup": 0,
         "check_steps": 1, "check_batch": 2, "backend": "aot_eager",
         "train": ["optim.updates_per_epoch=2", "dataset.batch_size=2",
                   "dataset.segment_duration=0.25", "dataset.valid.num_samples=2",
                   "msstftd.filters=4"],
        "minutes": 0.2, "codec_preset": "debug", "codec_seconds": 3.0}


def check_device(device: str) -> None:
    """Exit with one line when CUDA is asked for and absent."""
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        sys.exit(f"gpu_check: --device {device} but no CUDA GPU is visible "
                 "(torch.cuda.is_available() is False); use --device cpu --quick on CPU")


def part_step(sizes: dict, device: str) -> dict:
    """Median step, audio-s/s and peak memory per (batch, variant); the bf16+compile check."""
    rows = []
    for batch in sizes["batches"]:
        for name, autocast, compile in VARIANTS:
            r = bench_preset(sizes["preset"], batch, sizes["seconds"], sizes["steps"],
                             sizes["warmup"], device, autocast, compile, anchor=False,
                             compile_backend=sizes["backend"])
            rows.append({"batch": batch, "variant": name, "median_step_s": r["median_step_s"],
                         "audio_s_per_s": r["audio_s_per_s"],
                         "peak_memory_mb": r["peak_memory_mb"]})
            if device.startswith("cuda"):
                torch.cuda.empty_cache()
    check = compare_metrics(sizes["preset"], sizes["check_steps"], sizes["check_batch"],
                            sizes["seconds"], device, "bf16", True, sizes["backend"])
    fp32 = {r["batch"]: r["median_step_s"] for r in rows if r["variant"] == "fp32"}
    for r in rows:
        r["speedup_vs_fp32"] = fp32[r["batch"]] / r["median_step_s"]
    best = max(sizes["batches"])
    fast = [r for r in rows if r["batch"] == best and r["variant"] == "bf16+compile"][0]
    targets = {"bf16_compile_2x_fp32": fast["speedup_vs_fp32"] >= 2.0 and check["ok"],
               "audio_s_per_s_70_at_largest_batch": fast["audio_s_per_s"] >= 70.0}
    return {"rows": rows, "metric_check": check, "targets": targets}


def _run(cmd: list[str], env: dict) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    return time.perf_counter() - start, proc


def _tail(proc: subprocess.CompletedProcess) -> str:
    return (proc.stdout + proc.stderr)[-2000:]


def part_train(sizes: dict, device: str, work: str, env: dict) -> dict:
    """Two short epochs of `experiments/train.py` on one worker (the GPU on CUDA)."""
    data, storage = os.path.join(work, "audio"), os.path.join(work, "ray")
    shutil.rmtree(storage, ignore_errors=True)  # a rerun must train, not find a finished run
    _, gen = _run([sys.executable, "-m", "raycodec.data.synth", data, "--minutes",
                   str(sizes["minutes"]), "--seed", "0", "--max-duration", "10"], env)
    if gen.returncode:
        return {"ok": False, "error": "audio generation failed", "log": _tail(gen)}
    use_gpu = str(device.startswith("cuda")).lower()
    cmd = [sys.executable, "experiments/train.py", "--config", "debug", f"dataset.path={data}",
           "ray.num_workers=1", f"ray.use_gpu={use_gpu}", f"ray.storage_path={storage}",
           f"tracking.repo={os.path.join(work, 'aim')}", "optim.epochs=2", *sizes["train"]]
    wall, proc = _run(cmd, env)
    checkpoints = glob.glob(os.path.join(storage, "*", "checkpoint_*"))
    return {"ok": proc.returncode == 0 and bool(checkpoints), "wall_s": wall,
            "returncode": proc.returncode, "checkpoints": len(checkpoints), "use_gpu": use_gpu,
            "log_tail": _tail(proc)}


def part_codec(sizes: dict, device: str, work: str, env: dict) -> dict:
    """`raycodec compress/decompress --device` of a generated file with a saved model."""
    import soundfile as sf

    from raycodec.models import build_model

    os.makedirs(work, exist_ok=True)
    torch.manual_seed(0)
    model = build_model(sizes["codec_preset"])
    ckpt = os.path.join(work, "codec.th")
    torch.save(model.state_dict(), ckpt)
    sr, n = model.sample_rate, int(sizes["codec_seconds"] * model.sample_rate)
    t = torch.arange(n) / sr
    audio = 0.3 * torch.sin(2 * torch.pi * 220 * t) * torch.sin(2 * torch.pi * 0.5 * t)
    src, rcdc, out = (os.path.join(work, f) for f in ("in.wav", "in.rcdc", "out.wav"))
    sf.write(src, audio.numpy(), sr)
    base = [sys.executable, "-m", "raycodec.cli"]
    common = ["--preset", sizes["codec_preset"], "--device", device]
    wall_c, comp = _run(base + ["compress", src, rcdc, "--checkpoint", ckpt, *common], env)
    if comp.returncode:
        return {"ok": False, "error": "compress failed", "log": _tail(comp)}
    wall_d, dec = _run(base + ["decompress", rcdc, out, "--checkpoint", ckpt, *common], env)
    ok = dec.returncode == 0 and os.path.exists(out) and sf.info(out).frames == n
    return {"ok": ok, "seconds": sizes["codec_seconds"], "compress_wall_s": wall_c,
            "decompress_wall_s": wall_d, "compress_x_realtime": sizes["codec_seconds"] / wall_c,
            "decompress_x_realtime": sizes["codec_seconds"] / wall_d,
            "bytes": os.path.getsize(rcdc), "log_tail": _tail(dec) if not ok else ""}


def table(report: dict) -> str:
    """The printed summary."""
    lines = [f"gpu_check on {report['device_name']} ({'quick' if report['quick'] else 'full'})"]
    step = report.get("step")
    if step:
        lines.append(f"{'batch':>6} {'variant':<14}{'median step':>12}{'audio-s/s':>11}"
                     f"{'speed-up':>10}{'peak MB':>10}")
        for r in step["rows"]:
            lines.append(f"{r['batch']:>6} {r['variant']:<14}{r['median_step_s']:>10.3f} s"
                         f"{r['audio_s_per_s']:>11.1f}{r['speedup_vs_fp32']:>9.2f}x"
                         f"{r['peak_memory_mb']:>10.0f}")
        lines.append(format_comparison(step["metric_check"]))
        lines += [f"target {k}: {'met' if v else 'MISSED'}" for k, v in step["targets"].items()]
    if "train" in report:
        tr = report["train"]
        lines.append(f"train.py 2 epochs, 1 worker (use_gpu={tr.get('use_gpu')}): "
                     f"{'ok' if tr['ok'] else 'FAILED'} in {tr.get('wall_s', 0):.1f} s")
    if "codec" in report:
        c = report["codec"]
        if c["ok"]:
            lines.append(f"codec {c['seconds']:.0f} s file: compress {c['compress_wall_s']:.1f} s "
                         f"({c['compress_x_realtime']:.1f}x real time), decompress "
                         f"{c['decompress_wall_s']:.1f} s ({c['decompress_x_realtime']:.1f}x)")
        else:
            lines.append(f"codec: FAILED ({c.get('error', 'decoded file wrong')})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the selected parts, print the table, write the JSON; 1 if a part failed."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--parts", nargs="+", default=["step", "train", "codec"],
                   choices=["step", "train", "codec"])
    p.add_argument("--out", default=os.path.join(ROOT, "benchmarks/results/gpu_check.json"))
    p.add_argument("--work", default=os.path.join(ROOT, "benchmarks/results/gpu_check"))
    for key in ("preset", "steps", "warmup", "check_steps", "check_batch"):
        p.add_argument("--" + key.replace("_", "-"), type=str if key == "preset" else int,
                       help="override the step part's size")
    p.add_argument("--batches", type=int, nargs="+", help="override the step part's batches")
    args = p.parse_args(argv)
    check_device(args.device)
    sizes = dict(QUICK if args.quick else FULL)
    for key in ("preset", "steps", "warmup", "check_steps", "check_batch", "batches"):
        if getattr(args, key) is not None:
            sizes[key] = getattr(args, key)
    env = dict(os.environ)
    start = time.perf_counter()
    report: dict = {"device": args.device, "quick": args.quick, "torch": torch.__version__,
                    "device_name": torch.cuda.get_device_name(0)
                    if args.device.startswith("cuda") else "cpu", "sizes": sizes}
    if "step" in args.parts:
        report["step"] = part_step(sizes, args.device)
    if "train" in args.parts:
        report["train"] = part_train(sizes, args.device, args.work, env)
    if "codec" in args.parts:
        report["codec"] = part_codec(sizes, args.device, args.work, env)
    report["wall_s"] = time.perf_counter() - start
    print(table(report))
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
    print(f"wrote {args.out} ({report['wall_s']:.0f} s)")
    failed = [k for k in ("train", "codec") if k in report and not report[k]["ok"]]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
