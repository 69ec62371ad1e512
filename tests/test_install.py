"""The lock file is the environment: complete, consistent with pyproject.toml, and installed."""

import json
import subprocess
import sys
from importlib.metadata import version as installed_version

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.cluster.common import REPO, lock_pins, lock_python, pinned_version, pyproject


def test_lock_pins_every_package_exactly():
    pins = lock_pins()
    assert {"torch", "torchaudio", "ray", "aim", "pytest", "matplotlib"} <= set(pins)
    for pin in pins.values():
        pinned_version(pin)  # raises unless `==`


def test_lock_satisfies_pyproject_ranges():
    """Every dependency pyproject.toml declares, extras included, is locked inside its range."""
    project = pyproject()["project"]
    declared = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        declared += extra
    pins = lock_pins()
    for dep in map(Requirement, declared):
        name = canonicalize_name(dep.name)
        if name == "raycodec":  # an extra naming another extra
            continue
        assert name in pins, f"{dep} is not in requirements.lock"
        assert dep.specifier.contains(pinned_version(pins[name]), prereleases=True), \
            f"the lock's {pins[name]} is outside pyproject's {dep}"


def test_environment_is_the_lock():
    """The suite runs against exactly the locked versions (make setup installs from the lock)."""
    assert "{}.{}".format(*sys.version_info[:2]) == lock_python()
    wrong = {name: (installed_version(name), pinned_version(pin))
             for name, pin in lock_pins().items() if installed_version(name) != pinned_version(pin)}
    assert not wrong, f"installed != locked: {wrong}"


@pytest.mark.slow
def test_lock_resolves_alone_in_a_fresh_environment(tmp_path):
    """pip, resolving the lock plus raycodec[dev,eval,pb2] afresh, adds and changes nothing."""
    report = tmp_path / "report.json"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
         "--no-build-isolation", "--report", str(report), "-r", str(REPO / "requirements.lock"),
         f"{REPO}[dev,eval,pb2]"],
        check=True, capture_output=True, text=True, timeout=600)
    resolved = {canonicalize_name(item["metadata"]["name"]): item["metadata"]["version"]
                for item in json.loads(report.read_text())["install"]}
    resolved.pop("raycodec")
    locked = {name: pinned_version(pin) for name, pin in lock_pins().items()}
    assert resolved == locked, (
        f"not locked: {sorted(set(resolved) - set(locked))}; "
        f"locked but unused: {sorted(set(locked) - set(resolved))}; "
        f"other versions: {sorted(n for n in resolved.keys() & locked if resolved[n] != locked[n])}"
    )
