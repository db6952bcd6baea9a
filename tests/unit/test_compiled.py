"""The compiled request path (setup.py, mypyc-modules.txt) and the refusal of stale modules."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from openkms import _compiled

REPO = Path(__file__).resolve().parents[2]


def _package(tmp_path: Path, source: bytes, recorded: bytes | None) -> Path:
    package = tmp_path / "openkms"
    (package / "auth").mkdir(parents=True)
    (package / "auth" / "sigv4.py").write_bytes(source)
    if recorded is not None:
        digest = hashlib.sha256(recorded).hexdigest()
        (package / "_compiled.json").write_text(json.dumps({"openkms/auth/sigv4.py": digest}))
    return package


def test_a_source_changed_since_it_was_compiled_is_refused(tmp_path: Path) -> None:
    package = _package(tmp_path, b"x = 2\n", recorded=b"x = 1\n")
    with pytest.raises(_compiled.StaleCompiledModule, match="make install"):
        _compiled.check_fresh(package)


def test_an_unchanged_source_or_a_plain_install_passes(tmp_path: Path) -> None:
    _compiled.check_fresh(_package(tmp_path / "a", b"x = 1\n", recorded=b"x = 1\n"))
    _compiled.check_fresh(_package(tmp_path / "b", b"x = 1\n", recorded=None))
    assert _compiled.recorded(tmp_path / "b" / "openkms") == {}


def test_the_request_path_runs_compiled() -> None:
    listed = [
        line.split("#", 1)[0].strip().removeprefix("src/").removesuffix(".py").replace("/", ".")
        for line in (REPO / "mypyc-modules.txt").read_text().splitlines()
        if line.split("#", 1)[0].strip()
    ]
    if not _compiled.recorded():
        reason = "OPENKMS_PURE_PYTHON=1" if os.environ.get("OPENKMS_PURE_PYTHON") else "no build"
        pytest.skip(f"PLAIN PYTHON INSTALL ({reason}): the mypyc build is not tested")
    assert sorted(_compiled.compiled_modules()) == sorted(listed)
