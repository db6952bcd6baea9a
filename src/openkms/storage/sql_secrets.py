"""``SecretStore`` over SQL (``storage.secrets``), mixed into ``sql.SqlRepository`` so that it
shares its connections, transactions, dialects and locking rules; the tables are migration
0006_secrets.sql."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

import orjson

from openkms.storage.base import StorageConflict
from openkms.storage.secrets import SecretRecord, SecretVersionRecord


class _Sql(Protocol):
    """What the mixin uses of ``SqlRepository``."""

    def transaction(self) -> AbstractContextManager[None]: ...

    def _all(self, sql: str, params: Sequence[Any] = (), *, lock: bool = False) -> list[Any]: ...

    def _one(self, sql: str, params: Sequence[Any] = (), *, lock: bool = False) -> Any: ...

    def _exec(self, sql: str, params: Sequence[Any] = ()) -> int: ...

    def _write(self, sql: str, params: Sequence[Any] = ()) -> int: ...

    def _insert_unique(self, sql: str, params: Sequence[Any], what: str) -> None: ...


def _version(row: Any) -> SecretVersionRecord:
    doc = orjson.loads(row["doc"])
    return SecretVersionRecord(
        secret_arn=str(row["secret_arn"]),
        version_id=str(row["version_id"]),
        created_at=float(row["created_at"]),
        ciphertext=bytes(row["ciphertext"]),
        kms_key_arn=str(doc.get("kms_key_arn", "")),
        last_accessed_at=doc.get("last_accessed_at"),
        extra=doc.get("extra") or {},
    )


class SqlSecretStore:
    def insert_secret(self: _Sql, secret: SecretRecord) -> None:
        with self.transaction():
            if self._one(
                "SELECT arn FROM secrets WHERE account_id = ? AND region = ? AND name = ?",
                (secret.account_id, secret.region, secret.name),
            ):
                raise StorageConflict("secret exists")
            self._insert_unique(
                "INSERT INTO secrets(arn, account_id, region, name, deleted_at, doc) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (
                    secret.arn,
                    secret.account_id,
                    secret.region,
                    secret.name,
                    secret.deleted_at,
                    secret.to_doc().decode(),
                ),
                "secret",
            )

    def update_secret(self: _Sql, secret: SecretRecord) -> None:
        self._write(
            "UPDATE secrets SET name = ?, deleted_at = ?, doc = ? WHERE arn = ?",
            (secret.name, secret.deleted_at, secret.to_doc().decode(), secret.arn),
        )

    def get_secret(self: _Sql, arn: str, *, lock: bool = False) -> SecretRecord | None:
        row = self._one("SELECT doc FROM secrets WHERE arn = ?", (arn,), lock=lock)
        return None if row is None else SecretRecord.from_doc(row["doc"])

    def find_secret(
        self: _Sql, account_id: str, region: str, name: str, *, lock: bool = False
    ) -> SecretRecord | None:
        row = self._one(
            "SELECT doc FROM secrets WHERE account_id = ? AND region = ? AND name = ?",
            (account_id, region, name),
            lock=lock,
        )
        return None if row is None else SecretRecord.from_doc(row["doc"])

    def list_secrets(self: _Sql, account_id: str, region: str) -> list[SecretRecord]:
        rows = self._all(
            "SELECT doc FROM secrets WHERE account_id = ? AND region = ? ORDER BY arn",
            (account_id, region),
        )
        return [SecretRecord.from_doc(r["doc"]) for r in rows]

    def delete_secret(self: _Sql, arn: str) -> None:
        with self.transaction():
            self._exec("DELETE FROM secret_versions WHERE secret_arn = ?", (arn,))
            self._exec("DELETE FROM secrets WHERE arn = ?", (arn,))

    def secrets_due_for_deletion(self: _Sql, now: float) -> list[str]:
        rows = self._all(
            "SELECT arn FROM secrets WHERE deleted_at IS NOT NULL AND deleted_at <= ? ORDER BY arn",
            (now,),
        )
        return [str(r["arn"]) for r in rows]

    def insert_secret_version(self: _Sql, version: SecretVersionRecord) -> None:
        self._insert_unique(
            "INSERT INTO secret_versions(secret_arn, version_id, created_at, ciphertext, doc) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (
                version.secret_arn,
                version.version_id,
                version.created_at,
                version.ciphertext,
                version.doc().decode(),
            ),
            "secret version",
        )

    def update_secret_version(self: _Sql, version: SecretVersionRecord) -> None:
        self._write(
            "UPDATE secret_versions SET doc = ? WHERE secret_arn = ? AND version_id = ?",
            (version.doc().decode(), version.secret_arn, version.version_id),
        )

    def get_secret_version(
        self: _Sql, secret_arn: str, version_id: str
    ) -> SecretVersionRecord | None:
        row = self._one(
            "SELECT * FROM secret_versions WHERE secret_arn = ? AND version_id = ?",
            (secret_arn, version_id),
        )
        return None if row is None else _version(row)

    def list_secret_versions(self: _Sql, secret_arn: str) -> list[SecretVersionRecord]:
        rows = self._all(
            "SELECT * FROM secret_versions WHERE secret_arn = ? ORDER BY created_at, version_id",
            (secret_arn,),
        )
        return [_version(r) for r in rows]

    def delete_secret_versions(self: _Sql, secret_arn: str, version_ids: Sequence[str]) -> None:
        with self.transaction():
            for version_id in version_ids:
                self._exec(
                    "DELETE FROM secret_versions WHERE secret_arn = ? AND version_id = ?",
                    (secret_arn, version_id),
                )
