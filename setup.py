"""Build script: the package metadata is in pyproject.toml; this adds the compiled modules.

The modules listed in mypyc-modules.txt (the request path) are compiled to C extensions with
mypyc, which runs them about 40 % faster than CPython's interpreter does. mypyc type-checks
them first, so it needs the project's dependencies importable: `make install` installs them,
then builds with ``--no-build-isolation``. Where that is not so (a plain ``pip install`` from
source), or with ``OPENKMS_PURE_PYTHON=1``, the package installs as plain Python, and says so.
``OPENKMS_REQUIRE_COMPILED=1`` turns a failed compilation into a failed build.

Beside the extensions, ``openkms/_compiled.json`` records the SHA-256 of each compiled module's
source, so that ``import openkms`` can refuse a compiled module whose source has changed since
(an edit in an editable install); see ``openkms/_compiled.py``. It is written where the
extensions go: into the source tree for an editable install, into the wheel otherwise.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
PACKAGE = HERE / "src" / "openkms"
MANIFEST_NAME = "_compiled.json"


def _listed() -> list[str]:
    lines = (HERE / "mypyc-modules.txt").read_text().splitlines()
    return [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]


def _warn(message: str) -> None:
    print(f"openkms build: {message}", file=sys.stderr, flush=True)


def _remove_in_tree_build() -> None:
    # Left in place, an old extension would shadow its source (Python imports it first).
    (PACKAGE / MANIFEST_NAME).unlink(missing_ok=True)
    for stale in [*(HERE / "src").glob("*.so"), *PACKAGE.rglob("*.so")]:
        stale.unlink()


class BuildCompiled(build_ext):
    """build_ext, then the manifest of what was compiled, next to the extensions."""

    def run(self) -> None:
        if self.inplace:
            _remove_in_tree_build()
        super().run()
        target = PACKAGE if self.inplace else Path(self.build_lib) / "openkms"
        manifest = {
            path.removeprefix("src/"): hashlib.sha256((HERE / path).read_bytes()).hexdigest()
            for path in _listed()
        }
        target.mkdir(parents=True, exist_ok=True)
        (target / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


def _editable() -> bool:
    # PEP 660: setuptools' backend runs this script as `setup.py editable_wheel ...`.
    return "editable_wheel" in sys.argv or "develop" in sys.argv


def _compiled_extensions() -> list[Any]:
    if os.environ.get("OPENKMS_PURE_PYTHON") == "1":
        # An editable install would otherwise keep using the extensions of an earlier build. A
        # wheel (a plain-Python venv beside the compiled one) leaves the tree's build alone.
        if _editable():
            _remove_in_tree_build()
        _warn("OPENKMS_PURE_PYTHON=1: installing plain Python (slower request path)")
        return []
    try:
        from mypyc.build import mypycify

        os.chdir(HERE)  # mypyc wants paths relative to the project
        return list(mypycify(_listed(), opt_level="3", debug_level="0"))
    except BaseException as exc:  # SystemExit included: mypyc exits on a type error
        if os.environ.get("OPENKMS_REQUIRE_COMPILED") == "1":
            raise
        # The source tree is left as it is: another environment's editable install (the
        # benchmarks' venv) may be using its extensions, and import refuses stale ones.
        _warn(f"mypyc could not compile the request path ({exc!r}); installing plain Python")
        return []


setup(ext_modules=_compiled_extensions(), cmdclass={"build_ext": BuildCompiled})
