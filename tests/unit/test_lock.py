"""The lock files in requirements/ are what is installed, and agree with pyproject.toml.

`make install` installs exactly requirements/dev.txt; a dependency added to pyproject.toml
without `make lock`, or an environment that drifted from the lock, fails here."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENT_LINE = re.compile(
    r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$"
)


def locked(name: str) -> dict[str, tuple[str, str | None, int]]:
    """canonical name -> (version, marker, number of hashes) of requirements/<name>."""
    entries: dict[str, tuple[str, str | None, int]] = {}
    current: str | None = None
    for line in (ROOT / "requirements" / name).read_text().splitlines():
        match = REQUIREMENT_LINE.match(line)
        if match:
            current = canonicalize_name(match.group(1))
            entries[current] = (match.group(2), match.group(3), 0)
        elif current and line.strip().startswith("--hash=sha256:"):
            version, marker, hashes = entries[current]
            entries[current] = (version, marker, hashes + 1)
    return entries


def applies(marker: str | None) -> bool:
    return marker is None or Marker(marker).evaluate()


LOCKS = ["dev.txt", "runtime.txt", "build.txt", "bootstrap.txt", "esdk.txt", "bench.txt"]


@pytest.mark.parametrize("lock", LOCKS)
def test_every_locked_distribution_has_hashes(lock: str) -> None:
    entries = locked(lock)
    assert entries
    assert {name for name, (_, _, hashes) in entries.items() if hashes == 0} == set()


def test_the_environment_is_the_lock() -> None:
    """What this interpreter has installed is exactly what requirements/dev.txt pins."""
    wrong = {}
    for name, (version, marker, _) in locked("dev.txt").items():
        if not applies(marker):
            continue
        installed = metadata.version(name)
        if installed != version:
            wrong[name] = (installed, version)
    assert wrong == {}, "installed != locked (run make install)"


def test_pyproject_dependencies_are_locked_within_their_ranges() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    entries = locked("dev.txt")
    for text in requirements:
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        name = canonicalize_name(requirement.name)
        assert name in entries, f"{name} is not in requirements/dev.txt: run make lock"
        assert requirement.specifier.contains(entries[name][0], prereleases=True), (
            f"{name} {entries[name][0]} in the lock is outside pyproject's {requirement.specifier}"
        )


@pytest.mark.parametrize("lock", ["runtime.txt", "build.txt"])
def test_the_deployment_locks_have_the_development_locks_versions(lock: str) -> None:
    dev = locked("dev.txt")
    entries = locked(lock)
    assert {n: v for n, (v, _, _) in entries.items()} == {n: dev[n][0] for n in entries}


def test_botocore_is_held_at_the_vendored_models_release() -> None:
    """The vendored models name the botocore they came from; the lock pins that release."""
    import json

    source = json.loads((ROOT / "src/openkms/protocol/data/kms-2014-11-01.json").read_text())
    held = source["metadata"]["openkms_source"].removeprefix("botocore ")
    assert locked("dev.txt")["botocore"][0] == held
    assert f"botocore=={held}" in (ROOT / "requirements/constraints.txt").read_text()
