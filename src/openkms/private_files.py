"""Files and directories only the server's user may read: the data directory (0700), the SQLite
database with its ``-wal`` and ``-shm`` files, the audit logs, ``dev.env`` (0600).

The database holds wrapped key material and wrapped secret access keys, the audit log who did
what with which key, and ``dev.env`` a secret access key in clear; none of it is for other
local users. SQLite creates its ``-wal`` and ``-shm`` files with the mode of the database file,
so the database file is created 0600 before SQLite opens it. Files and a data directory left
readable by others by an earlier version are tightened (with a warning) when the server opens
them, if this user owns them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path

__all__ = ["private_directory", "private_file", "tighten"]

log = logging.getLogger("openkms.files")


def tighten(path: Path, mode: int) -> None:
    """chmod ``path`` to ``mode`` if this user owns it and it grants group or others anything."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return
    if info.st_uid != os.getuid() or not stat.S_IMODE(info.st_mode) & 0o077:
        return
    os.chmod(path, mode)
    log.warning("%s was readable by other users; its mode is now %o", path, mode)


def private_directory(path: Path) -> None:
    """Create ``path`` (and missing parents) with mode 0700, or tighten it to 0700."""
    if not path.exists():
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(OSError):
            os.chmod(path, 0o700)  # mkdir's mode is filtered by the umask
        return
    tighten(path, 0o700)


def private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 if it does not exist, or tighten it to 0600."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        tighten(path, 0o600)
        return
    os.close(fd)
