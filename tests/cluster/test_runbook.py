"""The runbook's local commands (cluster/README.md, "1. Laptop") against a head node of this test:
`ray start --head`, `ray job submit` of the debug job, `aim up` on the repo the job wrote; and the
launcher head's helpers: the `bash -c` Aim address, `reserve_gpus.py`, `start-aim.sh`."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest

from raycodec.data import generate_collection
from raycodec.train.local_ray import free_port
from tests.cluster.common import CLUSTER, README, REPO

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent


def _env(**extra) -> dict:
    """This venv first on PATH (the job runs its `python`); no inherited RAY_ADDRESS."""
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0",
               PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **extra)
    env.pop("RAY_ADDRESS", None)
    return env


def _stop(proc: subprocess.Popen, grace: float = 5.0) -> None:
    """SIGTERM the process group of a process we started (its own session), then SIGKILL it."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue


def _get_json(url: str, deadline: float, proc: subprocess.Popen | None = None):
    """GET url until it answers JSON (a server still starting refuses or answers non-JSON)."""
    last = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return json.loads(response.read())
        except (OSError, ValueError) as exc:
            last = exc
            time.sleep(1)
    raise AssertionError(f"{url} never answered JSON: {last!r}")


@contextmanager
def _aim_up(repo: Path, log: Path):
    """`aim up --repo REPO` on a free port; yields its base URL."""
    port = free_port()
    with open(log, "w") as out:
        proc = subprocess.Popen([str(BIN / "aim"), "up", "--repo", str(repo), "-h", "127.0.0.1",
                                 "-p", str(port)], env=_env(), stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield f"http://127.0.0.1:{port}", proc
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    """`ray start --head` as the runbook runs it, on free ports (the session's Ray keeps the
    defaults). `--block` makes the head a process of this test, stopped by signalling it:
    `ray stop` would kill every Ray on this machine, other test sessions' included. A temp dir
    of its own keeps it out of /tmp/ray/ray_current_cluster, which `ray.init()` elsewhere on
    this machine would otherwise join."""
    log = tmp_path_factory.mktemp("head") / "ray-start.log"
    temp_dir = tempfile.mkdtemp(prefix="rc-", dir="/tmp")  # short: Unix socket paths live in it
    env = _env(RAY_AUTH_MODE="token")
    subprocess.run([str(BIN / "ray"), "get-auth-token", "--generate"], env=env, check=True,
                   capture_output=True, timeout=120)  # a no-op when ~/.ray/auth_token exists
    gcs_port, dashboard = free_port(), free_port()
    cmd = [str(BIN / "ray"), "start", "--head", "--num-cpus=4", "--dashboard-host=127.0.0.1",
           "--disable-usage-stats", "--block", f"--temp-dir={temp_dir}", f"--port={gcs_port}",
           f"--dashboard-port={dashboard}", f"--dashboard-agent-listen-port={free_port()}",
           f"--metrics-export-port={free_port()}", f"--runtime-env-agent-port={free_port()}",
           f"--ray-client-server-port={free_port()}"]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        address = f"http://127.0.0.1:{dashboard}"
        deadline = time.monotonic() + 180
        while True:  # up once the dashboard answers at all (401 without the token)
            assert proc.poll() is None, f"ray start exited: {log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"no dashboard: {log.read_text()[-3000:]}"
            try:
                urllib.request.urlopen(f"{address}/api/version", timeout=5).close()
                break
            except urllib.error.HTTPError:
                break
            except OSError:
                time.sleep(1)
        text = re.sub(r"\x1b\[[0-9;]*m", "", log.read_text())  # no colour codes
        node_ip = re.search(r"Local node IP: ([\d.]+)", text)
        assert node_ip, text[-3000:]
        yield SimpleNamespace(address=address, gcs=f"{node_ip.group(1)}:{gcs_port}", env=env)
    finally:
        _stop(proc)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _submit(head, *args: str, timeout: float = 400) -> subprocess.CompletedProcess:
    """`ray job submit --address ADDRESS ARGS...` from the repository root; waits for the job."""
    return subprocess.run([str(BIN / "ray"), "job", "submit", "--address", head.address, *args],
                          cwd=REPO, env=head.env, capture_output=True, text=True, timeout=timeout)


def test_runbook_local_commands_train_and_aim_up(head, tmp_path):
    readme = README.read_text()
    for command in ("ray get-auth-token --generate",
                    "RAY_AUTH_MODE=token ray start --head --num-cpus=4 "
                    "--dashboard-host=127.0.0.1 --disable-usage-stats",
                    "RAY_AUTH_MODE=token ray job submit --address http://127.0.0.1:8265 "
                    "--working-dir . --",
                    "python experiments/train.py --config debug dataset.path=$PWD/data/demo/audio",
                    "ray.storage_path=$PWD/results", "aim up --repo results/aim"):
        assert command in readme, f"the runbook no longer says {command!r}"

    audio, results = tmp_path / "audio", tmp_path / "results"
    generate_collection(audio, minutes=0.3, seed=0, max_duration=5.0)
    job = _submit(head, "--working-dir", ".", "--", "python", "experiments/train.py",
                  "--config", "debug", f"dataset.path={audio}", f"ray.storage_path={results}",
                  "optim.epochs=1", "optim.updates_per_epoch=2", "ray.num_workers=1",
                  "dataset.valid.num_samples=8")
    output = job.stdout + job.stderr
    assert job.returncode == 0, output[-4000:]
    assert re.search(r"Job '\S+' succeeded", output), output[-4000:]
    assert list(results.glob("*/checkpoint_*")), "the job wrote no checkpoint"

    # `aim up --repo results/aim`: the UI serves the repo the job wrote (the default
    # tracking.repo, <ray.storage_path>/aim).
    with _aim_up(results / "aim", tmp_path / "aim-up.log") as (url, proc):
        deadline = time.monotonic() + 90
        assert isinstance(_get_json(f"{url}/api/projects/", deadline, proc), dict)
        experiments = _get_json(f"{url}/api/experiments/", deadline, proc)
        assert "debug" in {e["name"] for e in experiments}, experiments


def test_launcher_job_shell_resolves_the_aim_server_address(head):
    """The runbook's `bash -c '... tracking.repo=aim://${RAY_ADDRESS%:*}:53800'`: in a job's
    shell RAY_ADDRESS is the GCS address, so the expansion gives the head's IP."""
    job = _submit(head, "--", "bash", "-c",
                  "echo address=$RAY_ADDRESS repo=aim://${RAY_ADDRESS%:*}:53800", timeout=180)
    assert job.returncode == 0, (job.stdout + job.stderr)[-3000:]
    host = head.gcs.rsplit(":", 1)[0]
    assert f"address={head.gcs} repo=aim://{host}:53800" in job.stdout, job.stdout[-3000:]


def test_reserve_gpus_releases_and_reports_a_shortage(head):
    env = dict(head.env, RAY_ADDRESS=head.gcs)
    script = str(CLUSTER / "reserve_gpus.py")
    release = subprocess.run([sys.executable, script, "0"], env=env, capture_output=True,
                             text=True, timeout=180)
    assert release.returncode == 0, release.stderr[-3000:]
    assert "reservation released" in release.stdout
    # A CPU-only head without an autoscaler never gets a GPU: the wait ends in an error.
    short = subprocess.run([sys.executable, script, "1", "--timeout", "1"], env=env,
                           capture_output=True, text=True, timeout=180)
    assert short.returncode == 1
    assert "only 0 of 1 GPUs" in short.stderr
    subprocess.run([sys.executable, script, "0"], env=env, capture_output=True, timeout=180)


def test_start_aim_serves_tracking_and_ui_once(tmp_path):
    """cluster/start-aim.sh as the launcher's head runs it: a run logged through the tracking
    server shows in the UI; a second start leaves both servers alone."""
    ports = {"AIM_SERVER_PORT": str(free_port()), "AIM_UI_PORT": str(free_port())}
    env = _env(AIM_REPO=str(tmp_path / "aim"), AIM_RUN_DIR=str(tmp_path / "run"), **ports)
    start = [str(REPO / "cluster" / "start-aim.sh")]
    first = subprocess.run(["bash", *start], env=env, capture_output=True, text=True, timeout=120)
    pids = {p.stem: int(p.read_text()) for p in (tmp_path / "run").glob("*.pid")}
    try:
        assert first.returncode == 0, first.stderr
        assert set(pids) == {"aim-server", "aim-ui"}
        ui = f"http://127.0.0.1:{ports['AIM_UI_PORT']}"
        assert isinstance(_get_json(f"{ui}/api/projects/", time.monotonic() + 90), dict)
        track = ("import aim; run = aim.Run(repo='aim://127.0.0.1:{}', experiment='via_server', "
                 "system_tracking_interval=None, capture_terminal_logs=False); "
                 "run.track(1.0, name='loss'); run.close()").format(ports["AIM_SERVER_PORT"])
        logged = subprocess.run([sys.executable, "-c", track], env=_env(), capture_output=True,
                                text=True, timeout=120)
        assert logged.returncode == 0, logged.stderr[-3000:]
        experiments = _get_json(f"{ui}/api/experiments/", time.monotonic() + 30)
        assert "via_server" in {e["name"] for e in experiments}

        again = subprocess.run(["bash", *start], env=env, capture_output=True, text=True,
                               timeout=120)
        assert again.returncode == 0, again.stderr
        assert again.stdout.count("already running") == 2
        assert {p.stem: int(p.read_text()) for p in (tmp_path / "run").glob("*.pid")} == pids
    finally:
        for pid in pids.values():  # setsid: each server leads its own process group
            try:
                os.killpg(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
