"""benchmarks/gpu_check.sh: every part runs on CPU (--quick); CUDA without a GPU fails clearly."""

import json
import os
import subprocess
import sys
import tempfile

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "benchmarks", "gpu_check.sh")


def _env(work) -> dict:
    # A short Ray temp dir: socket paths under pytest's tmp_path can pass the 107-byte limit.
    return {**os.environ, "GPU_CHECK_WORK": str(work), "PYTHON": sys.executable,
            "RAY_TMPDIR": tempfile.mkdtemp(prefix="rc")}


def test_quick_cpu_run_covers_every_part(tmp_path):
    out = tmp_path / "gpu_check.json"
    proc = subprocess.run(["bash", SCRIPT, "--device", "cpu", "--quick", "--out", str(out)],
                          env=_env(tmp_path / "work"), capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    variants = [(r["batch"], r["variant"]) for r in report["step"]["rows"]]
    assert variants == [(2, "fp32"), (2, "bf16"), (2, "bf16+compile")]
    for row in report["step"]["rows"]:
        assert row["median_step_s"] > 0 and row["audio_s_per_s"] > 0 and row["peak_memory_mb"] > 0
    assert set(report["step"]["metric_check"]["metrics"]) >= {"l1", "msspec", "d_loss"}
    assert report["train"]["ok"] and report["train"]["checkpoints"] >= 1, report["train"]
    assert report["codec"]["ok"] and report["codec"]["bytes"] > 0, report["codec"]
    assert "median step" in proc.stdout and "codec 3 s file" in proc.stdout


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_without_gpu_fails_with_one_line(tmp_path):
    proc = subprocess.run(["bash", SCRIPT, "--device", "cuda"], env=_env(tmp_path),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [
        "gpu_check: --device cuda but no CUDA GPU is visible (torch.cuda.is_available() is "
        "False); use --device cpu --quick on CPU"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_codec_cli_device_cuda_without_gpu_is_one_line(tmp_path, capsys):
    from raycodec.cli import main
    from raycodec.models import build_model

    ckpt = tmp_path / "m.th"
    torch.save(build_model("debug").state_dict(), ckpt)
    wav = tmp_path / "a.wav"
    import soundfile as sf

    sf.write(wav, torch.zeros(2400).numpy(), 24000)
    rc = main(["compress", str(wav), str(tmp_path / "a.rcdc"), "--checkpoint", str(ckpt),
               "--preset", "debug", "--device", "cuda"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "no CUDA GPU is available" in err[0]
