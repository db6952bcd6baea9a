"""The README's operations table lists all 56 operations and agrees with the dispatch table."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from openkms.protocol.model import operation_names
from openkms.protocol.operations import implemented

ROOT = Path(__file__).resolve().parents[2]


def test_readme_lists_every_operation_with_its_status() -> None:
    readme = (ROOT / "README.md").read_text()
    rows = dict(re.findall(r"^\| ([A-Za-z]+) \| (implemented|not yet)", readme, flags=re.M))
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
