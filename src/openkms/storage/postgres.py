"""PostgreSQL: the backend for several stateless openkms nodes sharing one database.

Selected by a ``postgresql://`` (or ``postgres://``) ``database`` setting. psycopg 3 with a
connection pool; each thread's transaction holds one pooled connection from BEGIN to COMMIT, and
a read outside a transaction borrows one for a single statement. The statements and the rules
below are written once in ``sql.py`` for every SQL engine; this module holds the pool and the
``PostgresDialect`` (its row lock, advisory lock, transaction start and error translation).

Schema: the numbered migrations shared with SQLite (``migrations/*.sql``), applied at start in
one transaction under an advisory lock, so nodes starting together neither race nor half-apply
one. Text columns are created ``COLLATE "C"`` so that names sort by code point, as in SQLite.

Concurrency. A Storage transaction is a context manager, and the block it wraps cannot be run a
second time, so SERIALIZABLE isolation with retry on 40001 is not available here. Transactions
run under READ COMMITTED instead, and every read inside a transaction locks what it read until
the commit: the guarantee that SQLite's ``BEGIN IMMEDIATE`` gives on one node, at the grain of
the records read rather than of the whole database.

- ``get_key`` (and ``list_related_keys``) inside a transaction is ``SELECT … FOR UPDATE``: writers
  of one key (RotateKeyOnDemand, ScheduleKeyDeletion, the scheduler's rotation and purge jobs…)
  queue on the key row, and the one that waited reads what the other committed, so the on-demand
  rotation limit holds and a due job runs once across nodes.
- Reads of a set that a limit or an idempotency rule is checked against take a transaction-scoped
  advisory lock on that set: the aliases of an account and Region (``get_alias``,
  ``list_aliases``), the documents of one scope (``get_document``, ``list_documents``: a key's
  grants and grant names, an account's IAM entities), a key's tags (``get_tags``) and an
  account's access keys (``list_access_keys``; ``get_access_key`` locks the row).
- Uniqueness is ``INSERT … ON CONFLICT DO NOTHING``: no row inserted → ``StorageConflict``, and the
  transaction stays usable, as it does in SQLite (a caller may catch the conflict and go on).
- Key usage (``record_key_usage``) is a compare-and-set per key, holding no lock across keys.

Failures: a uniqueness or reference rule → ``StorageConflict``; anything else from the driver or
the pool (connection lost, deadlock 40P01, lock timeout, pool timeout) → ``StorageUnavailable``,
which the HTTP layer answers with a retryable 500 KMSInternalException. A pooled connection that
the server closed (PostgreSQL restarted) is noticed at its first statement and replaced before
anything was sent on it, so a restart costs only the requests that were in flight.
"""

from __future__ import annotations

import contextlib
import functools
import re
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout

from openkms.storage.base import StorageConflict, StorageError, StorageUnavailable
from openkms.storage.sql import Dialect, SqlRepository

Conn = psycopg.Connection[DictRow]
Row = dict[str, Any]

# Advisory lock ids live in one 64-bit space per database; this one guards migrations.
MIGRATION_LOCK_ID = 0x6F6B6D735F6D6967  # "okms_mig"
# Settings every pooled connection gets (per session, so they hold behind PgBouncer's session
# mode too): no statement waits on a lock or runs forever, no transaction idles holding locks.
SESSION_SETTINGS = (
    "SET lock_timeout = '10s'",
    "SET statement_timeout = '30s'",
    "SET idle_in_transaction_session_timeout = '60s'",
)
# Pool options that may be given as query parameters of the database URL.
POOL_OPTIONS = {"pool_min_size": int, "pool_max_size": int, "pool_timeout": float}


def is_postgres_url(database: str | None) -> bool:
    return bool(database) and str(database).startswith(("postgresql://", "postgres://"))


