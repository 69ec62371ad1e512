"""The training command line: --config, overrides, --print-config, clean errors."""

import subprocess
import sys

import pytest

from raycodec.config import experiment_signature, load_config, parse_train_args


def test_parse_config_and_overrides():
    cfg = parse_train_args(["--config", "debug", "optim.epochs=3", "label=x"])
    assert cfg == load_config("debug", ["optim.epochs=3", "label=x"])
    assert parse_train_args([]) == load_config()


def test_print_config(capsys):
    with pytest.raises(SystemExit) as exit_:
        parse_train_args(["optim.lr=1e-4", "--print-config", "--config=debug"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    cfg = load_config("debug", ["optim.lr=1e-4"])
    assert "lr: 0.0001" in out and f"# signature: {experiment_signature(cfg)}" in out


@pytest.mark.parametrize("argv, message", [
    (["optim.lrr=1"], "unknown key 'optim.lrr'; did you mean optim.lr?"),
    (["optim.lr=fast"], "expected float"),
    (["--config", "nope"], "unknown config 'nope'"),
    (["--bogus"], "unrecognized arguments"),
])
def test_errors_exit_2_with_message(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        parse_train_args(argv, prog="train.py")
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_script_exit_code_without_traceback(tmp_path):
    script = tmp_path / "train.py"
    script.write_text("from raycodec.config import parse_train_args\nparse_train_args()\n")
    proc = subprocess.run([sys.executable, str(script), "optim.lrr=1"], capture_output=True,
                          text=True)
    assert proc.returncode == 2
    assert "did you mean optim.lr?" in proc.stderr and "Traceback" not in proc.stderr
