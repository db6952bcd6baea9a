"""The key search index (migration 0008) of every backend: filters, text, windows, and that every
write path keeps it (insert, update, alias and tag writes, deletion); an old SQLite database is
backfilled when it migrates."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson

from openkms.storage.base import Storage
from openkms.storage.records import AliasRecord, KeyQuery
from openkms.storage.sqlite import SqliteStorage
from tests.contract.test_storage_contract import ACCOUNT, REGION, make_key, storage

__all__ = ["storage"]


def ids(storage: Storage, query: KeyQuery, after: str | None = None,
        upto: str | None = None, limit: int = 100) -> list[str]:  # fmt: skip
    return [k.key_id for k in storage.search_keys(ACCOUNT, REGION, query, after, upto, limit)]


def populate(storage: Storage) -> None:
    storage.insert_key(make_key("k1", description="Payroll DB"))
    storage.insert_key(make_key("k2", state="Disabled", description="logs"))
    storage.insert_key(make_key("k3", key_spec="RSA_2048", key_usage="SIGN_VERIFY",
                                origin="EXTERNAL", description="100% _done_"))  # fmt: skip
    storage.insert_key(make_key("k4", multi_region=True, description=""))
    storage.insert_alias(AliasRecord(ACCOUNT, REGION, "alias/Billing-App", "k4", 1.0, 1.0))
    storage.put_tags(make_key("k2").arn, {"Team": "Needle-Ops"})
    # Another account's key never shows.
    storage.insert_key(make_key("k1").with_changes(
        arn=f"arn:aws:kms:{REGION}:999988887777:key/k9", key_id="k9", account_id="999988887777"
    ))  # fmt: skip


def test_filters(storage: Storage) -> None:
    populate(storage)
    assert ids(storage, KeyQuery()) == ["k1", "k2", "k3", "k4"]
    assert ids(storage, KeyQuery(key_state="Disabled")) == ["k2"]
    assert ids(storage, KeyQuery(key_spec="RSA_2048", key_usage="SIGN_VERIFY")) == ["k3"]
    assert ids(storage, KeyQuery(origin="EXTERNAL")) == ["k3"]
    assert ids(storage, KeyQuery(multi_region=True)) == ["k4"]
    assert ids(storage, KeyQuery(multi_region=False)) == ["k1", "k2", "k3"]
    assert ids(storage, KeyQuery(key_state="PendingDeletion")) == []
    storage.update_key(make_key("k1", description="Payroll DB", rotation_enabled=True,
                                next_rotation_at=500.0))  # fmt: skip
    assert ids(storage, KeyQuery(rotation_due_before=600.0)) == ["k1"]
    assert ids(storage, KeyQuery(rotation_due_before=400.0)) == []


def test_text_matches_id_description_alias_and_tag(storage: Storage) -> None:
    populate(storage)
    assert ids(storage, KeyQuery(text="payroll")) == ["k1"]
    assert ids(storage, KeyQuery(text="billing-app")) == ["k4"]
    assert ids(storage, KeyQuery(text="needle")) == ["k2"]
    assert ids(storage, KeyQuery(text="team")) == ["k2"]
    assert ids(storage, KeyQuery(text="k3")) == ["k3"]
    assert ids(storage, KeyQuery(text="nothing")) == []


def test_wildcards_mean_themselves(storage: Storage) -> None:
    populate(storage)
    assert ids(storage, KeyQuery(text="%")) == ["k3"]
    assert ids(storage, KeyQuery(text="_done_")) == ["k3"]
    assert ids(storage, KeyQuery(text="_")) == ["k3"]
    assert ids(storage, KeyQuery(text="p%l")) == []
    assert ids(storage, KeyQuery(text="' or 1=1 --")) == []


def test_window_and_limit(storage: Storage) -> None:
    populate(storage)
    assert ids(storage, KeyQuery(), after="k1", upto="k3") == ["k2", "k3"]
    assert ids(storage, KeyQuery(), limit=2) == ["k1", "k2"]
    assert storage.key_id_after(ACCOUNT, REGION, None, 1) == "k1"
    assert storage.key_id_after(ACCOUNT, REGION, "k1", 2) == "k3"
    assert storage.key_id_after(ACCOUNT, REGION, "k2", 3) is None


def test_every_write_path_keeps_the_index(storage: Storage) -> None:
    populate(storage)
    storage.update_key(make_key("k1", state="PendingDeletion", description="retired"))
    assert ids(storage, KeyQuery(key_state="PendingDeletion")) == ["k1"]
    assert ids(storage, KeyQuery(text="payroll")) == []
    assert ids(storage, KeyQuery(text="retired")) == ["k1"]
    storage.delete_tags(make_key("k2").arn, ["Team"])
    assert ids(storage, KeyQuery(text="needle")) == []
    storage.update_alias(AliasRecord(ACCOUNT, REGION, "alias/Billing-App", "k1", 1.0, 2.0))
    assert ids(storage, KeyQuery(text="billing")) == ["k1"]
    storage.delete_alias(ACCOUNT, REGION, "alias/Billing-App")
    assert ids(storage, KeyQuery(text="billing")) == []
    storage.delete_key(make_key("k3").arn)
    assert ids(storage, KeyQuery(origin="EXTERNAL")) == []


def test_sqlite_backfills_an_old_database(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = SqliteStorage(path)
    db.insert_key(make_key("k1", state="Disabled", description="Old Payroll"))
    db.close()
    # Back to the schema before migration 0008: the key's search columns empty.
    conn = sqlite3.connect(path)
    conn.execute("DROP INDEX kms_keys_search")
    for column in ("key_spec", "key_usage", "origin", "multi_region", "description"):
        conn.execute(f"ALTER TABLE kms_keys DROP COLUMN {column}")
    conn.execute("DELETE FROM schema_migrations WHERE version = 8")
    conn.commit()
    doc = orjson.loads(conn.execute("SELECT doc FROM kms_keys").fetchone()[0])
    assert doc["description"] == "Old Payroll"
    conn.close()
    db = SqliteStorage(path)
    assert ids(db, KeyQuery(text="payroll", key_state="Disabled")) == ["k1"]
    assert ids(db, KeyQuery(key_spec="SYMMETRIC_DEFAULT", multi_region=False)) == ["k1"]
    db.close()


def test_scopes_with_documents(storage: Storage) -> None:
    storage.put_document("kms-grant", "arn:k1", "g1", "{}", 1.0)
    storage.put_document("kms-grant", "arn:k1", "g2", "{}", 1.0)
    storage.put_document("kms-grant-name", "arn:k2", "n", "{}", 1.0)
    scopes = [f"arn:k{i}" for i in range(1200)]  # more than one query's worth
    assert storage.scopes_with_documents("kms-grant", scopes) == {"arn:k1"}
    assert storage.scopes_with_documents("kms-grant", []) == set()
