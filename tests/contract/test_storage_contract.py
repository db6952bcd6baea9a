"""One contract, every storage backend: the in-memory fake, SQLite and PostgreSQL (a throwaway
cluster the tests start; skipped only when PostgreSQL is not installed)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from openkms.domain.key import KeyRecord
from openkms.storage.base import Storage, StorageConflict
from openkms.storage.memory import MemoryStorage
from openkms.storage.records import (
    AccessKeyRecord,
    AccountRecord,
    AliasRecord,
    KeyUsage,
    MaterialRecord,
)
from openkms.storage.sqlite import SqliteStorage

ACCOUNT = "111122223333"
REGION = "us-east-1"


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    backend: Storage
    if request.param == "memory":
        backend = MemoryStorage()
    elif request.param == "postgres":
        # A fresh database in this process's throwaway cluster (tests/contract/conftest.py).
        from openkms.storage.postgres import PostgresStorage

        backend = PostgresStorage(request.getfixturevalue("postgres_url"))
    else:
        backend = SqliteStorage(tmp_path / "contract.db")
    backend.put_account(AccountRecord(ACCOUNT, 1.0))
    yield backend
    backend.close()


def make_key(key_id: str, **changes: object) -> KeyRecord:
    key = KeyRecord(
        arn=f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{key_id}",
        key_id=key_id,
        account_id=ACCOUNT,
        region=REGION,
        key_spec="SYMMETRIC_DEFAULT",
        key_usage="ENCRYPT_DECRYPT",
        origin="AWS_KMS",
        key_manager="CUSTOMER",
        description="d",
        state="Enabled",
        created_at=10.0,
        policy="{}",
        current_material_id="aa" * 32,
    )
    return key.with_changes(**changes)


def material(key: KeyRecord, mid: str, at: float = 10.0) -> MaterialRecord:
    return MaterialRecord(key.arn, mid, b"wrapped-" + mid.encode(), at, "CURRENT")


def test_key_round_trip_and_update(storage: Storage) -> None:
    key = make_key("k1", extra={"x": 1})
    storage.insert_key(key)
    assert storage.get_key(key.arn) == key
    changed = key.with_changes(state="Disabled", description="new")
    storage.update_key(changed)
    assert storage.get_key(key.arn) == changed
    assert storage.get_key(key.arn + "x") is None


def test_duplicate_key_conflicts(storage: Storage) -> None:
    storage.insert_key(make_key("k1"))
    with pytest.raises(StorageConflict):
        storage.insert_key(make_key("k1"))


def test_list_keys_pages_in_key_id_order(storage: Storage) -> None:
    for i in range(5):
        storage.insert_key(make_key(f"k{i}"))
    storage.insert_key(make_key("other", region="eu-west-1", arn="arn:aws:kms:eu-west-1:x"))
    first = storage.list_keys(ACCOUNT, REGION, None, 3)
    assert [k.key_id for k in first] == ["k0", "k1", "k2"]
    rest = storage.list_keys(ACCOUNT, REGION, "k2", 10)
    assert [k.key_id for k in rest] == ["k3", "k4"]


def test_transaction_rolls_back_every_write(storage: Storage) -> None:
    key = make_key("k1")
    with pytest.raises(RuntimeError), storage.transaction():
        storage.insert_key(key)
        storage.put_material(material(key, "m1"))
        storage.put_tags(key.arn, {"a": "b"})
        raise RuntimeError("boom")
    assert storage.get_key(key.arn) is None
    assert storage.get_material(key.arn, "m1") is None
    assert storage.get_tags(key.arn) == {}


def test_nested_transactions_commit_once(storage: Storage) -> None:
    key = make_key("k1")
    with storage.transaction():
        storage.insert_key(key)
        with storage.transaction():
            storage.put_material(material(key, "m1"))
    assert storage.get_material(key.arn, "m1") is not None


def test_materials_keep_every_version(storage: Storage) -> None:
    key = make_key("k1")
    storage.insert_key(key)
    storage.put_material(material(key, "m1", 1.0))
    storage.put_material(material(key, "m2", 2.0))
    old = storage.get_material(key.arn, "m1")
    assert old is not None
    storage.put_material(MaterialRecord(key.arn, "m1", old.wrapped, old.created_at, "NON_CURRENT"))
    found = storage.list_materials(key.arn)
    assert [(m.material_id, m.state) for m in found] == [("m1", "NON_CURRENT"), ("m2", "CURRENT")]


def test_aliases_unique_per_account_and_region(storage: Storage) -> None:
    a = AliasRecord(ACCOUNT, REGION, "alias/x", "k1", 1.0, 1.0)
    storage.insert_alias(a)
    with pytest.raises(StorageConflict):
        storage.insert_alias(a)
    storage.insert_alias(AliasRecord(ACCOUNT, "eu-west-1", "alias/x", "k9", 1.0, 1.0))
    storage.update_alias(AliasRecord(ACCOUNT, REGION, "alias/x", "k2", 1.0, 2.0))
    got = storage.get_alias(ACCOUNT, REGION, "alias/x")
    assert got is not None and got.key_id == "k2" and got.updated_at == 2.0
    storage.insert_alias(AliasRecord(ACCOUNT, REGION, "alias/y", "k2", 1.0, 1.0))
    storage.insert_alias(AliasRecord(ACCOUNT, REGION, "alias/z", "k3", 1.0, 1.0))
    names = [a.alias_name for a in storage.list_aliases(ACCOUNT, REGION, "k2", None, 10)]
    assert names == ["alias/x", "alias/y"]
    page = storage.list_aliases(ACCOUNT, REGION, None, "alias/x", 1)
    assert [a.alias_name for a in page] == ["alias/y"]
    storage.delete_alias(ACCOUNT, REGION, "alias/x")
    assert storage.get_alias(ACCOUNT, REGION, "alias/x") is None


def test_tags(storage: Storage) -> None:
    key = make_key("k1")
    storage.insert_key(key)
    storage.put_tags(key.arn, {"b": "2", "a": "1"})
    storage.put_tags(key.arn, {"a": "3"})
    assert storage.get_tags(key.arn) == {"a": "3", "b": "2"}
    storage.delete_tags(key.arn, ["a", "missing"])
    assert storage.get_tags(key.arn) == {"b": "2"}


def test_delete_key_removes_material_aliases_and_tags(storage: Storage) -> None:
    key = make_key("k1")
    other = make_key("k2")
    storage.insert_key(key)
    storage.insert_key(other)
    storage.put_material(material(key, "m1"))
    storage.put_tags(key.arn, {"a": "1"})
    storage.insert_alias(AliasRecord(ACCOUNT, REGION, "alias/k1", "k1", 1.0, 1.0))
    storage.insert_alias(AliasRecord(ACCOUNT, REGION, "alias/k2", "k2", 1.0, 1.0))
    storage.delete_key(key.arn)
    assert storage.get_key(key.arn) is None
    assert storage.list_materials(key.arn) == []
    assert storage.get_tags(key.arn) == {}
    assert storage.get_alias(ACCOUNT, REGION, "alias/k1") is None
    assert storage.get_alias(ACCOUNT, REGION, "alias/k2") is not None


def test_due_deletions_and_rotations(storage: Storage) -> None:
    storage.insert_key(make_key("k1", state="PendingDeletion", deletion_at=100.0))
    storage.insert_key(make_key("k2", state="Enabled"))
    storage.insert_key(make_key("k3", rotation_enabled=True, next_rotation_at=50.0))
    assert storage.keys_due_for_deletion(99.0) == []
    assert [a.rsplit("/", 1)[1] for a in storage.keys_due_for_deletion(100.0)] == ["k1"]
    assert storage.keys_due_for_rotation(49.0) == []
    assert [a.rsplit("/", 1)[1] for a in storage.keys_due_for_rotation(50.0)] == ["k3"]
    k3 = storage.get_key(make_key("k3").arn)
    assert k3 is not None
    storage.update_key(k3.with_changes(rotation_enabled=False, next_rotation_at=None))
    assert storage.keys_due_for_rotation(1e12) == []


def test_key_usage_keeps_the_latest(storage: Storage) -> None:
    key = make_key("k1")
    storage.insert_key(key)
    storage.record_key_usage([KeyUsage(key.arn, 5.0, "Encrypt", "r1")])
    storage.record_key_usage([KeyUsage(key.arn, 4.0, "Decrypt", "r0")])
    got = storage.get_key(key.arn)
    assert got is not None
    assert (got.last_used_at, got.last_used_operation, got.last_used_request_id) == (
        5.0,
        "Encrypt",
        "r1",
    )


def test_accounts_and_access_keys(storage: Storage) -> None:
    with pytest.raises(StorageConflict):
        storage.put_account(AccountRecord(ACCOUNT, 2.0))
    assert [a.account_id for a in storage.list_accounts()] == [ACCOUNT]
    rec = AccessKeyRecord("AKIA1", ACCOUNT, f"arn:aws:iam::{ACCOUNT}:root", b"w", "Active", 1.0)
    storage.put_access_key(rec)
    assert storage.get_access_key("AKIA1") == rec
    storage.put_access_key(
        AccessKeyRecord("AKIA1", ACCOUNT, rec.principal_arn, b"w", "Inactive", 1.0)
    )
    got = storage.get_access_key("AKIA1")
    assert got is not None and got.status == "Inactive"
    assert [k.access_key_id for k in storage.list_access_keys(ACCOUNT)] == ["AKIA1"]
    assert "w'" not in repr(got) and "wrapped" not in repr(got)
    storage.delete_access_key("AKIA1")
    assert storage.get_access_key("AKIA1") is None


def test_documents(storage: Storage) -> None:
    storage.put_document("user", ACCOUNT, "bob", '{"a":1}', 1.0, create_only=True)
    with pytest.raises(StorageConflict):
        storage.put_document("user", ACCOUNT, "bob", "{}", 1.0, create_only=True)
    storage.put_document("user", ACCOUNT, "bob", '{"a":2}', 2.0)
    storage.put_document("user", ACCOUNT, "bobby", "{}", 2.0)
    storage.put_document("user", ACCOUNT, "carol", "{}", 2.0)
    storage.put_document("user", "999999999999", "bob", "{}", 2.0)
    assert storage.get_document("user", ACCOUNT, "bob") == '{"a":2}'
    assert [n for n, _ in storage.list_documents("user", ACCOUNT, prefix="bob")] == ["bob", "bobby"]
    assert [n for n, _ in storage.list_documents("user", ACCOUNT, after="bob", limit=1)] == [
        "bobby"
    ]
    assert storage.delete_document("user", ACCOUNT, "bob") is True
    assert storage.delete_document("user", ACCOUNT, "bob") is False
    storage.put_document("group", "888888888888", "g", "{}", 2.0)
    assert storage.list_document_scopes("user") == [ACCOUNT, "999999999999"]
    assert storage.list_document_scopes("group") == ["888888888888"]
    assert storage.list_document_scopes("role") == []


def test_reset_keeps_accounts(storage: Storage) -> None:
    key = make_key("k1")
    storage.insert_key(key)
    storage.put_material(material(key, "m1"))
    storage.reset_kms_data()
    assert storage.get_key(key.arn) is None
    assert storage.get_account(ACCOUNT) is not None


def test_meta(storage: Storage) -> None:
    assert storage.get_meta("x") is None
    storage.set_meta("x", "1")
    storage.set_meta("x", "2")
    assert storage.get_meta("x") == "2"


def test_sqlite_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "reopen.db"
    first = SqliteStorage(path)
    first.put_account(AccountRecord(ACCOUNT, 1.0))
    first.insert_key(make_key("k1"))
    first.close()
    second = SqliteStorage(path)
    assert second.get_key(make_key("k1").arn) is not None
    second.close()
