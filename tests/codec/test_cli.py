"""The `raycodec` console script."""

import shutil
import subprocess

import soundfile as sf

from raycodec.cli import main


def test_compress_decompress_cli(debug_ckpt, clip, tmp_path, capsys):
    out = tmp_path / "c.rcdc"
    assert main(["compress", str(clip), str(out), "--checkpoint", str(debug_ckpt),
                 "--bandwidth", "3"]) == 0
    assert "4 codebooks" in capsys.readouterr().out
    # The state.pt inside a checkpoint folder is accepted too (one resolver for every form).
    assert main(["compress", str(clip), str(tmp_path / "s.rcdc"), "--checkpoint",
                 str(debug_ckpt / "state.pt"), "--bandwidth", "3"]) == 0
    assert main(["decompress", str(out), str(tmp_path / "d.wav")]) == 0
    assert sf.info(tmp_path / "d.wav").frames == sf.info(clip).frames


def test_user_errors_exit_2_with_one_line(debug_ckpt, clip, tmp_path, capsys):
    assert main(["decompress", str(clip), str(tmp_path / "x.wav")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "raycodec decompress: error: not a raycodec .rcdc file (bad magic)"
    assert main(["compress", str(clip), str(tmp_path / "y.rcdc"), "--checkpoint",
                 str(debug_ckpt), "--bandwidth", "100"]) == 2
    assert "out of range" in capsys.readouterr().err
    assert main(["export", str(debug_ckpt), str(tmp_path / "e.th")]) == 2
    assert "matches no `encodec` package architecture" in capsys.readouterr().err
    (tmp_path / "junk.th").write_bytes(b"not a checkpoint")
    assert main(["compress", str(clip), str(tmp_path / "z.rcdc"), "--checkpoint",
                 str(tmp_path / "junk.th")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("raycodec compress: error: cannot read checkpoint") and "\n" not in err


def test_console_script_installed(tmp_path):
    exe = shutil.which("raycodec") or ".venv/bin/raycodec"
    res = subprocess.run([exe, "compress", str(tmp_path / "missing.wav"), "o.rcdc",
                          "--checkpoint", str(tmp_path / "nope")], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 2
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert "checkpoint not found" in res.stderr
