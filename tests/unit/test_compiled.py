"""The compiled request path (setup.py, mypyc-modules.txt) and the refusal of stale modules."""

from __future__ import annotations

import ast
import hashlib
import json
import os
import shutil
import sysconfig
from pathlib import Path

import pytest

import openkms
from openkms import _compiled

REPO = Path(__file__).resolve().parents[2]


def _listed() -> list[str]:
    """The source paths in mypyc-modules.txt (``src/openkms/...py``)."""
    lines = (REPO / "mypyc-modules.txt").read_text().splitlines()
    return [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]


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


def _have_compiler() -> bool:
    include = sysconfig.get_paths()["include"]
    has_cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    return bool(has_cc) and os.path.exists(os.path.join(include, "Python.h"))


def test_the_build_under_test_is_the_one_make_test_asked_for() -> None:
    """`make test` runs the suite once per build (OPENKMS_TEST_BUILD): each run must really be
    on that build, or the second run would test the first build again."""
    build = os.environ.get("OPENKMS_TEST_BUILD")
    listed = [p.removeprefix("src/").removesuffix(".py").replace("/", ".") for p in _listed()]
    running = _compiled.compiled_modules() if _compiled.recorded() else []
    if build == "pure":
        assert running == []
        assert not any(Path(openkms.__file__).parent.rglob("*.so"))
    elif build == "compiled":
        if not _have_compiler():
            pytest.skip("no C compiler or Python headers: make installed plain Python")
        assert sorted(running) == sorted(listed)
    else:
        pytest.skip("not run by `make test` (OPENKMS_TEST_BUILD unset)")


def test_the_request_path_runs_compiled() -> None:
    listed = [p.removeprefix("src/").removesuffix(".py").replace("/", ".") for p in _listed()]
    if os.environ.get("OPENKMS_TEST_BUILD") == "pure":
        pytest.skip("the plain-Python run of `make test`")
    if not _compiled.recorded():
        reason = "OPENKMS_PURE_PYTHON=1" if os.environ.get("OPENKMS_PURE_PYTHON") else "no build"
        pytest.skip(f"PLAIN PYTHON INSTALL ({reason}): the mypyc build is not tested")
    assert sorted(_compiled.compiled_modules()) == sorted(listed)


def _except_names_reused_for_other_types(path: Path) -> list[str]:
    found = []
    for function in ast.walk(ast.parse(path.read_text())):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        types: dict[str, set[str]] = {}
        for node in ast.walk(function):
            if isinstance(node, ast.ExceptHandler) and node.name:
                caught = ast.unparse(node.type) if node.type else "BaseException"
                types.setdefault(node.name, set()).add(caught)
        found += [
            f"{path}:{function.name}: {n} {sorted(t)}" for n, t in types.items() if len(t) > 1
        ]
    return found


def test_compiled_modules_give_each_caught_exception_a_name_of_its_own() -> None:
    # mypyc gives a variable one type per function: `except A as exc` then `except B as exc`
    # raises TypeError when B is caught (a 500 where a 400 was meant). Seen in policy/document.py.
    problems = []
    for path in _listed():
        problems += _except_names_reused_for_other_types(REPO / path)
    assert problems == []
