"""Which modules run compiled (mypyc, see setup.py), and a refusal to run stale ones.

A compiled extension sits beside its ``.py`` source and Python imports the extension first. In
an editable install an edited source would then be silently ignored; instead, ``import openkms``
compares each compiled module's source with the SHA-256 recorded when it was compiled
(``_compiled.json``) and refuses to start on a mismatch.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_MANIFEST = _PACKAGE / "_compiled.json"


class StaleCompiledModule(ImportError):
    pass


def recorded(package: Path = _PACKAGE) -> dict[str, str]:
    """Source path (``openkms/auth/sigv4.py``) -> SHA-256 at compile time; empty if none."""
    try:
        data = json.loads((package / _MANIFEST.name).read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def compiled_modules() -> list[str]:
    """Dotted names of the modules that are running compiled in this process."""
    import importlib

    names = []
    for path in recorded():
        name = path.removesuffix(".py").replace("/", ".")
        module = importlib.import_module(name)
        if not str(getattr(module, "__file__", "")).endswith(".py"):
            names.append(name)
    return names


def check_fresh(package: Path = _PACKAGE) -> None:
    for path, digest in recorded(package).items():
        source = package.parent / path
        try:
            current = hashlib.sha256(source.read_bytes()).hexdigest()
        except OSError:
            continue  # an installed wheel may carry no source for a compiled module
        if current != digest:
            raise StaleCompiledModule(
                f"openkms: {source} has changed since it was compiled; run `make install` "
                "(or reinstall the package) to compile it again, or reinstall with "
                "OPENKMS_PURE_PYTHON=1"
            )
