"""The Storage protocol over SQL, written once for every SQL engine: the statements, the row
mapping, transactions and the locking rules.

An engine module (``sqlite.py``, ``postgres.py``) supplies a connection, how a transaction begins
and ends on it, how one statement runs, and a ``Dialect``: what genuinely differs between the
engines, one line each. SQL here is written with ``?`` placeholders; the dialect turns a
statement into its driver's form. Adding a table means one migration (``migrations/``, shared
by both engines) and its queries here.

Locking reads. ``lock=True`` on a read inside a transaction appends the dialect's row lock
(PostgreSQL ``FOR UPDATE``); ``_lock_set(…)`` takes the dialect's transaction-scoped lock on a
named set of rows (PostgreSQL ``pg_advisory_xact_lock``). Both are nothing in SQLite, where
``BEGIN IMMEDIATE`` already holds the whole database until the commit.

Uniqueness is ``INSERT … ON CONFLICT DO NOTHING``: no row inserted → ``StorageConflict``, and the
transaction stays usable in every engine (a caller may catch the conflict and go on).
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

import orjson

from openkms.domain.key import KeyRecord
from openkms.storage.base import StorageConflict, StorageError
from openkms.storage.migrations import load_migrations, split_statements
from openkms.storage.records import (
    AccessKeyRecord,
    AccountRecord,
    AliasRecord,
    KeyQuery,
    KeyUsage,
    MaterialRecord,
)
from openkms.storage.sql_secrets import SqlSecretStore

USAGE_CAS_ATTEMPTS = 5
# Keys whose search columns (migration 0008) are filled per transaction when an existing
# database is migrated.
BACKFILL_BATCH = 500
# Bound parameters per IN (...) list: well under SQLite's oldest limit (999).
SCOPES_PER_QUERY = 500


class NamedRow(Protocol):
    """A result row that indexes by column name (sqlite3.Row, psycopg's dict rows)."""

    def __getitem__(self, name: str) -> Any: ...


class Dialect(ABC):
    """What one SQL engine does differently from the SQL written in this module."""

    # The statement that starts a transaction.
    begin: str = "BEGIN"
    # Appended to a locking read inside a transaction: the rows read stay locked until commit.
    for_update: str = ""
    # Takes a transaction-scoped lock on a set of rows by a signed 64-bit id (one ``?``); None
    # where a transaction holds the whole database already.
    advisory_lock: str | None = None
    # record_key_usage runs a batch as one transaction (one commit), not key by key.
    usage_batch_in_one_transaction: bool = False
    # The driver's base exception: what ``translate`` turns into a StorageError.
    driver_error: type[Exception] = Exception

    def sql(self, statement: str) -> str:
        """A statement written with ``?`` placeholders, as the driver takes it."""
        return statement

    def ddl(self, statement: str) -> str:
        """A statement of the shared migrations, as this engine runs it."""
        return statement

    @abstractmethod
    def translate(self, exc: Exception) -> StorageError:
        """A driver error as StorageConflict (a uniqueness or reference rule) or
        StorageUnavailable (anything else)."""

    def contains(self, column: str) -> str:
        """A condition: the column, its ASCII letters lower-cased, holds the one ``?``
        parameter as a plain substring. No LIKE: the user's ``%`` and ``_`` mean themselves, and
        the match costs at most the column's length times the text's (SQLite's ``lower`` folds
        ASCII letters only)."""
        return f"instr(lower({column}), ?) > 0"


def lock_id(*parts: str) -> int:
    """A signed 64-bit advisory lock id for a named set of rows."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


# -- row → record ----------------------------------------------------------------------------
def key_from_row(row: NamedRow) -> KeyRecord:
    return KeyRecord.from_doc(orjson.loads(row["doc"]))


# The migration that added the search columns of kms_keys.
SEARCH_COLUMNS_VERSION = 8


def _search_columns(key: KeyRecord) -> tuple[str, str, str, int, str]:
    """(key_spec, key_usage, origin, multi_region, description) as the search index holds them."""
    return key.key_spec, key.key_usage, key.origin, int(key.multi_region), key.description


def account_from_row(row: NamedRow) -> AccountRecord:
    return AccountRecord(row["account_id"], row["created_at"])


def material_from_row(row: NamedRow) -> MaterialRecord:
    doc = orjson.loads(row["doc"])
    return MaterialRecord(
        key_arn=row["key_arn"],
        material_id=row["material_id"],
        wrapped=bytes(row["wrapped"]),
        created_at=row["created_at"],
        state=row["state"],
        rotation_type=doc.get("rotation_type"),
        extra=doc.get("extra", {}),
    )


def access_key_from_row(row: NamedRow) -> AccessKeyRecord:
    return AccessKeyRecord(
        access_key_id=row["access_key_id"],
        account_id=row["account_id"],
        principal_arn=row["principal_arn"],
        wrapped_secret=bytes(row["wrapped_secret"]),
        status=row["status"],
        created_at=row["created_at"],
    )


def alias_from_row(row: NamedRow) -> AliasRecord:
    return AliasRecord(
        account_id=row["account_id"],
        region=row["region"],
        alias_name=row["alias_name"],
        key_id=row["key_id"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class _Tx(threading.local):
    """This thread's open transaction, if any: its connection, nesting depth and the advisory
    locks it holds."""

    def __init__(self) -> None:
        self.conn: Any = None
        self.depth = 0
        self.locks: set[int] = set()


class SqlRepository(SqlSecretStore, ABC):
    """Every Storage method, once. A subclass supplies the connection handling."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._tx = _Tx()

    # -- what an engine supplies ---------------------------------------------------------------
    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def _begin(self) -> Any:
        """A connection with a transaction open on it (``dialect.begin``)."""

    @abstractmethod
    def _finish(self, conn: Any, *, commit: bool) -> None:
        """Commits or rolls back the transaction on ``conn`` and gives the connection back."""

    @abstractmethod
    def _run(self, sql: str, params: Sequence[Any]) -> tuple[Sequence[NamedRow], int]:
        """(rows, rowcount) of one statement in the driver's form: on the transaction's
        connection, or by itself. Driver errors propagate."""

    @abstractmethod
    def _prepare_migration(self) -> None:
        """Runs first in the migration's transaction: keeps other nodes out of it."""

    # -- plumbing ----------------------------------------------------------------------------
    def _migrate(self) -> None:
        with self.transaction():
            self._prepare_migration()
            self._exec(
                self.dialect.ddl(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                    "name TEXT NOT NULL)"
                )
            )
            done = {r["version"] for r in self._all("SELECT version FROM schema_migrations")}
            for version, name, sql in load_migrations():
                if version in done:
                    continue
                for statement in split_statements(sql):
                    self._exec(self.dialect.ddl(statement))
                if version == SEARCH_COLUMNS_VERSION:
                    self._backfill_search_columns()
                self._exec(
                    "INSERT INTO schema_migrations(version, name) VALUES (?, ?)", (version, name)
                )

    def _backfill_search_columns(self) -> None:
        """Migration 0008 on an existing database: each key's search columns from its
        document, in the migration's transaction (a crash leaves the migration undone)."""
        after = ""
        while True:
            rows = self._all(
                "SELECT arn, doc FROM kms_keys WHERE arn > ? ORDER BY arn LIMIT ?",
                (after, BACKFILL_BATCH),
            )
            for row in rows:
                key = key_from_row(row)
                self._exec(
                    "UPDATE kms_keys SET key_spec = ?, key_usage = ?, origin = ?, "
                    "multi_region = ?, description = ? WHERE arn = ?",
                    (*_search_columns(key), key.arn),
                )
            if len(rows) < BACKFILL_BATCH:
                return
            after = str(rows[-1]["arn"])

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

    def _statement(self, sql: str, params: Sequence[Any] = ()) -> tuple[Sequence[NamedRow], int]:
        try:
            return self._run(self.dialect.sql(sql), params)
        except self.dialect.driver_error as exc:
            raise self.dialect.translate(exc) from exc

    def _all(self, sql: str, params: Sequence[Any] = (), *, lock: bool = False) -> list[NamedRow]:
        """``lock``: inside a transaction, the rows read stay locked until the commit."""
        if lock and self.dialect.for_update and self._in_transaction:
            sql += " " + self.dialect.for_update
        return list(self._statement(sql, params)[0])

    def _one(self, sql: str, params: Sequence[Any] = (), *, lock: bool = False) -> NamedRow | None:
        rows = self._all(sql, params, lock=lock)
        return rows[0] if rows else None

    def _exec(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._statement(sql, params)[1]

    def _write(self, sql: str, params: Sequence[Any] = ()) -> int:
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
        if self.dialect.advisory_lock is None or tx.conn is None or ident in tx.locks:
            return
        self._exec(self.dialect.advisory_lock, (ident,))
        tx.locks.add(ident)

    def _lock_set(self, *parts: str) -> None:
        """Inside a transaction: holds the named set of rows until the commit."""
        if self._in_transaction:
            self._lock_id(lock_id(*parts))

    # -- metadata ----------------------------------------------------------------------------
    def get_meta(self, name: str) -> str | None:
        row = self._one("SELECT value FROM meta WHERE name = ?", (name,), lock=True)
        return None if row is None else str(row["value"])

    def set_meta(self, name: str, value: str) -> None:
        self._write(
            "INSERT INTO meta(name, value) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            (name, value),
        )

    # -- accounts and access keys ------------------------------------------------------------
    def put_account(self, account: AccountRecord) -> None:
        self._insert_unique(
            "INSERT INTO accounts(account_id, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (account.account_id, account.created_at),
            "account",
        )

    def get_account(self, account_id: str) -> AccountRecord | None:
        row = self._one("SELECT * FROM accounts WHERE account_id = ?", (account_id,))
        return None if row is None else account_from_row(row)

    def list_accounts(self) -> list[AccountRecord]:
        return [
            account_from_row(r) for r in self._all("SELECT * FROM accounts ORDER BY account_id")
        ]

    def put_access_key(self, key: AccessKeyRecord) -> None:
        self._write(
            "INSERT INTO access_keys(access_key_id, account_id, principal_arn, wrapped_secret, "
            "status, created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(access_key_id) DO UPDATE "
            "SET status = excluded.status, wrapped_secret = excluded.wrapped_secret",
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
            "SELECT * FROM access_keys WHERE access_key_id = ?", (access_key_id,), lock=True
        )
        return None if row is None else access_key_from_row(row)

    def list_access_keys(self, account_id: str) -> list[AccessKeyRecord]:
        self._lock_set("access_keys", account_id)
        rows = self._all(
            "SELECT * FROM access_keys WHERE account_id = ? ORDER BY created_at, access_key_id",
            (account_id,),
        )
        return [access_key_from_row(r) for r in rows]

    def delete_access_key(self, access_key_id: str) -> None:
        self._write("DELETE FROM access_keys WHERE access_key_id = ?", (access_key_id,))

    # -- keys --------------------------------------------------------------------------------
    def insert_key(self, key: KeyRecord) -> None:
        self._insert_unique(
            "INSERT INTO kms_keys(arn, account_id, region, key_id, state, deletion_at, "
            "next_rotation_at, valid_to, doc, key_spec, key_usage, origin, multi_region, "
            "description) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
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
                *_search_columns(key),
            ),
            "key",
        )

    def update_key(self, key: KeyRecord) -> None:
        self._write(
            "UPDATE kms_keys SET state = ?, deletion_at = ?, next_rotation_at = ?, valid_to = ?, "
            "doc = ?, key_spec = ?, key_usage = ?, origin = ?, multi_region = ?, description = ? "
            "WHERE arn = ?",
            (
                key.state,
                key.deletion_at,
                key.next_rotation_at if key.rotation_enabled else None,
                key.valid_to,
                orjson.dumps(key.to_doc()).decode(),
                *_search_columns(key),
                key.arn,
            ),
        )

    def get_key(self, arn: str) -> KeyRecord | None:
        """Inside a transaction the row stays locked until the commit (SELECT … FOR UPDATE)."""
        row = self._one("SELECT doc FROM kms_keys WHERE arn = ?", (arn,), lock=True)
        return None if row is None else key_from_row(row)

    def list_keys(
        self, account_id: str, region: str, after_key_id: str | None, limit: int
    ) -> list[KeyRecord]:
        rows = self._all(
            "SELECT doc FROM kms_keys WHERE account_id = ? AND region = ? AND key_id > ? "
            "ORDER BY key_id LIMIT ?",
            (account_id, region, after_key_id or "", limit),
        )
        return [key_from_row(r) for r in rows]

    def key_id_after(
        self, account_id: str, region: str, after_key_id: str | None, offset: int
    ) -> str | None:
        rows = self._all(
            "SELECT key_id FROM kms_keys WHERE account_id = ? AND region = ? AND key_id > ? "
            "ORDER BY key_id LIMIT 1 OFFSET ?",
            (account_id, region, after_key_id or "", max(offset - 1, 0)),
        )
        return str(rows[0]["key_id"]) if rows else None

    def search_keys(
        self,
        account_id: str,
        region: str,
        query: KeyQuery,
        after_key_id: str | None,
        upto_key_id: str | None,
        limit: int,
    ) -> list[KeyRecord]:
        where = ["account_id = ?", "region = ?", "key_id > ?"]
        params: list[Any] = [account_id, region, after_key_id or ""]
        if upto_key_id is not None:
            where.append("key_id <= ?")
            params.append(upto_key_id)
        for column, value in (
            ("state", query.key_state),
            ("key_spec", query.key_spec),
            ("key_usage", query.key_usage),
            ("origin", query.origin),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if query.multi_region is not None:
            where.append("multi_region = ?")
            params.append(int(query.multi_region))
        if query.rotation_due_before is not None:
            # next_rotation_at is kept only while automatic rotation is on (update_key).
            where.append("next_rotation_at IS NOT NULL AND next_rotation_at <= ?")
            params.append(query.rotation_due_before)
        if query.text:
            prefix = self._arn_prefix(account_id, region)
            if prefix is None:
                return []  # no keys in the account and Region
            contains = self.dialect.contains
            # Aliases and tags as two sets, each read once (an alias scan of the account, a
            # range of the tags' primary key that covers the window), not a lookup per key.
            where.append(  # fixed column names; the text is bound five times
                f"({contains('key_id')} OR {contains('description')} "  # noqa: S608
                "OR key_id IN (SELECT a.key_id FROM aliases a WHERE a.account_id = ? "
                f"AND a.region = ? AND {contains('a.alias_name')}) "
                "OR key_id IN (SELECT substr(t.key_arn, ?) FROM key_tags t WHERE t.key_arn > ? "
                f"AND t.key_arn <= ? AND ({contains('t.tag_key')} OR {contains('t.tag_value')})))"
            )
            # Key ids, not ARNs: every condition reads the index, and a row (its document) is
            # read only for a key that matches.
            params.extend([query.text, query.text, account_id, region, query.text, len(prefix) + 1])
            high = prefix + upto_key_id if upto_key_id is not None else prefix + "\U0010ffff"
            params.extend([prefix + (after_key_id or ""), high, query.text, query.text])
        params.append(limit)
        rows = self._all(
            "SELECT doc FROM kms_keys WHERE "  # noqa: S608 - fixed column names, values bound
            + " AND ".join(where)
            + " ORDER BY key_id LIMIT ?",
            params,
        )
        return [key_from_row(r) for r in rows]

    def _arn_prefix(self, account_id: str, region: str) -> str | None:
        """What every key ARN of the account and Region starts with ("arn:aws:kms:…:key/")."""
        row = self._one(
            "SELECT arn, key_id FROM kms_keys WHERE account_id = ? AND region = ? LIMIT 1",
            (account_id, region),
        )
        if row is None:
            return None
        arn, key_id = str(row["arn"]), str(row["key_id"])
        return arn[: len(arn) - len(key_id)]

    def list_related_keys(self, account_id: str, key_id: str) -> list[KeyRecord]:
        rows = self._all(
            "SELECT doc FROM kms_keys WHERE account_id = ? AND key_id = ? ORDER BY region",
            (account_id, key_id),
            lock=True,
        )
        return [key_from_row(r) for r in rows]

    def delete_key(self, arn: str) -> None:
        with self.transaction():
            row = self._one(
                "SELECT account_id, region, key_id FROM kms_keys WHERE arn = ?", (arn,), lock=True
            )
            if row is None:
                return
            self._exec(
                "DELETE FROM aliases WHERE account_id = ? AND region = ? AND key_id = ?",
                (row["account_id"], row["region"], row["key_id"]),
            )
            self._exec("DELETE FROM key_tags WHERE key_arn = ?", (arn,))
            # Grants and their name index are scoped by the key ARN.
            self._exec("DELETE FROM documents WHERE kind LIKE 'kms-%' AND scope = ?", (arn,))
            self._exec("DELETE FROM key_materials WHERE key_arn = ?", (arn,))
            self._exec("DELETE FROM kms_keys WHERE arn = ?", (arn,))

    def _arns(self, sql: str, now: float) -> list[str]:
        return [str(r["arn"]) for r in self._all(sql, (now,))]

    def keys_due_for_deletion(self, now: float) -> list[str]:
        return self._arns(
            "SELECT arn FROM kms_keys WHERE deletion_at IS NOT NULL AND deletion_at <= ? "
            "AND state = 'PendingDeletion' ORDER BY arn",
            now,
        )

    def keys_due_for_rotation(self, now: float) -> list[str]:
        return self._arns(
            "SELECT arn FROM kms_keys WHERE next_rotation_at IS NOT NULL "
            "AND next_rotation_at <= ? ORDER BY arn",
            now,
        )

    def keys_with_expiring_material(self, now: float) -> list[str]:
        return self._arns(
            "SELECT arn FROM kms_keys WHERE valid_to IS NOT NULL AND valid_to <= ? ORDER BY arn",
            now,
        )

    def record_key_usage(self, usages: Sequence[KeyUsage]) -> None:
        """Per key, a compare-and-set on the stored document: a concurrent writer of the key
        (which holds its row) is waited for and its change kept; no lock spans two keys unless
        the dialect runs the batch as one transaction (SQLite: the database is locked anyway,
        and the batch costs one commit)."""
        batch: AbstractContextManager[None] = (
            self.transaction()
            if self.dialect.usage_batch_in_one_transaction
            else contextlib.nullcontext()
        )
        with batch:
            for usage in sorted(usages, key=lambda u: u.key_arn):
                for _ in range(USAGE_CAS_ATTEMPTS):
                    row = self._one("SELECT doc FROM kms_keys WHERE arn = ?", (usage.key_arn,))
                    if row is None:
                        break
                    doc = orjson.loads(row["doc"])
                    if doc.get("last_used_at") and doc["last_used_at"] >= usage.at:
                        break
                    doc["last_used_at"] = usage.at
                    doc["last_used_operation"] = usage.operation
                    doc["last_used_request_id"] = usage.request_id
                    changed = self._write(
                        "UPDATE kms_keys SET doc = ? WHERE arn = ? AND doc = ?",
                        (orjson.dumps(doc).decode(), usage.key_arn, row["doc"]),
                    )
                    if changed:
                        break

    # -- key material ------------------------------------------------------------------------
    def put_material(self, material: MaterialRecord) -> None:
        doc = orjson.dumps({"rotation_type": material.rotation_type, "extra": material.extra})
        self._write(
            "INSERT INTO key_materials(key_arn, material_id, wrapped, created_at, state, doc, "
            "seq) VALUES (?, ?, ?, ?, ?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM key_materials "
            "WHERE key_arn = ?)) ON CONFLICT(key_arn, material_id) DO UPDATE SET "
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
            "DELETE FROM key_materials WHERE key_arn = ? AND material_id = ?",
            (key_arn, material_id),
        )

    def get_material(self, key_arn: str, material_id: str) -> MaterialRecord | None:
        row = self._one(
            "SELECT * FROM key_materials WHERE key_arn = ? AND material_id = ?",
            (key_arn, material_id),
        )
        return None if row is None else material_from_row(row)

    def list_materials(self, key_arn: str) -> list[MaterialRecord]:
        rows = self._all(
            "SELECT * FROM key_materials WHERE key_arn = ? ORDER BY created_at, seq, material_id",
            (key_arn,),
        )
        return [material_from_row(r) for r in rows]

    # -- aliases -----------------------------------------------------------------------------
    def insert_alias(self, alias: AliasRecord) -> None:
        self._insert_unique(
            "INSERT INTO aliases(account_id, region, alias_name, key_id, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
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
            "UPDATE aliases SET key_id = ?, updated_at = ? "
            "WHERE account_id = ? AND region = ? AND alias_name = ?",
            (alias.key_id, alias.updated_at, alias.account_id, alias.region, alias.alias_name),
        )

    def get_alias(self, account_id: str, region: str, alias_name: str) -> AliasRecord | None:
        self._lock_set("aliases", account_id, region)
        row = self._one(
            "SELECT * FROM aliases WHERE account_id = ? AND region = ? AND alias_name = ?",
            (account_id, region, alias_name),
        )
        return None if row is None else alias_from_row(row)

    def delete_alias(self, account_id: str, region: str, alias_name: str) -> None:
        self._write(
            "DELETE FROM aliases WHERE account_id = ? AND region = ? AND alias_name = ?",
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
        self._lock_set("aliases", account_id, region)
        sql = "SELECT * FROM aliases WHERE account_id = ? AND region = ? AND alias_name > ?"
        params: list[Any] = [account_id, region, after_name or ""]
        if key_id is not None:
            sql += " AND key_id = ?"
            params.append(key_id)
        sql += " ORDER BY alias_name LIMIT ?"
        params.append(limit)
        return [alias_from_row(r) for r in self._all(sql, params)]

    # -- tags --------------------------------------------------------------------------------
    def get_tags(self, key_arn: str) -> dict[str, str]:
        self._lock_set("tags", key_arn)
        rows = self._all(
            "SELECT tag_key, tag_value FROM key_tags WHERE key_arn = ? ORDER BY tag_key",
            (key_arn,),
        )
        return {str(r["tag_key"]): str(r["tag_value"]) for r in rows}

    def put_tags(self, key_arn: str, tags: Mapping[str, str]) -> None:
        with self.transaction():
            for key, value in tags.items():
                self._exec(
                    "INSERT INTO key_tags(key_arn, tag_key, tag_value) VALUES (?, ?, ?) "
                    "ON CONFLICT(key_arn, tag_key) DO UPDATE SET tag_value = excluded.tag_value",
                    (key_arn, key, value),
                )

    def delete_tags(self, key_arn: str, tag_keys: Sequence[str]) -> None:
        with self.transaction():
            for key in tag_keys:
                self._exec("DELETE FROM key_tags WHERE key_arn = ? AND tag_key = ?", (key_arn, key))

    # -- documents -----------------------------------------------------------------------------
    def put_document(
        self, kind: str, scope: str, name: str, doc: str, now: float, *, create_only: bool = False
    ) -> None:
        sql = "INSERT INTO documents(kind, scope, name, doc, updated_at) VALUES (?, ?, ?, ?, ?) "
        if create_only:
            self._insert_unique(
                sql + "ON CONFLICT DO NOTHING", (kind, scope, name, doc, now), "document"
            )
            return
        self._write(
            sql + "ON CONFLICT(kind, scope, name) DO UPDATE SET doc = excluded.doc, "
            "updated_at = excluded.updated_at",
            (kind, scope, name, doc, now),
        )

    def get_document(self, kind: str, scope: str, name: str) -> str | None:
        self._lock_set("documents", scope)
        row = self._one(
            "SELECT doc FROM documents WHERE kind = ? AND scope = ? AND name = ?",
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
        self._lock_set("documents", scope)
        rows = self._all(
            "SELECT name, doc FROM documents WHERE kind = ? AND scope = ? AND name > ? "
            "AND substr(name, 1, ?) = ? ORDER BY name LIMIT ?",
            (kind, scope, after or "", len(prefix), prefix, limit),
        )
        return [(str(r["name"]), str(r["doc"])) for r in rows]

    def list_document_scopes(self, kind: str) -> list[str]:
        """Every scope that holds documents of ``kind`` (root-key rotation scans them)."""
        rows = self._all(
            "SELECT DISTINCT scope FROM documents WHERE kind = ? ORDER BY scope", (kind,)
        )
        return [str(r["scope"]) for r in rows]

    def scopes_with_documents(self, kind: str, scopes: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(scopes), SCOPES_PER_QUERY):
            chunk = list(scopes[start : start + SCOPES_PER_QUERY])
            marks = ", ".join("?" * len(chunk))
            rows = self._all(
                f"SELECT DISTINCT scope FROM documents WHERE kind = ? AND scope IN ({marks})",  # noqa: S608
                [kind, *chunk],
            )
            found.update(str(r["scope"]) for r in rows)
        return found

    def delete_document(self, kind: str, scope: str, name: str) -> bool:
        deleted = self._write(
            "DELETE FROM documents WHERE kind = ? AND scope = ? AND name = ?", (kind, scope, name)
        )
        return deleted > 0

    # -- maintenance -------------------------------------------------------------------------
    def reset_kms_data(self) -> None:
        with self.transaction():
            # Secrets go too: their values are encrypted under the keys that go.
            for table in (
                "secret_versions",
                "secrets",
                "key_tags",
                "aliases",
                "key_materials",
                "kms_keys",
            ):
                self._exec(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
            self._exec("DELETE FROM documents WHERE kind LIKE 'kms-%'")

    def iter_wrapped_secrets(self) -> Iterator[tuple[str, bytes]]:
        for r in self._all("SELECT key_arn, material_id, wrapped FROM key_materials"):
            yield f"{r['key_arn']}#{r['material_id']}", bytes(r["wrapped"])
        for r in self._all("SELECT access_key_id, wrapped_secret FROM access_keys"):
            yield f"access-key:{r['access_key_id']}", bytes(r["wrapped_secret"])
