"""tune_malloc: freed large blocks stay in the heap, so reusing them costs no page faults."""

import resource
import sys

import pytest
import torch

from raycodec.train.allocator import tune_malloc


def _faults_of_one_step() -> int:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    x = torch.ones(16 * 2**20)  # 64 MiB: above glibc's largest mmap threshold
    del x
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_tuned_malloc_reuses_freed_blocks():
    try:
        assert tune_malloc(False)
        default = min(_faults_of_one_step() for _ in range(3))
        assert tune_malloc(True) and tune_malloc(True)  # idempotent
        tuned = min(_faults_of_one_step() for _ in range(6))  # the first ones grow the heap
    finally:
        tune_malloc(True)  # what GANStep leaves in place on CPU
    assert default > 1000, default  # every step re-faults the fresh mapping
    assert tuned < default / 10, (tuned, default)
