"""Static checks of cluster/: every YAML, the launcher configs against Ray's schema, the KubeRay
manifests' structure, the Dockerfile against the lock, and the runbook's references."""

import copy
import json
import re
import shlex
from pathlib import Path

import jsonschema
import pytest
import ray
import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from raycodec.config import ConfigError, load_config, parse_train_args
from raycodec.tune import load_sweep
from tests.cluster.common import (
    CLUSTER,
    KUBERAY,
    LAUNCHER_CONFIGS,
    RAYJOBS,
    README,
    REPO,
    dockerfile_lines,
    find_key,
    image,
    load_docs,
    load_one,
    lock_pins,
    lock_python,
    pinned_version,
    pyproject,
)

RAY_SCHEMA = Path(ray.__file__).parent / "autoscaler" / "ray-schema.json"
YAML_FILES = sorted(CLUSTER.rglob("*.yaml"))
KUBERAY_FILES = sorted(KUBERAY.glob("*.yaml"))


def _ray_pin() -> str:
    return pinned_version(lock_pins()["ray"])


def _kuberay(name: str) -> dict:
    return load_one(KUBERAY / name)


def _aim_objects() -> dict:
    return {doc["kind"]: doc for doc in load_docs(KUBERAY / "aim.yaml")}


def _cluster_specs() -> list[tuple[str, dict]]:
    """(file, RayClusterSpec) of raycluster.yaml and of each RayJob."""
    specs = [("raycluster.yaml", _kuberay("raycluster.yaml")["spec"])]
    specs += [(name, _kuberay(name)["spec"]["rayClusterSpec"]) for name in RAYJOBS]
    return specs


def _gpus(container: dict) -> int:
    return int(container.get("resources", {}).get("limits", {}).get("nvidia.com/gpu", 0))


def _gpu_group(spec: dict) -> tuple[dict, dict]:
    """The GPU worker group of a RayClusterSpec and its pod's resource limits."""
    for group in spec["workerGroupSpecs"]:
        container = group["template"]["spec"]["containers"][0]
        if _gpus(container):
            return group, container["resources"]["limits"]
    raise AssertionError("no GPU worker group")


def _check_fits(cfg, node_cpus: float, node_gpus: float, max_nodes: int, concurrent: int = 1):
    """Train workers fit a node with a CPU to spare for Ray Data, and every worker has a GPU."""
    from raycodec.train.job import worker_resources

    per_worker = worker_resources(cfg)
    assert per_worker["CPU"] + 1 <= node_cpus, f"{per_worker} leaves no CPU for Ray Data"
    assert per_worker.get("GPU", 0) <= node_gpus
    gpus = concurrent * cfg.ray.num_workers * per_worker.get("GPU", 0)
    assert gpus <= max_nodes * node_gpus, f"{gpus} GPUs wanted, {max_nodes * node_gpus} allowed"


# --- every YAML ----------------------------------------------------------------------------------

def test_the_expected_files_exist():
    names = {p.relative_to(CLUSTER).as_posix() for p in CLUSTER.rglob("*") if p.is_file()}
    expected = {"aws-gpu.yaml", "gcp-gpu.yaml", "Dockerfile", "Dockerfile.dockerignore",
                "README.md", "start-aim.sh", "reserve_gpus.py", "kuberay/raycluster.yaml",
                "kuberay/rayjob-train.yaml", "kuberay/rayjob-tune.yaml", "kuberay/aim.yaml"}
    assert expected <= names, f"missing: {sorted(expected - names)}"


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: p.relative_to(CLUSTER).as_posix())
def test_every_yaml_parses_to_mappings(path):
    docs = load_docs(path)
    assert docs, f"{path.name} is empty"
    assert all(isinstance(doc, dict) for doc in docs)


# --- cluster launcher ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", LAUNCHER_CONFIGS)
def test_launcher_config_validates_against_rays_schema(name):
    schema = json.loads(RAY_SCHEMA.read_text())
    config = load_one(CLUSTER / name)
    jsonschema.validate(config, schema)
    # Ray's own checks on top (defaults merged, head type present, worker bounds).
    from ray.autoscaler._private.util import prepare_config, validate_config

    validate_config(prepare_config(copy.deepcopy(config)))


