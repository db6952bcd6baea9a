"""The README's operations table lists all 56 operations and agrees with the dispatch table."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from openkms.protocol.model import operation_names
from openkms.protocol.operations import implemented

ROOT = Path(__file__).resolve().parents[2]


def _kms_table() -> str:
    """The KMS operations' section of the README (the Secrets Manager section has its own
    table, with several operations a row)."""
    readme = (ROOT / "README.md").read_text()
    start = readme.index("## What is implemented")
    end = readme.index("\n## ", start + 1)
    return readme[start:end]


def test_readme_lists_every_operation_with_its_status() -> None:
    rows = dict(re.findall(r"^\| ([A-Za-z]+) \| (implemented|not yet)", _kms_table(), flags=re.M))
    assert sorted(rows) == operation_names()
    assert len(rows) == 56
    for name, status in rows.items():
        assert (status == "implemented") == (name in implemented()), name


def test_readme_table_is_the_generated_one() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "readme_operations.py")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert out in (ROOT / "README.md").read_text()
