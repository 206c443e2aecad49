"""The locks that scripts/setup.sh installs (requirements/lock-*.txt) and the check that compares an environment
with one (scripts/compare_with_lock.py)."""

import importlib.util
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
LOCKS = [ROOT / "requirements" / "lock-cpu.txt", ROOT / "requirements" / "lock-cuda.txt"]


def load_compare_with_lock():
    path = ROOT / "scripts" / "compare_with_lock.py"
    spec = importlib.util.spec_from_file_location("scripts_compare_with_lock", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


compare_with_lock = load_compare_with_lock()


def project_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(text) for text in project["dependencies"] + project["optional-dependencies"]["test"]]


@pytest.mark.parametrize("lock", LOCKS, ids=lambda path: path.name)
def test_the_lock_pins_every_requirement_inside_the_ranges_of_pyproject(lock):
    pins = compare_with_lock.locked_versions(lock)
    for requirement in project_requirements():
        name = compare_with_lock.normalized(requirement.name)
        assert name in pins, f"{lock.name} has no {name}"
        assert requirement.specifier.contains(Version(pins[name]), prereleases=True), (name, pins[name])


def test_both_locks_pin_the_torch_of_the_constraints_the_cpu_lock_its_cpu_build():
    constraint = (ROOT / "requirements" / "constraints.txt").read_text().split("torch==")[1].split()[0]
    cpu, cuda = (compare_with_lock.locked_versions(lock)["torch"] for lock in LOCKS)
    assert cpu == f"{constraint}+cpu"
    assert cuda == constraint
    assert not any(name.startswith("nvidia-") for name in compare_with_lock.locked_versions(LOCKS[0]))


def test_a_version_other_than_the_locked_one_and_an_unlocked_package_are_reported(tmp_path):
    lock = tmp_path / "lock.txt"
    lock.write_text("# a header\ntorch==2.13.0+cpu\n    # via polarbert\nTyping_Extensions==4.16.0\n")
    pins = compare_with_lock.locked_versions(lock)
    assert pins == {"torch": "2.13.0+cpu", "typing-extensions": "4.16.0"}
    installed = {"torch": "2.13.0+cpu", "typing-extensions": "4.15.0", "kernels": "0.19.1", "pip": "23.2.1",
                 "polarbert": "0.1.0"}
    assert compare_with_lock.differences(pins, installed) == [
        "typing-extensions: lock 4.16.0, installed 4.15.0", "kernels: not in the lock, installed 0.19.1"]
    del installed["kernels"]
    assert compare_with_lock.differences(pins, {**installed, "typing-extensions": "4.16.0"}) == []
