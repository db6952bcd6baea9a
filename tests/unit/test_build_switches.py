"""The project's own build and test variables never stop the server (issue: `OPENKMS_PURE_PYTHON=1
make run` exited 2 with "unknown setting")."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from openkms.config import Settings, SettingsError, load_settings, reserved_env_names

ROOT = Path(__file__).resolve().parents[2]
# Where build and test switches are read: the build, the install and test scripts, the suite
# and the benchmarks. A variable set for any of them may be in the shell that starts the server.
SWITCH_READERS = ("setup.py", "Makefile", "scripts", "tests", "benchmarks")
READ_PATTERNS = (
    re.compile(r"""environ(?:\.get)?\(\s*["'](OPENKMS_[A-Z0-9_]+)["']"""),
    re.compile(r"""environ\[\s*["'](OPENKMS_[A-Z0-9_]+)["']\s*\]"""),
    re.compile(r"""getenv\(\s*["'](OPENKMS_[A-Z0-9_]+)["']"""),
    re.compile(r"""\$\{?(OPENKMS_[A-Z0-9_]+)"""),  # shell and make
)


def variables_read_by_the_project() -> set[str]:
    names: set[str] = set()
    for entry in SWITCH_READERS:
        path = ROOT / entry
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        for file in files:
            if file.suffix not in ("", ".py", ".sh") or "__pycache__" in file.parts:
                continue
            try:
                text = file.read_text()
            except (UnicodeDecodeError, OSError):
                continue
            for pattern in READ_PATTERNS:
                names.update(pattern.findall(text))
    return names


def test_the_scan_finds_the_known_switches() -> None:
    found = variables_read_by_the_project()
    assert {"OPENKMS_PURE_PYTHON", "OPENKMS_REQUIRE_COMPILED", "OPENKMS_TEST_PG_BIN"} <= found


def test_every_variable_the_project_reads_is_accepted_by_the_settings_loader() -> None:
    """Every OPENKMS_* variable that the build, the scripts, the tests or the benchmarks read is
    a setting, a reserved name, or in the OPENKMS_TEST_ namespace; none makes loading fail."""
    for name in sorted(variables_read_by_the_project()):
        try:
            load_settings(None, {name: "1"}, {})
        except SettingsError as exc:
            # A real setting may refuse "1" as a value; that is not "unknown setting".
            assert "unknown setting" not in str(exc), name


@pytest.mark.parametrize(
    "name",
    ["OPENKMS_PURE_PYTHON", "OPENKMS_REQUIRE_COMPILED", "OPENKMS_TEST_PG_BIN", "OPENKMS_TEST_X"],
)
def test_build_and_test_switches_are_ignored(name: str) -> None:
    assert load_settings(None, {name: "/usr/lib/postgresql/15/bin"}, {}) == Settings()


def test_build_switches_are_reserved_names() -> None:
    assert {"OPENKMS_PURE_PYTHON", "OPENKMS_REQUIRE_COMPILED"} <= reserved_env_names()


def test_a_misspelt_setting_is_still_refused() -> None:
    with pytest.raises(SettingsError, match="unknown setting"):
        load_settings(None, {"OPENKMS_PORTT": "1"}, {})
