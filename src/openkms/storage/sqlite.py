"""The embedded default: SQLite in WAL mode with synchronous=FULL.

One connection per process. Several processes may share the file: SQLite serializes writers
(``BEGIN IMMEDIATE`` plus a busy timeout), and nothing lives only in one process's memory except
caches that expire.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

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


class SqliteStorage:
    def __init__(self, path: Path | str, *, busy_timeout_ms: int = 10_000) -> None:
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
        # The server uses one thread, but the CLI and tests may not; one lock keeps the
        # connection's transaction state coherent.
        self._lock = threading.RLock()
        self._depth = 0
        self._migrate()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- plumbing ----------------------------------------------------------------------------
    def _migrate(self) -> None:
        with self.transaction():
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                "name TEXT NOT NULL)"
            )
            done = {r[0] for r in self._conn.execute("SELECT version FROM schema_migrations")}
            for version, name, sql in load_migrations():
                if version in done:
                    continue
                for stmt in split_statements(sql):
                    self._conn.execute(stmt.replace("BYTEA", "BLOB"))
                self._conn.execute(
                    "INSERT INTO schema_migrations(version, name) VALUES (?, ?)", (version, name)
                )

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StorageUnavailable("database is busy") from exc
            self._depth = 1
            try:
                yield
            except BaseException:
                self._depth = 0
                self._conn.execute("ROLLBACK")
                raise
            self._depth = 0
            try:
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._conn.execute("ROLLBACK")
                raise StorageUnavailable("commit failed") from exc

    def _exec(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        try:
            with self._lock:
                return self._conn.execute(sql, params)
        except sqlite3.IntegrityError as exc:
            raise StorageConflict(str(exc)) from exc
        except sqlite3.Error as exc:
            raise StorageUnavailable("database error") from exc

    def _one(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self._exec(sql, params).fetchone()
        return row

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        return list(self._exec(sql, params).fetchall())

    # -- metadata ----------------------------------------------------------------------------
    def get_meta(self, name: str) -> str | None:
        row = self._one("SELECT value FROM meta WHERE name = ?", (name,))
        return None if row is None else str(row["value"])

    def set_meta(self, name: str, value: str) -> None:
        self._exec(
            "INSERT INTO meta(name, value) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            (name, value),
        )

    # -- accounts and access keys ------------------------------------------------------------
    def put_account(self, account: AccountRecord) -> None:
        self._exec(
            "INSERT INTO accounts(account_id, created_at) VALUES (?, ?)",
            (account.account_id, account.created_at),
        )

    def get_account(self, account_id: str) -> AccountRecord | None:
        row = self._one("SELECT * FROM accounts WHERE account_id = ?", (account_id,))
        return None if row is None else AccountRecord(row["account_id"], row["created_at"])

    def list_accounts(self) -> list[AccountRecord]:
        rows = self._all("SELECT * FROM accounts ORDER BY account_id")
        return [AccountRecord(r["account_id"], r["created_at"]) for r in rows]

    def put_access_key(self, key: AccessKeyRecord) -> None:
        self._exec(
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
        row = self._one("SELECT * FROM access_keys WHERE access_key_id = ?", (access_key_id,))
        return None if row is None else access_key_from_row(row)

    def list_access_keys(self, account_id: str) -> list[AccessKeyRecord]:
        rows = self._all(
            "SELECT * FROM access_keys WHERE account_id = ? ORDER BY created_at, access_key_id",
            (account_id,),
        )
        return [access_key_from_row(r) for r in rows]

    def delete_access_key(self, access_key_id: str) -> None:
        self._exec("DELETE FROM access_keys WHERE access_key_id = ?", (access_key_id,))

    # -- keys --------------------------------------------------------------------------------
    def insert_key(self, key: KeyRecord) -> None:
        self._exec(
            "INSERT INTO kms_keys(arn, account_id, region, key_id, state, deletion_at, "
            "next_rotation_at, valid_to, doc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        )

    def update_key(self, key: KeyRecord) -> None:
        self._exec(
            "UPDATE kms_keys SET state = ?, deletion_at = ?, next_rotation_at = ?, valid_to = ?, "
            "doc = ? WHERE arn = ?",
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
        row = self._one("SELECT doc FROM kms_keys WHERE arn = ?", (arn,))
        return None if row is None else KeyRecord.from_doc(orjson.loads(row["doc"]))

    def list_keys(
        self, account_id: str, region: str, after_key_id: str | None, limit: int
    ) -> list[KeyRecord]:
        rows = self._all(
            "SELECT doc FROM kms_keys WHERE account_id = ? AND region = ? AND key_id > ? "
            "ORDER BY key_id LIMIT ?",
            (account_id, region, after_key_id or "", limit),
        )
        return [KeyRecord.from_doc(orjson.loads(r["doc"])) for r in rows]

    def list_related_keys(self, account_id: str, key_id: str) -> list[KeyRecord]:
        rows = self._all(
            "SELECT doc FROM kms_keys WHERE account_id = ? AND key_id = ? ORDER BY region",
            (account_id, key_id),
        )
        return [KeyRecord.from_doc(orjson.loads(r["doc"])) for r in rows]

    def delete_key(self, arn: str) -> None:
        with self.transaction():
            row = self._one("SELECT account_id, region, key_id FROM kms_keys WHERE arn = ?", (arn,))
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

    def keys_due_for_deletion(self, now: float) -> list[str]:
        rows = self._all(
            "SELECT arn FROM kms_keys WHERE deletion_at IS NOT NULL AND deletion_at <= ? "
            "AND state = 'PendingDeletion'",
            (now,),
        )
        return [str(r["arn"]) for r in rows]

    def keys_due_for_rotation(self, now: float) -> list[str]:
        rows = self._all(
            "SELECT arn FROM kms_keys WHERE next_rotation_at IS NOT NULL AND next_rotation_at <= ?",
            (now,),
        )
        return [str(r["arn"]) for r in rows]

    def keys_with_expiring_material(self, now: float) -> list[str]:
        rows = self._all(
            "SELECT arn FROM kms_keys WHERE valid_to IS NOT NULL AND valid_to <= ?", (now,)
        )
        return [str(r["arn"]) for r in rows]

    def record_key_usage(self, usages: Sequence[KeyUsage]) -> None:
        with self.transaction():
            for usage in usages:
                row = self._one("SELECT doc FROM kms_keys WHERE arn = ?", (usage.key_arn,))
                if row is None:
                    continue
                doc = orjson.loads(row["doc"])
                if doc.get("last_used_at") and doc["last_used_at"] >= usage.at:
                    continue
                doc["last_used_at"] = usage.at
                doc["last_used_operation"] = usage.operation
                doc["last_used_request_id"] = usage.request_id
                self._exec(
                    "UPDATE kms_keys SET doc = ? WHERE arn = ?",
                    (orjson.dumps(doc).decode(), usage.key_arn),
                )

    # -- key material ------------------------------------------------------------------------
    def put_material(self, material: MaterialRecord) -> None:
        doc = orjson.dumps({"rotation_type": material.rotation_type, "extra": material.extra})
        self._exec(
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
        self._exec(
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
        self._exec(
            "INSERT INTO aliases(account_id, region, alias_name, key_id, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                alias.account_id,
                alias.region,
                alias.alias_name,
                alias.key_id,
                alias.created_at,
                alias.updated_at,
            ),
        )

    def update_alias(self, alias: AliasRecord) -> None:
        self._exec(
            "UPDATE aliases SET key_id = ?, updated_at = ? "
            "WHERE account_id = ? AND region = ? AND alias_name = ?",
            (alias.key_id, alias.updated_at, alias.account_id, alias.region, alias.alias_name),
        )

    def get_alias(self, account_id: str, region: str, alias_name: str) -> AliasRecord | None:
        row = self._one(
            "SELECT * FROM aliases WHERE account_id = ? AND region = ? AND alias_name = ?",
            (account_id, region, alias_name),
        )
        return None if row is None else alias_from_row(row)

    def delete_alias(self, account_id: str, region: str, alias_name: str) -> None:
        self._exec(
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
        if create_only:
            self._exec(
                "INSERT INTO documents(kind, scope, name, doc, updated_at) VALUES (?, ?, ?, ?, ?)",
                (kind, scope, name, doc, now),
            )
            return
        self._exec(
            "INSERT INTO documents(kind, scope, name, doc, updated_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(kind, scope, name) DO UPDATE SET doc = excluded.doc, "
            "updated_at = excluded.updated_at",
            (kind, scope, name, doc, now),
        )

    def get_document(self, kind: str, scope: str, name: str) -> str | None:
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
        rows = self._all(
            "SELECT name, doc FROM documents WHERE kind = ? AND scope = ? AND name > ? "
            "AND substr(name, 1, ?) = ? ORDER BY name LIMIT ?",
            (kind, scope, after or "", len(prefix), prefix, limit),
        )
        return [(str(r["name"]), str(r["doc"])) for r in rows]

    def delete_document(self, kind: str, scope: str, name: str) -> bool:
        cursor = self._exec(
            "DELETE FROM documents WHERE kind = ? AND scope = ? AND name = ?", (kind, scope, name)
        )
        return cursor.rowcount > 0

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