def split_pool_options(url: str) -> tuple[str, dict[str, float]]:
    """(the URL without openkms's ``pool_*`` query parameters, those parameters)."""
    parts = urlsplit(url)
    keep: list[tuple[str, str]] = []
    options: dict[str, float] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in POOL_OPTIONS:
            try:
                options[name] = POOL_OPTIONS[name](value)
            except ValueError as exc:
                raise StorageUnavailable(f"database URL: {name}={value!r} is not a number") from exc
        else:
            keep.append((name, value))
    if not options:
        return url, options
    # quote, not quote_plus: libpq reads "+" as a plus sign, not a space.
    return urlunsplit(parts._replace(query=urlencode(keep, quote_via=quote))), options


def describe(url: str) -> str:
    """host:port/dbname of a URL, never its password."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.Error:
        return "<unparseable database URL>"
    return f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"


def pg_dialect(statement: str) -> str:
    """A shared migration statement as PostgreSQL runs it: text compares by code point; the key
    search index without the description (up to 8,192 characters: more than a B-tree entry may
    hold in PostgreSQL)."""
    statement = statement.replace("multi_region, description)", "multi_region)")
    return re.sub(r"\bTEXT\b", 'TEXT COLLATE "C"', statement)


_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LOWER = _UPPER.lower()


@functools.lru_cache(maxsize=512)
def pyformat(statement: str) -> str:
    """A statement written with ``?`` placeholders in psycopg's form (``%s``, ``%`` doubled)."""
    return statement.replace("%", "%%").replace("?", "%s")


class PostgresDialect(Dialect):
    # READ COMMITTED, every read inside a transaction locking what it read (module docstring).
    begin = "BEGIN ISOLATION LEVEL READ COMMITTED"
    for_update = "FOR UPDATE"
    advisory_lock = "SELECT pg_advisory_xact_lock(?)"
    driver_error = psycopg.Error

    def __init__(self, where: str) -> None:
        self.where = where

    def sql(self, statement: str) -> str:
        return pyformat(statement)

    def contains(self, column: str) -> str:
        # translate() folds exactly the ASCII letters, as SQLite's lower() does (PostgreSQL's
        # lower() follows the locale): every backend matches the same keys.
        return f"strpos(translate({column}, '{_UPPER}', '{_LOWER}'), ?) > 0"

    def ddl(self, statement: str) -> str:
        return pg_dialect(statement)

    def translate(self, exc: Exception) -> StorageError:
        if isinstance(exc, psycopg.IntegrityError):
            return StorageConflict(type(exc).__name__)
        return StorageUnavailable(
            f"PostgreSQL at {self.where}: {type(exc).__name__} "
            f"(SQLSTATE {getattr(exc, 'sqlstate', None)})"
        )


def _configure(conn: Conn) -> None:
    for statement in SESSION_SETTINGS:
        conn.execute(statement)


