"""Attacks by other local users who read the data directory: the SQLite database (wrapped key
material, wrapped secret access keys), its -wal and -shm files, the audit logs and ``dev.env``
(a secret access key in clear) were world-readable.

Rule (openkms, as for any key store): the data directory is 0700 and every file in it 0600,
whatever the umask; files and directories left readable by an earlier version are tightened
when the server starts.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ServerFactory, ServerProcess


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The umask most systems run with (022): files would be 0644 unless asked otherwise."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _assert_private(data_dir: Path) -> None:
    assert _mode(data_dir) == 0o700, oct(_mode(data_dir))
    names = ["openkms.db", "openkms.db-wal", "openkms.db-shm", "audit.log", "root.key"]
    for name in names:
        path = data_dir / name
        assert path.exists(), name
        assert _mode(path) == 0o600, f"{name}: {oct(_mode(path))}"


def test_other_users_cannot_read_the_database_audit_log_or_keys(
    server_factory: ServerFactory, tmp_path: Path, usual_umask: None
) -> None:
    data_dir = tmp_path / "data"  # created by openkms, under umask 022
    managed = server_factory.start(data_dir)
    managed.client().create_key(Description="written to the WAL")
    _assert_private(data_dir)
    managed.stop()


def test_dev_env_with_its_secret_is_private(tmp_path: Path, usual_umask: None) -> None:
    data_dir = tmp_path / "dev"
    proc = ServerProcess(data_dir, extra_args=["--dev"])
    proc.start()
    try:
        assert _mode(data_dir / "dev.env") == 0o600
        assert "AWS_SECRET_ACCESS_KEY" in (data_dir / "dev.env").read_text()
        _assert_private(data_dir)
    finally:
        proc.stop()


def test_files_left_readable_by_an_earlier_version_are_tightened(
    server_factory: ServerFactory, tmp_path: Path, usual_umask: None
) -> None:
    data_dir = tmp_path / "old"
    managed = server_factory.start(data_dir)
    managed.client().list_keys()
    managed.stop()
    os.chmod(data_dir, 0o755)
    for name in ("openkms.db", "audit.log"):
        os.chmod(data_dir / name, 0o644)
    again = server_factory.start(data_dir, account=managed.account)
    again.client().create_key()
    _assert_private(data_dir)
    again.stop()
