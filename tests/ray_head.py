"""A `ray start --head` node owned by one test module, stopped without touching other clusters.

`ray stop` stops every Ray process on the machine, including the session's shared local cluster
(tests/conftest.py), so the head runs with `--block` in its own process group and is stopped by
signalling that group.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from raycodec.train.local_ray import free_port

BIN = Path(sys.executable).parent


@contextlib.contextmanager
def ray_head(num_cpus: int = 4, timeout: float = 120.0):
    """Yield (dashboard URL, client env with RAY_AUTH_MODE=token) of a fresh head node."""
    # The job's `python` entrypoint must resolve to this venv's interpreter, as for a user who
    # started the head node from an activated venv.
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0",
               PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("RAY_ADDRESS", None)
    dashboard = free_port()
    gcs = free_port()
    ports = {"port": gcs, "dashboard-port": dashboard,
             "dashboard-agent-listen-port": free_port(), "metrics-export-port": free_port(),
             "runtime-env-agent-port": free_port(), "ray-client-server-port": free_port()}
    cmd = [str(BIN / "ray"), "start", "--head", "--block", f"--num-cpus={num_cpus}",
           "--dashboard-host=127.0.0.1", "--disable-usage-stats",
           *(f"--{k}={v}" for k, v in ports.items())]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    url = f"http://127.0.0.1:{dashboard}"
    try:
        deadline = time.time() + timeout
        while True:  # the dashboard answers once the head is up
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(
                        f"ray start --head did not come up (exit {proc.poll()})") from None
                time.sleep(1)
        yield url, dict(env, RAY_AUTH_MODE="token")  # Ray 2.60 heads require the token
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        # As `ray stop` does: a stale head address would send later auto-detection to a dead
        # cluster (raycodec.train.local_ray explains what that breaks).
        current = Path("/tmp/ray/ray_current_cluster")
        with contextlib.suppress(OSError):
            if current.read_text().strip().endswith(f":{gcs}"):
                current.unlink()