class PostgresStorage(SqlRepository):
    def __init__(
        self,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        pool_timeout: float = 2.0,
        connect_timeout: float = 5.0,
    ) -> None:
        url, options = split_pool_options(url)
        self._where = describe(url)
        super().__init__(PostgresDialect(self._where))
        self._pool_timeout = float(options.get("pool_timeout", pool_timeout))
        min_size = int(options.get("pool_min_size", min_size))
        max_size = max(min_size, int(options.get("pool_max_size", max_size)))
        self._pool: ConnectionPool[Conn] = ConnectionPool(
            url,
            connection_class=psycopg.Connection[DictRow],
            kwargs={
                "autocommit": True,
                "row_factory": dict_row,
                "connect_timeout": max(1, int(connect_timeout)),
                "application_name": "openkms",
            },
            min_size=min_size,
            max_size=max_size,
            timeout=self._pool_timeout,
            configure=_configure,
            # Give up a failing reconnection soon: the next request starts a new one at once,
            # rather than waiting out an exponential backoff after PostgreSQL is back.
            reconnect_timeout=1.0,
            name="openkms",
            open=False,
        )
        try:
            self._pool.open(wait=True, timeout=connect_timeout)
        except (PoolTimeout, psycopg.Error) as exc:
            self._pool.close()
            raise StorageUnavailable(f"cannot connect to PostgreSQL at {self._where}") from exc
        try:
            self._migrate()
        except BaseException:
            self._pool.close()
            raise

    def close(self) -> None:
        self._pool.close()

    # -- plumbing ----------------------------------------------------------------------------
    def _prepare_migration(self) -> None:
        # A migration may take long on a big database, and a node that starts meanwhile waits
        # for it: neither is bound by the per-request timeouts.
        self._exec("SET LOCAL lock_timeout = 0")
        self._exec("SET LOCAL statement_timeout = 0")
        self._lock_id(MIGRATION_LOCK_ID)

    def _getconn(self) -> Conn:
        """A pooled connection, waiting at most the pool timeout. Asked again every quarter
        second: each ask lets the pool start a new connection attempt, so a node finds
        PostgreSQL soon after it is back instead of after the pool's reconnection backoff."""
        deadline = time.monotonic() + self._pool_timeout
        while True:
            wait = min(0.25, deadline - time.monotonic())
            try:
                return self._pool.getconn(timeout=max(wait, 0.001))
            except PoolTimeout as exc:
                if time.monotonic() >= deadline:
                    raise StorageUnavailable(
                        f"no connection to PostgreSQL at {self._where}"
                    ) from exc
            except PoolClosed as exc:
                raise StorageUnavailable("the storage is closed") from exc

    def _putconn(self, conn: Conn) -> None:
        with contextlib.suppress(Exception):
            self._pool.putconn(conn)

    def _drop_stale(self) -> None:
        """After a connection turned out closed (PostgreSQL restarted): test the idle ones, so
        the pool replaces every stale connection at once rather than one failure at a time."""
        with contextlib.suppress(Exception):
            self._pool.check()

    def _begin(self) -> Conn:
        """A pooled connection with a transaction open on it. A connection found closed at BEGIN
        is replaced: nothing was done on it, so trying another is safe."""
        for attempt in range(3):
            conn = self._getconn()
            try:
                conn.execute(self.dialect.begin)
                return conn
            except psycopg.Error as exc:
                broken = conn.broken
                self._putconn(conn)
                if broken and attempt < 2:
                    self._drop_stale()
                    continue
                raise StorageUnavailable(f"PostgreSQL at {self._where}: cannot begin") from exc
        raise StorageUnavailable(f"PostgreSQL at {self._where}: cannot begin")  # pragma: no cover

    def _finish(self, conn: Conn, *, commit: bool) -> None:
        try:
            if not commit:
                with contextlib.suppress(psycopg.Error):
                    conn.execute("ROLLBACK")
                return
            if conn.info.transaction_status == TransactionStatus.INERROR:
                # A statement failed and the caller went on: PostgreSQL would turn COMMIT into
                # a silent ROLLBACK. Say so instead.
                with contextlib.suppress(psycopg.Error):
                    conn.execute("ROLLBACK")
                raise StorageUnavailable("a statement failed; the transaction was rolled back")
            try:
                conn.execute("COMMIT")
            except psycopg.Error as exc:
                raise StorageUnavailable(
                    f"PostgreSQL at {self._where}: commit failed; its outcome is unknown"
                ) from exc
        finally:
            self._putconn(conn)

    def _run(self, sql: str, params: Sequence[Any]) -> tuple[list[Row], int]:
        """One statement: on the transaction's connection, or on a pooled one by itself (reads
        only: every write method opens a transaction). A read on a connection found closed is
        tried once more on a fresh one."""
        conn = self._tx.conn
        if conn is not None:
            return _fetch(conn, sql, params)
        for attempt in range(2):
            conn = self._getconn()
            try:
                return _fetch(conn, sql, params)
            except psycopg.OperationalError:
                if conn.broken and attempt == 0:
                    self._putconn(conn)
                    conn = None
                    self._drop_stale()
                    continue
                raise
            finally:
                if conn is not None:
                    self._putconn(conn)
        raise StorageUnavailable(f"PostgreSQL at {self._where} is unreachable")


def _fetch(conn: Conn, sql: str, params: Sequence[Any]) -> tuple[list[Row], int]:
    cursor = conn.execute(sql, params)
    rows = cursor.fetchall() if cursor.description is not None else []
    return rows, cursor.rowcount