def test_rays_schema_rejects_a_misspelt_key():
    """The schema check above can fail: a typo at the top level is an error."""
    schema = json.loads(RAY_SCHEMA.read_text())
    config = load_one(CLUSTER / "aws-gpu.yaml")
    config["setup_comands"] = config.pop("setup_commands")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(config, schema)


@pytest.mark.parametrize("name", LAUNCHER_CONFIGS)
def test_launcher_has_cpu_head_and_autoscaling_gpu_workers(name):
    config = load_one(CLUSTER / name)
    types = config["available_node_types"]
    head = types[config["head_node_type"]]
    assert head["resources"].get("GPU", 0) == 0, "the head must be a CPU node"
    gpu_types = {k: v for k, v in types.items() if v["resources"].get("GPU", 0) > 0}
    assert gpu_types, "no GPU worker type"
    for key, node in gpu_types.items():
        assert node["min_workers"] == 0, f"{key}: idle GPU workers should scale to zero"
        assert 0 < node["max_workers"] <= config["max_workers"]
        assert node["resources"]["CPU"] > node["resources"]["GPU"], \
            f"{key}: leave CPUs for Ray Data beside the Train workers"
    assert config["idle_timeout_minutes"] > 0


def test_aws_gpu_workers_are_spot_and_can_write_the_bucket():
    config = load_one(CLUSTER / "aws-gpu.yaml")
    for node in config["available_node_types"].values():
        node_config = node["node_config"]
        is_gpu = node["resources"].get("GPU", 0) > 0
        spot = node_config.get("InstanceMarketOptions", {}).get("MarketType") == "spot"
        assert spot == is_gpu, "GPU workers on spot, the head on-demand"
        if is_gpu:
            assert node_config["InstanceType"].startswith(("g", "p"))
            assert "IamInstanceProfile" in node_config
    assert config["provider"]["cache_stopped_nodes"] is False


def test_gcp_gpu_workers_terminate_on_host_maintenance_and_are_spot():
    config = load_one(CLUSTER / "gcp-gpu.yaml")
    for key, node in config["available_node_types"].items():
        if node["resources"].get("GPU", 0) == 0:
            continue
        scheduling = node["node_config"]["scheduling"]
        # The Compute Engine API takes an object here, not a list of one-key objects.
        assert isinstance(scheduling, dict), f"{key}: scheduling must be a mapping"
        assert scheduling["onHostMaintenance"] == "TERMINATE"
        assert scheduling["provisioningModel"] == "SPOT"
        assert scheduling["automaticRestart"] is False
        accounts = node["node_config"]["serviceAccounts"]
        domain = f"@{config['provider']['project_id']}.iam.gserviceaccount.com"
        assert all(a["email"].endswith(domain) for a in accounts)


@pytest.mark.parametrize("name", LAUNCHER_CONFIGS)
def test_launcher_runs_the_image_installs_raycodec_and_keeps_auth_on(name):
    config = load_one(CLUSTER / name)
    assert config["docker"]["image"] == image()
    assert "--env RAY_AUTH_MODE=token" in config["docker"]["run_options"]
    mounts = config["file_mounts"]
    assert mounts["~/.ray/auth_token"].startswith("~/.ray/"), "the cluster token is synced"
    assert mounts["~/raycodec"] == "."
    for rsync_filter in config["rsync_filter"]:
        assert (REPO / rsync_filter).is_file(), f"rsync_filter names a missing {rsync_filter}"
    assert any(re.search(r"pip install .*-e ~/raycodec", c) for c in config["setup_commands"])
    head_start = " ".join(config["head_start_ray_commands"])
    assert "ray start --head" in head_start and "--dashboard-host" in head_start
    assert "--autoscaling-config=~/ray_bootstrap_config.yaml" in head_start
    # start-aim.sh runs from the synced checkout: it must exist in the repo.
    scripts = re.findall(r"~/raycodec/(\S+\.sh)", head_start)
    assert scripts and all((REPO / s).is_file() for s in scripts)
    assert "--address=$RAY_HEAD_IP:6379" in " ".join(config["worker_start_ray_commands"])
    # The Aim repo folder the head mounts is created (and owned by uid 1000) on the host.
    volume = next(o for o in config["docker"]["head_run_options"] if "/home/ray/aim" in o)
    host_dir = volume.split()[-1].split(":")[0]
    head = config["available_node_types"][config["head_node_type"]]
    assert any(host_dir in c and "chown 1000" in c for c in head["initialization_commands"])


