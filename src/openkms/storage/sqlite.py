"""The embedded default: SQLite in WAL mode with synchronous=FULL.

One connection per process. Several processes may share the file: SQLite serializes writers
(``BEGIN IMMEDIATE`` plus a busy timeout), and nothing lives only in one process's memory except
caches that expire. The statements are in ``sql.py``; this module opens the connection and says
how SQLite differs (``SqliteDialect``).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from openkms.storage.base import StorageConflict, StorageError, StorageUnavailable
from openkms.storage.sql import Dialect, SqlRepository


class SqliteDialect(Dialect):
    # Takes the write lock at once: a transaction holds the whole database until it ends, so
    # row locks and advisory locks are not needed.
    begin = "BEGIN IMMEDIATE"
    # The database is locked for the batch anyway: one commit rather than one per key.
    usage_batch_in_one_transaction = True
    driver_error = sqlite3.Error

    def ddl(self, statement: str) -> str:
        return statement.replace("BYTEA", "BLOB")

    def translate(self, exc: Exception) -> StorageError:
        if isinstance(exc, sqlite3.IntegrityError):
            return StorageConflict(str(exc))
        return StorageUnavailable("database error")


class SqliteStorage(SqlRepository):
    def __init__(self, path: Path | str, *, busy_timeout_ms: int = 10_000) -> None:
        super().__init__(SqliteDialect())
        self._path = str(path)
        try:
            self._conn = sqlite3.connect(
                self._path,
                isolation_level=None,
                check_same_thread=False,
                timeout=busy_timeout_ms / 1000,
            )
            self._conn.row_factory = sqlite3.Row
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        except sqlite3.Error as exc:
            raise StorageUnavailable(f"cannot open database {self._path}") from exc
        # The server uses one thread, but the CLI and tests may not; one lock, held from BEGIN
        # to COMMIT, keeps the connection's transaction state coherent.
        self._lock = threading.RLock()
        self._migrate()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _begin(self) -> sqlite3.Connection:
        self._lock.acquire()
        try:
            self._conn.execute(self.dialect.begin)
        except BaseException as exc:
            self._lock.release()
            if isinstance(exc, sqlite3.Error):
                raise StorageUnavailable("database is busy") from exc
            raise
        return self._conn

    def _finish(self, conn: sqlite3.Connection, *, commit: bool) -> None:
        try:
            if not commit:
                conn.execute("ROLLBACK")
                return
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                conn.execute("ROLLBACK")
                raise StorageUnavailable("commit failed") from exc
        finally:
            self._lock.release()

    def _prepare_migration(self) -> None:
        """Nothing to do: ``BEGIN IMMEDIATE`` keeps every other writer out already."""

    def _run(self, sql: str, params: Sequence[Any]) -> tuple[list[sqlite3.Row], int]:
        with self._lock:
            cursor = self._conn.execute(sql, params)
            rows = cursor.fetchall() if cursor.description is not None else []
            return rows, cursor.rowcount
