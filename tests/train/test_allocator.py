"""tune_malloc: freed large blocks stay in the heap, so reusing them costs no page faults."""

import json
import subprocess
import sys

import pytest

# In a fresh interpreter: in the test session, earlier tests' GANSteps have tuned malloc and
# grown the heap already, and glibc cannot be put back to its dynamic mmap threshold.
MEASURE = """
import json, resource, torch
from raycodec.train.allocator import tune_malloc

def faults_of_one_step():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    x = torch.ones(16 * 2**20)  # 64 MiB: above glibc's largest mmap threshold
    del x
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

ok = [tune_malloc(False)]
default = min(faults_of_one_step() for _ in range(3))
ok += [tune_malloc(True), tune_malloc(True)]  # idempotent
tuned = min(faults_of_one_step() for _ in range(6))  # the first ones grow the heap
print(json.dumps({"ok": ok, "default": default, "tuned": tuned}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_tuned_malloc_reuses_freed_blocks():
    proc = subprocess.run([sys.executable, "-c", MEASURE], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert all(out["ok"]), out
    assert out["default"] > 1000, out  # every step re-faults the fresh mapping
    assert out["tuned"] < out["default"] / 10, out
