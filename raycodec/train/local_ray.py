"""Start a private local Ray cluster in which Ray Train can free its placement groups."""

from __future__ import annotations

import socket
from typing import Any

API_SERVER_ENV = "RAY_API_SERVER_ADDRESS"


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_local_ray(num_cpus: int | None = None, **kwargs: Any) -> str:
    """`ray.init(address="local")` with a dashboard whose address every worker knows; returns
    the dashboard URL.

    Ray Train's PlacementGroupCleaner (a detached actor) frees a run's placement group when
    Tune stops the trial (ASHA, PBT). It finds the State API by auto-detection, which reads
    /tmp/ray/ray_current_cluster: the last `ray start` head on this machine, stale once that
    head was killed rather than `ray stop`ped. The lookup then times out, the cleaner's thread
    dies, every stopped trial leaks its workers' CPUs, and later trials (and their Ray Data
    tasks) wait forever. Naming the dashboard in the workers' environment skips the lookup; the
    driver's own environment is left alone (its `ray job submit` calls target other clusters).
    """
    import ray

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    runtime_env = dict(kwargs.pop("runtime_env", None) or {})
    runtime_env["env_vars"] = {**runtime_env.get("env_vars", {}), API_SERVER_ENV: url}
    ray.init(address="local", num_cpus=num_cpus, include_dashboard=True,
             dashboard_host="127.0.0.1", dashboard_port=port, runtime_env=runtime_env, **kwargs)
    return url
