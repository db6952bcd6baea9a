"""Secrets Manager's operations on the in-memory fakes with a fixed clock: the scheduled
deletion run by the scheduler, version pruning after 24 hours, and what the stored version
holds (never the value; bound to its secret and version)."""

from __future__ import annotations

import dataclasses

import pytest

from openkms.scheduler import run_once
from openkms.secretsmanager import reading, secrets, versions
from openkms.secretsmanager.deps import SecretsDeps
from openkms.secretsmanager.errors import DecryptionFailure, InvalidRequestException
from tests.unit.service_helpers import Harness

DAY = 86_400.0


@pytest.fixture
def harness() -> Harness:
    return Harness()


def _deps(h: Harness) -> SecretsDeps:
    return SecretsDeps(storage=h.storage, runtime=h.rt, clock=h.clock)


def _call(h: Harness, handler: object, req: dict[str, object], op: str) -> dict[str, object]:
    return handler(_deps(h), h.ctx(op), req)  # type: ignore[operator, no-any-return]


def test_scheduled_deletion_is_run_by_the_scheduler(harness: Harness) -> None:
    h = harness
    arn = _call(h, secrets.create_secret, {"Name": "doomed", "SecretString": "v"}, "CreateSecret")[
        "ARN"
    ]
    _call(h, secrets.create_secret, {"Name": "kept", "SecretString": "v"}, "CreateSecret")
    deleted = _call(
        h, secrets.delete_secret, {"SecretId": "doomed", "RecoveryWindowInDays": 7}, "DeleteSecret"
    )
    assert deleted["DeletionDate"] == h.clock.now() + 7 * DAY
    _call(h, secrets.delete_secret, {"SecretId": "kept", "RecoveryWindowInDays": 7}, "DeleteSecret")
    _call(h, secrets.restore_secret, {"SecretId": "kept"}, "RestoreSecret")
    h.clock.advance(7 * DAY - 1)
    assert run_once(h.rt, h.clock.now()).secrets_deleted == []
    h.clock.advance(2)
    assert run_once(h.rt, h.clock.now()).secrets_deleted == [arn]
    assert h.storage.get_secret(arn) is None
    assert h.storage.list_secret_versions(arn) == []
    assert [s.name for s in h.storage.list_secrets("111122223333", "us-east-1")] == ["kept"]


def test_unlabelled_versions_are_pruned_after_a_day(harness: Harness) -> None:
    h = harness
    arn = _call(h, secrets.create_secret, {"Name": "busy", "SecretString": "0"}, "CreateSecret")[
        "ARN"
    ]
    first = h.storage.list_secret_versions(str(arn))[0].version_id
    for i in range(1, 100):
        h.clock.advance(1)
        _call(h, versions.put_secret_value, {"SecretId": "busy", "SecretString": str(i)}, "Put")
    h.clock.advance(DAY + 1)
    _call(h, versions.put_secret_value, {"SecretId": "busy", "SecretString": "100"}, "Put")
    left = [v.version_id for v in h.storage.list_secret_versions(str(arn))]
    assert len(left) == 100 and first not in left


def test_stored_version_holds_no_value_and_cannot_move(harness: Harness) -> None:
    h = harness
    value = "plain-value-" + "z" * 20
    a = _call(h, secrets.create_secret, {"Name": "a", "SecretString": value}, "CreateSecret")
    b = _call(h, secrets.create_secret, {"Name": "b", "SecretString": "other"}, "CreateSecret")
    stored_a = h.storage.get_secret_version(str(a["ARN"]), str(a["VersionId"]))
    assert stored_a is not None and value.encode() not in stored_a.ciphertext
    # a's version copied into b under b's version id: the encryption context no longer matches.
    stored_b = h.storage.get_secret_version(str(b["ARN"]), str(b["VersionId"]))
    assert stored_b is not None
    h.storage.delete_secret_versions(stored_b.secret_arn, [stored_b.version_id])
    h.storage.insert_secret_version(
        dataclasses.replace(
            stored_a, secret_arn=stored_b.secret_arn, version_id=stored_b.version_id
        )
    )
    with pytest.raises(DecryptionFailure):
        _call(h, reading.get_secret_value, {"SecretId": "b"}, "GetSecretValue")


def test_deleted_secret_refuses_writes(harness: Harness) -> None:
    h = harness
    _call(h, secrets.create_secret, {"Name": "gone", "SecretString": "v"}, "CreateSecret")
    _call(h, secrets.delete_secret, {"SecretId": "gone"}, "DeleteSecret")
    with pytest.raises(InvalidRequestException):
        _call(h, versions.put_secret_value, {"SecretId": "gone", "SecretString": "w"}, "Put")
