"""Paths and loaders shared by the cluster/ tests."""

import re
import sys
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

REPO = Path(__file__).resolve().parents[2]
CLUSTER = REPO / "cluster"
KUBERAY = CLUSTER / "kuberay"
LAUNCHER_CONFIGS = ("aws-gpu.yaml", "gcp-gpu.yaml")
RAYJOBS = ("rayjob-train.yaml", "rayjob-tune.yaml")
README = CLUSTER / "README.md"


def load_docs(path: Path) -> list:
    """Every YAML document of a file (KubeRay files may hold several)."""
    with open(path) as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


def load_one(path: Path) -> dict:
    docs = load_docs(path)
    assert len(docs) == 1, f"{path.name}: expected one YAML document, got {len(docs)}"
    return docs[0]


def pyproject() -> dict:
    with open(REPO / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


def dockerfile_lines() -> list[str]:
    """The Dockerfile's instructions, comments dropped."""
    text = (CLUSTER / "Dockerfile").read_text()
    return [line for line in text.splitlines() if not line.lstrip().startswith("#")]


def lock_pins(path: Path = REPO / "requirements.lock") -> dict[str, Requirement]:
    """The lock's `name==version` lines, by canonical name."""
    pins: dict[str, Requirement] = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            req = Requirement(line)
            name = canonicalize_name(req.name)
            assert name not in pins, f"{req.name} is pinned twice in {path.name}"
            pins[name] = req
    return pins


def lock_python(path: Path = REPO / "requirements.lock") -> str:
    """The Python version the lock was made for (its `# python: X.Y` header line)."""
    match = re.search(r"^# python: (\d+\.\d+)$", path.read_text(), re.M)
    assert match, f"{path.name} names no Python version"
    return match[1]


def pinned_version(req: Requirement) -> str:
    (spec,) = req.specifier
    assert spec.operator == "==", f"{req} is not an exact pin"
    return spec.version


def image() -> str:
    """The image every manifest must run: the launcher configs' docker.image."""
    return load_one(CLUSTER / LAUNCHER_CONFIGS[0])["docker"]["image"]


def find_key(node, key: str):
    """Every value stored under `key` anywhere in a YAML tree."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key:
                yield v
            yield from find_key(v, key)
    elif isinstance(node, list):
        for item in node:
            yield from find_key(item, key)
