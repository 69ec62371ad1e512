"""The package's public API: every export resolves, and importing it stays light."""

from __future__ import annotations

import subprocess
import sys

import raycodec.data as data


def test_every_export_resolves():
    assert data.__all__ == sorted(data._WHERE)
    for name in data.__all__:
        assert getattr(data, name) is not None


def test_import_is_light_and_cli_modules_run_cleanly():
    code = "import sys, raycodec.data; print('torch' in sys.modules, 'ray' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stdout.split() == ["False", "False"]
    r = subprocess.run([sys.executable, "-m", "raycodec.data.manifest", "--help"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "--out" in r.stdout
    assert "RuntimeWarning" not in r.stderr
