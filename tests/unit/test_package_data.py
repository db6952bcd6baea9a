"""The installed package carries every data file of the source tree (pyproject's package-data:
API models, migrations, console templates and static files). In the compiled build's editable
install that is the tree itself; in the plain-Python build of `make test` it is a wheel, so
this is what stands for the console's pages there (tests/builds.py)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import openkms

REPO = Path(__file__).resolve().parents[2]


def _data_files(package: Path, patterns: list[str]) -> set[str]:
    return {
        path.relative_to(package).as_posix()
        for pattern in patterns
        for path in package.glob(pattern)
        if path.is_file()
    }


def test_the_installed_package_has_every_data_file_of_the_tree() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["openkms"]
    in_tree = _data_files(REPO / "src" / "openkms", patterns)
    installed = _data_files(Path(openkms.__file__).resolve().parent, patterns)
    assert in_tree, patterns
    assert in_tree - installed == set()
