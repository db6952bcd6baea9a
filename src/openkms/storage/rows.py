"""Row → record mapping shared by the SQL backends (sqlite3.Row and psycopg's dict rows both
index by column name)."""

from __future__ import annotations

from typing import Any, Protocol

import orjson

from openkms.storage.records import AccessKeyRecord, AliasRecord, MaterialRecord


class NamedRow(Protocol):
    def __getitem__(self, name: str) -> Any: ...


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