def test_start_aim_serves_the_port_the_runbook_tracks_to():
    script = (CLUSTER / "start-aim.sh").read_text()
    port = re.search(r"AIM_SERVER_PORT:-(\d+)", script).group(1)
    assert f"tracking.repo=aim://${{RAY_ADDRESS%:*}}:{port}" in README.read_text()
    assert "--repo \"$repo\" -h 0.0.0.0" in script, "aim server must be reachable by workers"
    assert re.search(r"aim up .*-h 127\.0\.0\.1", script), "the UI stays head-local"


# --- KubeRay -------------------------------------------------------------------------------------

def test_kuberay_kinds_and_api_versions():
    assert _kuberay("raycluster.yaml")["apiVersion"] == "ray.io/v1"
    assert _kuberay("raycluster.yaml")["kind"] == "RayCluster"
    for name in RAYJOBS:
        job = _kuberay(name)
        assert (job["apiVersion"], job["kind"]) == ("ray.io/v1", "RayJob")
        assert job["spec"]["shutdownAfterJobFinishes"] is True
    aim = _aim_objects()
    assert set(aim) == {"PersistentVolumeClaim", "Deployment", "Service"}
    assert aim["Deployment"]["apiVersion"] == "apps/v1"
    assert aim["Service"]["apiVersion"] == aim["PersistentVolumeClaim"]["apiVersion"] == "v1"


