"""tests/builds.py: the plain-Python run's list names test modules that exist, so a renamed or
moved module cannot drop out of that run unnoticed."""

from __future__ import annotations

from pathlib import Path

from tests.builds import PURE_BUILD, in_pure_build

TESTS = Path(__file__).resolve().parents[1]


def test_every_entry_of_the_plain_build_list_exists() -> None:
    missing = [
        entry
        for entry in PURE_BUILD
        if not ((TESTS / entry).is_dir() if entry.endswith("/") else (TESTS / entry).is_file())
    ]
    assert missing == []


def test_the_plain_build_list_selects_by_path_prefix() -> None:
    assert in_pure_build("unit/test_sigv4.py")
    assert in_pure_build("conformance/test_wire.py")
    assert not in_pure_build("integration/test_multinode.py")
    assert not in_pure_build("contract/test_storage_contract.py")
