"""SoftHSM2 for the tests: a private ``SOFTHSM2_CONF`` directory per test process (each xdist
worker has its own), and tokens initialized in it with ``softhsm2-util``.

A PKCS#11 library reads ``SOFTHSM2_CONF`` once, when it is initialized, so every test in a
process shares that process's configuration directory; each test makes its own token (or its
own key label) in it. Servers started as subprocesses get ``SoftHsm.env()``.

When ``softhsm2-util`` is missing it is installed with apt-get if we are root (CI and the
development machines are); otherwise, or when python-pkcs11 is missing, the tests that need it
are skipped with a message that says loudly that they did not run.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from tests.components import hidden, unavailable

MODULE_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
)
INSTALL_LOCK = Path(tempfile.gettempdir()) / "openkms-softhsm-install.lock"


def _loud_skip(why: str) -> NoReturn:
    unavailable("softhsm2", f"PKCS#11: {why}")


def _module_path() -> str | None:
    if hidden("softhsm2"):
        return None
    for candidate in MODULE_CANDIDATES:
        if os.path.exists(candidate):
            return candidate
    return None


def _install_softhsm() -> str | None:
    """apt-get install softhsm2, once for all the processes of a run; None on success."""
    if hidden("softhsm2"):
        return "hidden by OPENKMS_TEST_HIDE"
    if os.geteuid() != 0:
        return "softhsm2-util is not installed and we are not root to install it"
    if shutil.which("apt-get") is None:
        return "softhsm2-util is not installed and there is no apt-get to install it"
    with open(INSTALL_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if shutil.which("softhsm2-util") and _module_path():
            return None
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (
            ["apt-get", "update", "-qq"],
            ["apt-get", "install", "-y", "-qq", "softhsm2"],
        ):
            proc = subprocess.run(
                command, capture_output=True, text=True, env=env, timeout=600, check=False
            )
            if proc.returncode != 0:
                return f"{' '.join(command)} failed: {proc.stderr[-2000:]}"
    return None


def require_softhsm() -> str:
    """The SoftHSM2 PKCS#11 module path; installs SoftHSM2 or skips loudly."""
    try:
        import pkcs11  # noqa: F401
    except ImportError:
        _loud_skip("python-pkcs11 is not installed (pip install python-pkcs11)")
    if hidden("softhsm2") or shutil.which("softhsm2-util") is None or _module_path() is None:
        problem = _install_softhsm()
        if problem is not None:
            _loud_skip(problem)
    module = _module_path()
    if module is None or shutil.which("softhsm2-util") is None or hidden("softhsm2"):
        _loud_skip("SoftHSM2 was installed but its module or softhsm2-util is not found")
    assert module is not None
    return module


@dataclass(frozen=True)
class Token:
    label: str
    pin: str
    so_pin: str
    directory: Path | None = None  # where SoftHSM2 keeps it (to take it away in tests)

    def __repr__(self) -> str:
        return f"Token(label={self.label!r})"


@dataclass(frozen=True)
class SoftHsm:
    """A private SoftHSM2 configuration directory and its module."""

    module: str
    conf_path: Path
    token_dir: Path

    def env(self) -> dict[str, str]:
        return {"SOFTHSM2_CONF": str(self.conf_path)}

    def init_token(self, label: str | None = None) -> Token:
        label = label or f"openkms-{secrets.token_hex(4)}"
        pin = secrets.token_hex(8)
        so_pin = secrets.token_hex(8)
        before = set(self.token_dir.iterdir())
        proc = subprocess.run(
            [
                "softhsm2-util",
                "--init-token",
                "--free",
                "--label",
                label,
                "--so-pin",
                so_pin,
                "--pin",
                pin,
            ],
            capture_output=True,
            text=True,
            env={**os.environ, **self.env()},
            timeout=60,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"softhsm2-util --init-token failed: {proc.stderr}{proc.stdout}")
        created = sorted(set(self.token_dir.iterdir()) - before)
        return Token(label, pin, so_pin, created[0] if len(created) == 1 else None)

    @contextlib.contextmanager
    def token_away(self, token: Token) -> Iterator[None]:
        """The token's files moved out of SoftHSM2's sight, then back: an HSM that goes away."""
        assert token.directory is not None
        parked = self.conf_path.parent / f"away-{token.directory.name}"
        shutil.move(str(token.directory), str(parked))
        try:
            yield
        finally:
            shutil.move(str(parked), str(token.directory))


_PROCESS_SOFTHSM: SoftHsm | None = None


def softhsm_for_process() -> SoftHsm:
    """This process's SoftHSM2 directory (made on first use; its SOFTHSM2_CONF is set in this
    process's environment, as the in-process PKCS#11 library reads it from there)."""
    global _PROCESS_SOFTHSM
    if _PROCESS_SOFTHSM is not None:
        return _PROCESS_SOFTHSM
    module = require_softhsm()
    base = Path(tempfile.mkdtemp(prefix="openkms-softhsm-"))
    atexit.register(shutil.rmtree, base, True)
    token_dir = base / "tokens"
    token_dir.mkdir()
    conf = base / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {token_dir}\n"
        "objectstore.backend = file\n"
        "log.level = ERROR\n"
        "slots.removable = false\n"
    )
    os.environ["SOFTHSM2_CONF"] = str(conf)
    _PROCESS_SOFTHSM = SoftHsm(module, conf, token_dir)
    return _PROCESS_SOFTHSM


_SHARED_TOKEN: Token | None = None


def shared_token() -> Token:
    """One token per process for tests that only need a key of their own in it."""
    global _SHARED_TOKEN
    if _SHARED_TOKEN is None:
        _SHARED_TOKEN = softhsm_for_process().init_token("openkms-shared")
    return _SHARED_TOKEN


def new_key_label() -> str:
    return f"root-{secrets.token_hex(6)}"
