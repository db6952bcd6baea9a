"""PostgreSQL: the backend for several stateless openkms nodes sharing one database.

Selected by a ``postgresql://`` (or ``postgres://``) ``database`` setting. psycopg 3 with a
connection pool; each thread's transaction holds one pooled connection from BEGIN to COMMIT, and
a read outside a transaction borrows one for a single statement.

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
import hashlib
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import orjson
import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout

from openkms.domain.key import KeyRecord
from openkms.storage.base import StorageConflict, StorageUnavailable
from openkms.storage.migrations import load_migrations, split_statements
from openkms.storage.records import (
    AccessKeyRecord,
    AccountRecord,
    AliasRecord,
    KeyUsage,
    MaterialRecord,
)
from openkms.storage.rows import access_key_from_row, alias_from_row, material_from_row

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
USAGE_CAS_ATTEMPTS = 5


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
    """A shared migration statement as PostgreSQL runs it: text compares by code point."""
    return re.sub(r"\bTEXT\b", 'TEXT COLLATE "C"', statement)


def lock_id(*parts: str) -> int:
    """A signed 64-bit advisory lock id for a named set of rows."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _key_from_row(row: Row) -> KeyRecord:
    return KeyRecord.from_doc(orjson.loads(row["doc"]))


class _Tx(threading.local):
    """This thread's open transaction, if any."""

    def __init__(self) -> None:
        self.conn: Conn | None = None
        self.depth = 0
        self.locks: set[int] = set()


def _configure(conn: Conn) -> None:
    for statement in SESSION_SETTINGS:
        conn.execute(statement)


