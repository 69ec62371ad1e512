"""Ask the Ray autoscaler for N GPU workers and wait until they have joined; N=0 releases them.

raycodec's jobs check at start that the cluster already holds the GPUs and CPUs they need, and
fail at once otherwise (rather than wait forever for resources that may never come). On a cluster
whose GPU workers scale from zero, reserve them first, submit, then release the reservation once
the job runs (busy workers stay; idle ones leave after the idle timeout):

    ray exec cluster/aws-gpu.yaml 'python ~/raycodec/cluster/reserve_gpus.py 8'
    kubectl exec raycodec-head-POD -- python /home/ray/raycodec/cluster/reserve_gpus.py 8

The request persists until the next call: `reserve_gpus.py 0` ends it.
"""

import argparse
import os
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("gpus", type=int, help="GPUs to hold in the cluster (0: release)")
    parser.add_argument("--cpus-per-gpu", type=int, default=1,
                        help="CPUs that must come with each GPU (default 1: one Train worker)")
    parser.add_argument("--timeout", type=float, default=1800,
                        help="seconds to wait for the GPUs (spot capacity may be short)")
    args = parser.parse_args(argv)

    import ray
    from ray.autoscaler.sdk import request_resources

    # Join the running cluster only (RAY_ADDRESS, else the one on this node); never start one.
    ray.init(address=os.environ.get("RAY_ADDRESS", "auto"), log_to_driver=False,
             logging_level="WARNING")
    # One bundle per GPU so the autoscaler adds whole GPU nodes; overrides any earlier request.
    request_resources(bundles=[{"GPU": 1, "CPU": args.cpus_per_gpu}] * args.gpus)
    deadline = time.monotonic() + args.timeout
    while (have := ray.cluster_resources().get("GPU", 0)) < args.gpus:
        if time.monotonic() > deadline:
            print(f"only {have:g} of {args.gpus} GPUs after {args.timeout:g} s; the request "
                  "stands (release it with `reserve_gpus.py 0`)", file=sys.stderr)
            return 1
        print(f"waiting for GPUs: {have:g}/{args.gpus}", flush=True)
        time.sleep(min(15.0, max(0.1, deadline - time.monotonic())))
    print(f"{have:g} GPUs in the cluster" + ("" if args.gpus else "; reservation released"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
