"""The session's local Ray (started by start_local_ray): detached actors find its State API.

Ray Train's PlacementGroupCleaner is such an actor: it asks the State API (address None, i.e.
auto-detection) whether a run's controller is alive and frees the run's placement group when it
is not. Auto-detection reads /tmp/ray/ray_current_cluster, which a killed `ray start` head
leaves behind pointing at a dead cluster; then the cleaner's thread dies and every trial Tune
stops leaks its workers' CPUs.
"""

import urllib.error
import urllib.request

import ray

from raycodec.train.local_ray import API_SERVER_ENV


@ray.remote(num_cpus=0)
class Probe:
    """Does what the PlacementGroupCleaner does to learn whether an actor is alive."""

    def state_api(self) -> tuple[str, int]:
        import os

        from ray.util.state import list_actors

        alive = list_actors(filters=[("state", "=", "ALIVE")], timeout=30)
        return os.environ[API_SERVER_ENV], len(alive)


def test_detached_actors_reach_the_state_api(ray_local):
    probe = Probe.options(lifetime="detached", name="state-api-probe").remote()
    try:
        url, alive = ray.get(probe.state_api.remote(), timeout=120)
    finally:
        ray.kill(probe)
    assert alive >= 1  # the probe itself
    try:  # the session cluster's own dashboard (401: it wants the cluster's auth token)
        status = urllib.request.urlopen(f"{url}/api/version", timeout=10).status
    except urllib.error.HTTPError as exc:
        status = exc.code
    assert status in (200, 401)