class PostgresStorage:
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
        self._tx = _Tx()
        try:
            self._migrate()
        except BaseException:
            self._pool.close()
            raise

    def close(self) -> None:
        self._pool.close()

    # -- plumbing ----------------------------------------------------------------------------
    def _migrate(self) -> None:
        with self.transaction():
            # A migration may take long on a big database, and a node that starts meanwhile
            # waits for it: neither is bound by the per-request timeouts.
            self._exec("SET LOCAL lock_timeout = 0")
            self._exec("SET LOCAL statement_timeout = 0")
            self._lock_id(MIGRATION_LOCK_ID)
            self._exec(
                pg_dialect(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                    "name TEXT NOT NULL)"
                )
            )
            done = {r["version"] for r in self._all("SELECT version FROM schema_migrations")}
            for version, name, sql in load_migrations():
                if version in done:
                    continue
                for statement in split_statements(sql):
                    self._exec(pg_dialect(statement))
                self._exec(
                    "INSERT INTO schema_migrations(version, name) VALUES (%s, %s)", (version, name)
                )

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
                conn.execute("BEGIN ISOLATION LEVEL READ COMMITTED")
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

    @contextmanager
    def transaction(self) -> Iterator[None]:
        tx = self._tx
        if tx.conn is not None:
            tx.depth += 1
            try:
                yield
            finally:
                tx.depth -= 1
            return
        conn = self._begin()
        tx.conn, tx.depth, tx.locks = conn, 1, set()
        try:
            yield
        except BaseException:
            tx.conn, tx.depth = None, 0
            self._finish(conn, commit=False)
            raise
        tx.conn, tx.depth = None, 0
        self._finish(conn, commit=True)

    @property
    def _in_transaction(self) -> bool:
        return self._tx.conn is not None

    def _run(self, conn: Conn, sql: str, params: Sequence[Any] | None) -> tuple[list[Row], int]:
        cursor = conn.execute(sql, params)
        rows = cursor.fetchall() if cursor.description is not None else []
        return rows, cursor.rowcount

    def _statement(self, sql: str, params: Sequence[Any] | None = None) -> tuple[list[Row], int]:
        """Runs one statement: on the transaction's connection, or on a pooled one by itself
        (reads only: every write method opens a transaction). A read on a connection found
        closed is tried once more on a fresh one."""
        conn = self._tx.conn
        try:
            if conn is not None:
                return self._run(conn, sql, params)
            for attempt in range(2):
                conn = self._getconn()
                try:
                    return self._run(conn, sql, params)
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
        except psycopg.IntegrityError as exc:
            raise StorageConflict(type(exc).__name__) from exc
        except psycopg.Error as exc:
            raise StorageUnavailable(
                f"PostgreSQL at {self._where}: {type(exc).__name__} "
                f"(SQLSTATE {getattr(exc, 'sqlstate', None)})"
            ) from exc

    def _all(
        self, sql: str, params: Sequence[Any] | None = None, *, lock: bool = False
    ) -> list[Row]:
        """``lock``: inside a transaction, the rows read stay locked until the commit."""
        if lock and self._in_transaction:
            sql += " FOR UPDATE"
        return self._statement(sql, params)[0]

    def _one(
        self, sql: str, params: Sequence[Any] | None = None, *, lock: bool = False
    ) -> Row | None:
        rows = self._all(sql, params, lock=lock)
        return rows[0] if rows else None

    def _exec(self, sql: str, params: Sequence[Any] | None = None) -> int:
        return self._statement(sql, params)[1]

    def _write(self, sql: str, params: Sequence[Any] | None = None) -> int:
        """One write, in the current transaction or in its own."""
        with self.transaction():
            return self._exec(sql, params)

    def _insert_unique(self, sql: str, params: Sequence[Any], what: str) -> None:
        """``sql`` ends in ON CONFLICT DO NOTHING; no row inserted means the record exists."""
        with self.transaction():
            if self._exec(sql, params) == 0:
                raise StorageConflict(f"{what} exists")

    def _lock_id(self, ident: int) -> None:
        tx = self._tx
        if tx.conn is None or ident in tx.locks:
            return
        self._exec("SELECT pg_advisory_xact_lock(%s)", (ident,))
        tx.locks.add(ident)

    def _lock(self, *parts: str) -> None:
        """Inside a transaction: holds the named set of rows until the commit."""
        if self._in_transaction:
            self._lock_id(lock_id(*parts))

    # -- metadata ----------------------------------------------------------------------------
    def get_meta(self, name: str) -> str | None:
        row = self._one("SELECT value FROM meta WHERE name = %s", (name,), lock=True)
        return None if row is None else str(row["value"])

    def set_meta(self, name: str, value: str) -> None:
        self._write(
            "INSERT INTO meta(name, value) VALUES (%s, %s) "
            "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            (name, value),
        )

    # -- accounts and access keys ------------------------------------------------------------
    def put_account(self, account: AccountRecord) -> None:
        self._insert_unique(
            "INSERT INTO accounts(account_id, created_at) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            (account.account_id, account.created_at),
            "account",
        )

    def get_account(self, account_id: str) -> AccountRecord | None:
        row = self._one("SELECT * FROM accounts WHERE account_id = %s", (account_id,))
        return None if row is None else AccountRecord(row["account_id"], row["created_at"])

    def list_accounts(self) -> list[AccountRecord]:
        rows = self._all("SELECT * FROM accounts ORDER BY account_id")
        return [AccountRecord(r["account_id"], r["created_at"]) for r in rows]

    def put_access_key(self, key: AccessKeyRecord) -> None:
        self._write(
            "INSERT INTO access_keys(access_key_id, account_id, principal_arn, wrapped_secret, "
            "status, created_at) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT(access_key_id) DO "
            "UPDATE SET status = excluded.status, wrapped_secret = excluded.wrapped_secret",
            (
                key.access_key_id,
                key.account_id,
                key.principal_arn,
                key.wrapped_secret,
                key.status,
                key.created_at,
            ),
        )

    def get_access_key(self, access_key_id: str) -> AccessKeyRecord | None:
        row = self._one(
            "SELECT * FROM access_keys WHERE access_key_id = %s", (access_key_id,), lock=True
        )
        return None if row is None else access_key_from_row(row)

    def list_access_keys(self, account_id: str) -> list[AccessKeyRecord]:
        self._lock("access_keys", account_id)
        rows = self._all(
            "SELECT * FROM access_keys WHERE account_id = %s ORDER BY created_at, access_key_id",
            (account_id,),
        )
        return [access_key_from_row(r) for r in rows]

    def delete_access_key(self, access_key_id: str) -> None:
        self._write("DELETE FROM access_keys WHERE access_key_id = %s", (access_key_id,))

    # -- keys --------------------------------------------------------------------------------
    def insert_key(self, key: KeyRecord) -> None:
        self._insert_unique(
            "INSERT INTO kms_keys(arn, account_id, region, key_id, state, deletion_at, "
            "next_rotation_at, valid_to, doc) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT DO NOTHING",
            (
                key.arn,
                key.account_id,
                key.region,
                key.key_id,
                key.state,
                key.deletion_at,
                key.next_rotation_at if key.rotation_enabled else None,
                key.valid_to,
                orjson.dumps(key.to_doc()).decode(),
            ),
            "key",
        )

    def update_key(self, key: KeyRecord) -> None:
        self._write(
            "UPDATE kms_keys SET state = %s, deletion_at = %s, next_rotation_at = %s, "
            "valid_to = %s, doc = %s WHERE arn = %s",
            (
                key.state,
                key.deletion_at,
                key.next_rotation_at if key.rotation_enabled else None,
                key.valid_to,
                orjson.dumps(key.to_doc()).decode(),
                key.arn,
            ),
        )

    def get_key(self, arn: str) -> KeyRecord | None:
        """Inside a transaction the row stays locked until the commit (SELECT … FOR UPDATE)."""
        row = self._one("SELECT doc FROM kms_keys WHERE arn = %s", (arn,), lock=True)
        return None if row is None else _key_from_row(row)

    def list_keys(
        self, account_id: str, region: str, after_key_id: str | None, limit: int
    ) -> list[KeyRecord]:
        rows = self._all(
            "SELECT doc FROM kms_keys WHERE account_id = %s AND region = %s AND key_id > %s "
            "ORDER BY key_id LIMIT %s",
            (account_id, region, after_key_id or "", limit),
        )
        return [_key_from_row(r) for r in rows]

    def list_related_keys(self, account_id: str, key_id: str) -> list[KeyRecord]:
        rows = self._all(
            "SELECT doc FROM kms_keys WHERE account_id = %s AND key_id = %s ORDER BY region",
            (account_id, key_id),
            lock=True,
        )
        return [_key_from_row(r) for r in rows]

    def delete_key(self, arn: str) -> None:
        with self.transaction():
            row = self._one(
                "SELECT account_id, region, key_id FROM kms_keys WHERE arn = %s FOR UPDATE",
                (arn,),
            )
            if row is None:
                return
            self._exec(
                "DELETE FROM aliases WHERE account_id = %s AND region = %s AND key_id = %s",
                (row["account_id"], row["region"], row["key_id"]),
            )
            self._exec("DELETE FROM key_tags WHERE key_arn = %s", (arn,))
            # Grants and their name index are scoped by the key ARN.
            self._exec("DELETE FROM documents WHERE kind LIKE 'kms-%%' AND scope = %s", (arn,))
            self._exec("DELETE FROM key_materials WHERE key_arn = %s", (arn,))
            self._exec("DELETE FROM kms_keys WHERE arn = %s", (arn,))

    def keys_due_for_deletion(self, now: float) -> list[str]:
        rows = self._all(
            "SELECT arn FROM kms_keys WHERE deletion_at IS NOT NULL AND deletion_at <= %s "
            "AND state = 'PendingDeletion' ORDER BY arn",
            (now,),
        )
        return [str(r["arn"]) for r in rows]

    def keys_due_for_rotation(self, now: float) -> list[str]:
        rows = self._all(
            "SELECT arn FROM kms_keys WHERE next_rotation_at IS NOT NULL "
            "AND next_rotation_at <= %s ORDER BY arn",
            (now,),
        )
        return [str(r["arn"]) for r in rows]

    def keys_with_expiring_material(self, now: float) -> list[str]:
        rows = self._all(
            "SELECT arn FROM kms_keys WHERE valid_to IS NOT NULL AND valid_to <= %s ORDER BY arn",
            (now,),
        )
        return [str(r["arn"]) for r in rows]

    def record_key_usage(self, usages: Sequence[KeyUsage]) -> None:
        """Per key, a compare-and-set on the stored document: a concurrent writer of the key
        (which holds its row) is waited for and its change kept; no lock spans two keys."""
        for usage in sorted(usages, key=lambda u: u.key_arn):
            for _ in range(USAGE_CAS_ATTEMPTS):
                row = self._one("SELECT doc FROM kms_keys WHERE arn = %s", (usage.key_arn,))
                if row is None:
                    break
                doc = orjson.loads(row["doc"])
                if doc.get("last_used_at") and doc["last_used_at"] >= usage.at:
                    break
                doc["last_used_at"] = usage.at
                doc["last_used_operation"] = usage.operation
                doc["last_used_request_id"] = usage.request_id
                changed = self._write(
                    "UPDATE kms_keys SET doc = %s WHERE arn = %s AND doc = %s",
                    (orjson.dumps(doc).decode(), usage.key_arn, row["doc"]),
                )
                if changed:
                    break

    # -- key material ------------------------------------------------------------------------
    def put_material(self, material: MaterialRecord) -> None:
        doc = orjson.dumps({"rotation_type": material.rotation_type, "extra": material.extra})
        self._write(
            "INSERT INTO key_materials(key_arn, material_id, wrapped, created_at, state, doc, "
            "seq) VALUES (%s, %s, %s, %s, %s, %s, (SELECT COALESCE(MAX(seq), 0) + 1 FROM "
            "key_materials WHERE key_arn = %s)) ON CONFLICT(key_arn, material_id) DO UPDATE SET "
            "wrapped = excluded.wrapped, state = excluded.state, doc = excluded.doc",
            (
                material.key_arn,
                material.material_id,
                material.wrapped,
                material.created_at,
                material.state,
                doc.decode(),
                material.key_arn,
            ),
        )

    def delete_material(self, key_arn: str, material_id: str) -> None:
        self._write(
            "DELETE FROM key_materials WHERE key_arn = %s AND material_id = %s",
            (key_arn, material_id),
        )

    def get_material(self, key_arn: str, material_id: str) -> MaterialRecord | None:
        row = self._one(
            "SELECT * FROM key_materials WHERE key_arn = %s AND material_id = %s",
            (key_arn, material_id),
        )
        return None if row is None else material_from_row(row)

    def list_materials(self, key_arn: str) -> list[MaterialRecord]:
        rows = self._all(
            "SELECT * FROM key_materials WHERE key_arn = %s ORDER BY created_at, seq, material_id",
            (key_arn,),
        )
        return [material_from_row(r) for r in rows]

    # -- aliases -----------------------------------------------------------------------------
    def insert_alias(self, alias: AliasRecord) -> None:
        self._insert_unique(
            "INSERT INTO aliases(account_id, region, alias_name, key_id, created_at, updated_at) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (
                alias.account_id,
                alias.region,
                alias.alias_name,
                alias.key_id,
                alias.created_at,
                alias.updated_at,
            ),
            "alias",
        )

    def update_alias(self, alias: AliasRecord) -> None:
        self._write(
            "UPDATE aliases SET key_id = %s, updated_at = %s "
            "WHERE account_id = %s AND region = %s AND alias_name = %s",
            (alias.key_id, alias.updated_at, alias.account_id, alias.region, alias.alias_name),
        )

    def get_alias(self, account_id: str, region: str, alias_name: str) -> AliasRecord | None:
        self._lock("aliases", account_id, region)
        row = self._one(
            "SELECT * FROM aliases WHERE account_id = %s AND region = %s AND alias_name = %s",
            (account_id, region, alias_name),
        )
        return None if row is None else alias_from_row(row)

    def delete_alias(self, account_id: str, region: str, alias_name: str) -> None:
        self._write(
            "DELETE FROM aliases WHERE account_id = %s AND region = %s AND alias_name = %s",
            (account_id, region, alias_name),
        )

    def list_aliases(
        self,
        account_id: str,
        region: str,
        key_id: str | None,
        after_name: str | None,
        limit: int,
    ) -> list[AliasRecord]:
        self._lock("aliases", account_id, region)
        sql = "SELECT * FROM aliases WHERE account_id = %s AND region = %s AND alias_name > %s"
        params: list[Any] = [account_id, region, after_name or ""]
        if key_id is not None:
            sql += " AND key_id = %s"
            params.append(key_id)
        sql += " ORDER BY alias_name LIMIT %s"
        params.append(limit)
        return [alias_from_row(r) for r in self._all(sql, params)]

    # -- tags --------------------------------------------------------------------------------
    def get_tags(self, key_arn: str) -> dict[str, str]:
        self._lock("tags", key_arn)
        rows = self._all(
            "SELECT tag_key, tag_value FROM key_tags WHERE key_arn = %s ORDER BY tag_key",
            (key_arn,),
        )
        return {str(r["tag_key"]): str(r["tag_value"]) for r in rows}

    def put_tags(self, key_arn: str, tags: Mapping[str, str]) -> None:
        with self.transaction():
            for key, value in tags.items():
                self._exec(
                    "INSERT INTO key_tags(key_arn, tag_key, tag_value) VALUES (%s, %s, %s) "
                    "ON CONFLICT(key_arn, tag_key) DO UPDATE SET tag_value = excluded.tag_value",
                    (key_arn, key, value),
                )

    def delete_tags(self, key_arn: str, tag_keys: Sequence[str]) -> None:
        with self.transaction():
            for key in tag_keys:
                self._exec(
                    "DELETE FROM key_tags WHERE key_arn = %s AND tag_key = %s", (key_arn, key)
                )

    # -- documents -----------------------------------------------------------------------------
    def put_document(
        self, kind: str, scope: str, name: str, doc: str, now: float, *, create_only: bool = False
    ) -> None:
        if create_only:
            self._insert_unique(
                "INSERT INTO documents(kind, scope, name, doc, updated_at) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (kind, scope, name, doc, now),
                "document",
            )
            return
        self._write(
            "INSERT INTO documents(kind, scope, name, doc, updated_at) VALUES (%s, %s, %s, %s, %s) "
            "ON CONFLICT(kind, scope, name) DO UPDATE SET doc = excluded.doc, "
            "updated_at = excluded.updated_at",
            (kind, scope, name, doc, now),
        )

    def get_document(self, kind: str, scope: str, name: str) -> str | None:
        self._lock("documents", scope)
        row = self._one(
            "SELECT doc FROM documents WHERE kind = %s AND scope = %s AND name = %s",
            (kind, scope, name),
        )
        return None if row is None else str(row["doc"])

    def list_documents(
        self,
        kind: str,
        scope: str,
        *,
        prefix: str = "",
        after: str | None = None,
        limit: int = 1000,
    ) -> list[tuple[str, str]]:
        self._lock("documents", scope)
        rows = self._all(
            "SELECT name, doc FROM documents WHERE kind = %s AND scope = %s AND name > %s "
            "AND left(name, %s) = %s ORDER BY name LIMIT %s",
            (kind, scope, after or "", len(prefix), prefix, limit),
        )
        return [(str(r["name"]), str(r["doc"])) for r in rows]

    def delete_document(self, kind: str, scope: str, name: str) -> bool:
        deleted = self._write(
            "DELETE FROM documents WHERE kind = %s AND scope = %s AND name = %s",
            (kind, scope, name),
        )
        return deleted > 0

    # -- maintenance -------------------------------------------------------------------------
    def reset_kms_data(self) -> None:
        with self.transaction():
            for table in ("key_tags", "aliases", "key_materials", "kms_keys"):
                self._exec(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
            self._exec("DELETE FROM documents WHERE kind LIKE 'kms-%'")

    def iter_wrapped_secrets(self) -> Iterator[tuple[str, bytes]]:
        for r in self._all("SELECT key_arn, material_id, wrapped FROM key_materials"):
            yield f"{r['key_arn']}#{r['material_id']}", bytes(r["wrapped"])
        for r in self._all("SELECT access_key_id, wrapped_secret FROM access_keys"):
            yield f"access-key:{r['access_key_id']}", bytes(r["wrapped_secret"])
