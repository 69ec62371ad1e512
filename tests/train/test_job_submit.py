"""A real `ray job submit` of the debug training job against a head node this test starts."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from raycodec.data import generate_collection
from tests.ray_head import BIN, ray_head

REPO = Path(__file__).resolve().parents[2]
POLL = """
import json, sys, time
from ray.job_submission import JobStatus, JobSubmissionClient
client = JobSubmissionClient(sys.argv[1])
deadline = time.time() + float(sys.argv[3])
while time.time() < deadline:
    status = client.get_job_status(sys.argv[2])
    if status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED):
        break
    time.sleep(2)
print(json.dumps({"status": str(status), "logs": client.get_job_logs(sys.argv[2])[-8000:]}))
"""


@pytest.fixture(scope="module")
def head_node():
    """A head node of this module's own, stopped without touching the shared local cluster."""
    with ray_head() as head:
        yield head


def test_ray_job_submit_runs_the_debug_job(head_node, tmp_path):
    address, env = head_node
    audio = tmp_path / "audio"
    generate_collection(audio, minutes=0.5, seed=1, max_duration=6.0)
    job_id = f"raycodec_test_{os.getpid()}"
    submit = subprocess.run(
        [str(BIN / "ray"), "job", "submit", "--address", address, "--working-dir", str(REPO),
         "--submission-id", job_id, "--no-wait", "--", "python", "experiments/train.py",
         "--config", "debug", f"dataset.path={audio}", f"ray.storage_path={tmp_path / 'res'}"],
        env=env, capture_output=True, text=True, timeout=180)
    assert submit.returncode == 0, submit.stderr[-2000:]
    poll = subprocess.run([sys.executable, "-c", POLL, address, job_id, "480"], env=env,
                          capture_output=True, text=True, timeout=600)
    assert poll.returncode == 0, poll.stderr[-2000:]
    outcome = json.loads(poll.stdout.strip().splitlines()[-1])
    assert outcome["status"] == "SUCCEEDED", outcome["logs"]
    assert "final validation" in outcome["logs"]
    progress = [line for line in outcome["logs"].splitlines() if "[raycodec] epoch " in line]
    assert progress and len(progress) == len(set(progress)), progress  # one line per epoch
    checkpoints = list((tmp_path / "res").glob("*/checkpoint_*/state.pt"))
    assert checkpoints, "the job wrote no checkpoint"
    assert (tmp_path / "res" / "aim" / ".aim").is_dir()