@pytest.mark.parametrize("name,spec", _cluster_specs(), ids=[n for n, _ in _cluster_specs()])
def test_kuberay_cluster_spec(name, spec):
    assert spec["rayVersion"] == _ray_pin(), f"{name}: rayVersion differs from the image's Ray"
    assert spec["authOptions"]["mode"] == "token"
    head = spec["headGroupSpec"]["template"]["spec"]["containers"]
    assert all(_gpus(c) == 0 for c in head), f"{name}: the head must not hold a GPU"
    assert spec["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    groups = spec["workerGroupSpecs"]
    gpu_groups = [g for g in groups if any(_gpus(c) for c in g["template"]["spec"]["containers"])]
    assert gpu_groups, f"{name}: no GPU worker group"
    for group in gpu_groups:
        pod = group["template"]["spec"]
        for container in pod["containers"]:
            res = container["resources"]
            assert res["requests"]["nvidia.com/gpu"] == res["limits"]["nvidia.com/gpu"]
        assert any(t["key"] == "nvidia.com/gpu" for t in pod["tolerations"])
        assert group["minReplicas"] <= group.get("replicas", 0) <= group["maxReplicas"]
        assert pod["serviceAccountName"] == spec["headGroupSpec"]["template"]["spec"][
            "serviceAccountName"]


def test_one_image_everywhere():
    """Launcher configs, RayCluster, RayJobs and the Aim server run the image the README builds."""
    expected = image()
    found = {}
    for path in [CLUSTER / n for n in LAUNCHER_CONFIGS] + KUBERAY_FILES:
        for doc in load_docs(path):
            for value in find_key(doc, "image"):
                found.setdefault(value, []).append(path.name)
    assert set(found) == {expected}, found
    assert {p.name for p in KUBERAY_FILES} <= {n for names in found.values() for n in names}
    assert f"docker build -f cluster/Dockerfile -t {expected} ." in README.read_text()
    assert expected.rsplit(":", 1)[1] == pyproject()["project"]["version"]


def _entrypoint(name: str) -> tuple[str, list[str]]:
    argv = shlex.split(_kuberay(name)["spec"]["entrypoint"])
    assert argv[0] == "python", f"{name}: the entrypoint runs a script with python"
    return argv[1], argv[2:]


@pytest.mark.parametrize("name", RAYJOBS)
def test_rayjob_entrypoint_names_a_script_of_the_repo(name):
    script, _ = _entrypoint(name)
    assert script == f"experiments/{name.removeprefix('rayjob-').removesuffix('.yaml')}.py"
    if not (REPO / script).is_file():
        assert script == "experiments/tune.py", f"{script} does not exist"
        pytest.skip("experiments/tune.py is not written yet (the sweep issue)")
    runtime_env = yaml.safe_load(_kuberay(name)["spec"]["runtimeEnvYAML"])
    workdir = next(line.split()[1] for line in dockerfile_lines() if line.startswith("WORKDIR"))
    assert runtime_env["working_dir"] == workdir, "working_dir is the image's checkout"


def test_train_rayjob_overrides_are_valid_and_wired_to_aim_and_gpus():
    _, args = _entrypoint("rayjob-train.yaml")
    cfg = parse_train_args(args)  # exits 2 on a misspelt key
    aim = _aim_objects()
    service = aim["Service"]["metadata"]["name"]
    port = next(p["port"] for p in aim["Service"]["spec"]["ports"] if p["name"] == "tracking")
    assert cfg.tracking.repo == f"aim://{service}:{port}"
    assert cfg.ray.use_gpu is True
    assert str(cfg.ray.storage_path).startswith(("s3://", "gs://")), "shared storage"
    assert cfg.ray.max_failures > 0, "spot workers: restart from checkpoints"
    group, limits = _gpu_group(_kuberay("rayjob-train.yaml")["spec"]["rayClusterSpec"])
    gpus = int(limits["nvidia.com/gpu"])
    _check_fits(cfg, float(limits["cpu"]), gpus, group["maxReplicas"])
    # The job's start-up check wants its GPUs present when KubeRay submits it.
    assert group["replicas"] * gpus >= cfg.ray.num_workers


def test_tune_rayjob_sweep_fits_its_cluster_and_tracks_to_the_aim_service():
    _, args = _entrypoint("rayjob-tune.yaml")
    assert args[:2] == ["--sweep", "adv_balance"]
    spec = load_sweep(args[1], args[2:])  # SweepError / ConfigError on a bad key
    aim = _aim_objects()["Service"]
    port = next(p["port"] for p in aim["spec"]["ports"] if p["name"] == "tracking")
    assert spec.cfg.tracking.repo == f"aim://{aim['metadata']['name']}:{port}"
    assert str(spec.cfg.ray.storage_path).startswith(("s3://", "gs://"))
    # Autoscaling cluster: concurrency must not be sized from the GPUs present at start.
    assert spec.max_concurrent_trials, "set sweep.max_concurrent_trials explicitly"
    group, limits = _gpu_group(_kuberay("rayjob-tune.yaml")["spec"]["rayClusterSpec"])
    gpus = int(limits["nvidia.com/gpu"])
    _check_fits(spec.cfg, float(limits["cpu"]), gpus, group["maxReplicas"],
                spec.max_concurrent_trials)
    assert group["replicas"] * gpus >= spec.cfg.ray.num_workers, "one trial's GPUs at start"


def test_aim_deployment_serves_the_volume_on_the_service_ports():
    aim = _aim_objects()
    pod = aim["Deployment"]["spec"]["template"]["spec"]
    assert aim["Deployment"]["spec"]["strategy"]["type"] == "Recreate"
    claim = next(v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"])
    assert claim == aim["PersistentVolumeClaim"]["metadata"]["name"]
    container_ports = {p["name"]: p["containerPort"] for c in pod["containers"] for p in c["ports"]}
    for port in aim["Service"]["spec"]["ports"]:
        assert container_ports[port["targetPort"]] == port["port"]
    commands = {c["name"]: c["command"] for c in pod["containers"]}
    assert commands["aim-server"][:2] == ["aim", "server"]
    assert commands["aim-ui"][:2] == ["aim", "up"]
    selector = aim["Service"]["spec"]["selector"]
    assert selector.items() <= aim["Deployment"]["spec"]["template"]["metadata"]["labels"].items()


# --- Dockerfile ----------------------------------------------------------------------------------

def test_dockerfile_installs_exactly_the_lock():
    """The image installs requirements.lock as a whole and pins nothing of its own."""
    text = "\n".join(dockerfile_lines())
    assert re.search(r"COPY .*requirements\.lock", text), "the image does not copy the lock"
    assert re.search(r"pip install [^\n]*--no-deps[^\n]*(\\\n[^\n]*)*-r \S*requirements\.lock",
                     text), "the image does not pip install -r the lock with --no-deps"
    stray = re.findall(r'"[A-Za-z0-9][^"\s]*[=<>~]=[^"\s]+"', text)
    assert not stray, f"the Dockerfile pins {stray} outside the lock"


def test_dockerfile_base_image_matches_ray_and_python():
    base = next(line.split()[1] for line in dockerfile_lines() if line.startswith("FROM"))
    match = re.fullmatch(r"rayproject/ray:(?P<ray>[\d.]+)-py(?P<py>\d)(?P<minor>\d+)-gpu", base)
    assert match, f"unexpected base image {base}"
    assert match["ray"] == _ray_pin()
    python = Version(f"{match['py']}.{match['minor']}")
    assert python == Version(lock_python()), "the image's Python is not the lock's"
    assert python in SpecifierSet(pyproject()["project"]["requires-python"])


def test_dockerfile_copies_paths_that_exist():
    for line in dockerfile_lines():
        if line.startswith("COPY"):
            sources = [w for w in line.split()[1:-1] if not w.startswith("--")]
            for source in sources:
                assert (REPO / source).exists(), f"COPY source {source} is missing"


def test_config_key_check_can_fail():
    """The override checks above reject a misspelt key."""
    with pytest.raises(ConfigError):
        load_config("encodec_base_24khz", ["ray.storage_pth=s3://x"])


# --- runbook -------------------------------------------------------------------------------------

def test_readme_covers_every_file_and_topic():
    text = README.read_text()
    for path in CLUSTER.rglob("*"):
        if path.is_file() and path.name != "README.md":
            assert path.name in text, f"the runbook never mentions {path.name}"
    for topic in ("RAY_AUTH_MODE=token", "max_concurrent_trials", "--resume", "port-forward",
                  "ray dashboard", "ray attach", "ray.max_failures", "aim up", "Costs"):
        assert topic in text, f"the runbook never mentions {topic}"


# What the shell (the job's `bash -c` on the head, or yours) substitutes before train.py runs.
SHELL_VALUES = {"${RAY_ADDRESS%:*}": "10.0.0.1", "$PWD": str(REPO)}


def _readme_commands(script: str) -> list[list[str]]:
    """The argument lists of every `python experiments/<script>` in the runbook's code blocks."""
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S)
    commands = []
    for block in blocks:
        joined = re.sub(r"\\\n\s*", " ", block)
        for variable, value in SHELL_VALUES.items():
            joined = joined.replace(variable, value)
        for line in joined.splitlines():
            for match in re.finditer(rf"python experiments/{script}([^'|;&#]*)", line):
                commands.append(shlex.split(match.group(1), posix=True))
    return commands


def test_readme_train_commands_use_valid_config_keys():
    commands = _readme_commands("train.py")
    assert len(commands) >= 4
    for args in commands:
        assert not any("$" in a for a in args), f"unexpanded shell variable in {args}"
        parse_train_args(args)  # exits 2 on a misspelt key or a bad value


def test_readme_launcher_commands_fit_the_launcher_nodes():
    """The cluster-launcher train job and sweep fit the GPU node type of both configs."""
    train = [a for a in _readme_commands("train.py") if "tracking.repo=aim://10.0.0.1:53800" in a]
    sweeps = [a for a in _readme_commands("tune.py") if "tracking.repo=aim://10.0.0.1:53800" in a]
    assert train and sweeps, "the launcher section lost its train or tune command"
    for name in LAUNCHER_CONFIGS:
        config = load_one(CLUSTER / name)
        node = config["available_node_types"]["gpu_worker"]
        cpus, gpus = node["resources"]["CPU"], node["resources"]["GPU"]
        for args in train:
            _check_fits(parse_train_args(args), cpus, gpus, node["max_workers"])
        for args in sweeps:
            assert args[:2] == ["--sweep", "adv_balance"]
            spec = load_sweep(args[1], args[2:])
            assert spec.max_concurrent_trials, "set sweep.max_concurrent_trials explicitly"
            _check_fits(spec.cfg, cpus, gpus, node["max_workers"], spec.max_concurrent_trials)
