"""Shared fixtures: one local Ray cluster per test session, started lazily."""

import os

import pytest

# Keep Ray quiet in tests. The dashboard stays on: Train frees placement groups through it.
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")


@pytest.fixture(scope="session")
def ray_local():
    """A local Ray cluster with 4 logical CPUs, shared by every test that asks for it."""
    import ray

    from raycodec.train.local_ray import start_local_ray

    # Always a fresh cluster, even while a test's `ray start` head is running; its workers are
    # told where its dashboard is (see start_local_ray: stopped trials free their resources).
    start_local_ray(4, log_to_driver=False, configure_logging=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()
