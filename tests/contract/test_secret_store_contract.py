"""The SecretStore contract (openkms.storage.secrets) on every backend: memory, SQLite and
PostgreSQL (a throwaway cluster; skipped only when PostgreSQL is not installed)."""

from __future__ import annotations

import dataclasses

import pytest

from openkms.storage.base import Storage, StorageConflict
from openkms.storage.secrets import SecretRecord, SecretVersionRecord
from tests.contract.test_storage_contract import ACCOUNT, REGION, storage

__all__ = ["storage"]


def make_secret(name: str, **changes: object) -> SecretRecord:
    secret = SecretRecord(
        arn=f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}-AbCdEf",
        account_id=ACCOUNT,
        region=REGION,
        name=name,
        created_at=10.0,
        last_changed_at=10.0,
    )
    return dataclasses.replace(secret, **changes)  # type: ignore[arg-type]


def make_version(secret: SecretRecord, version_id: str, at: float) -> SecretVersionRecord:
    return SecretVersionRecord(
        secret_arn=secret.arn,
        version_id=version_id,
        created_at=at,
        ciphertext=b"\x01sealed-" + version_id.encode(),
        kms_key_arn="arn:aws:kms:us-east-1:111122223333:key/k",
    )


def test_secret_round_trip_and_update(storage: Storage) -> None:
    secret = make_secret(
        "db/password",
        description="d",
        stages={"AWSCURRENT": "v1"},
        tags=(("team", "a"), ("env", "b")),
        rotation_rules={"AutomaticallyAfterDays": 30},
        replicas=({"Region": "eu-west-1", "Status": "InSync"},),
        extra={"x": 1},
    )
    storage.insert_secret(secret)
    assert storage.get_secret(secret.arn) == secret
    assert storage.find_secret(ACCOUNT, REGION, "db/password") == secret
    assert storage.find_secret(ACCOUNT, "eu-west-1", "db/password") is None
    changed = dataclasses.replace(secret, deleted_at=99.0, resource_policy="{}")
    storage.update_secret(changed)
    assert storage.get_secret(secret.arn) == changed


def test_names_are_unique_in_an_account_and_region(storage: Storage) -> None:
    storage.insert_secret(make_secret("a"))
    with pytest.raises(StorageConflict):
        storage.insert_secret(dataclasses.replace(make_secret("a"), arn=make_secret("a").arn + "x"))
    storage.insert_secret(make_secret("a", account_id="444455556666", arn="arn:other"))


def test_list_and_due_for_deletion(storage: Storage) -> None:
    storage.insert_secret(make_secret("b", deleted_at=50.0))
    storage.insert_secret(make_secret("a"))
    storage.insert_secret(make_secret("c", deleted_at=150.0))
    assert [s.name for s in storage.list_secrets(ACCOUNT, REGION)] == ["a", "b", "c"]
    assert storage.secrets_due_for_deletion(100.0) == [make_secret("b").arn]


def test_versions(storage: Storage) -> None:
    secret = make_secret("s")
    storage.insert_secret(secret)
    v2 = make_version(secret, "v2", 20.0)
    v1 = make_version(secret, "v1", 10.0)
    storage.insert_secret_version(v2)
    storage.insert_secret_version(v1)
    with pytest.raises(StorageConflict):
        storage.insert_secret_version(v1)
    assert storage.get_secret_version(secret.arn, "v1") == v1
    assert [v.version_id for v in storage.list_secret_versions(secret.arn)] == ["v1", "v2"]
    touched = dataclasses.replace(v1, last_accessed_at=30.0, ciphertext=b"ignored")
    storage.update_secret_version(touched)
    assert storage.get_secret_version(secret.arn, "v1") == dataclasses.replace(
        v1, last_accessed_at=30.0
    )
    storage.delete_secret_versions(secret.arn, ["v2"])
    assert storage.get_secret_version(secret.arn, "v2") is None
    storage.delete_secret(secret.arn)
    assert storage.get_secret(secret.arn) is None
    assert storage.list_secret_versions(secret.arn) == []


def test_a_failed_transaction_writes_nothing(storage: Storage) -> None:
    secret = make_secret("t")
    with pytest.raises(RuntimeError), storage.transaction():
        storage.insert_secret(secret)
        storage.insert_secret_version(make_version(secret, "v1", 1.0))
        raise RuntimeError("abort")
    assert storage.get_secret(secret.arn) is None
    assert storage.get_secret_version(secret.arn, "v1") is None


def test_reset_removes_secrets(storage: Storage) -> None:
    secret = make_secret("r")
    storage.insert_secret(secret)
    storage.insert_secret_version(make_version(secret, "v1", 1.0))
    storage.reset_kms_data()
    assert storage.get_secret(secret.arn) is None
