"""The key record and the request context are compiled by mypyc (mypyc-modules.txt): what the
rest of the code does with them as dataclasses still works, copies included (the in-memory
storage deep-copies its records to roll a transaction back)."""

from __future__ import annotations

import copy
import dataclasses

import pytest

from openkms.context import Principal, RequestContext
from openkms.domain.key import KeyRecord, require_usable_for_crypto
from openkms.errors import DisabledException, KMSInvalidStateException
from openkms.storage.memory import MemoryStorage


def _record(**changes: object) -> KeyRecord:
    fields = {
        "arn": "arn:aws:kms:us-east-1:111122223333:key/k",
        "key_id": "k",
        "account_id": "111122223333",
        "region": "us-east-1",
        "key_spec": "SYMMETRIC_DEFAULT",
        "key_usage": "ENCRYPT_DECRYPT",
        "origin": "AWS_KMS",
        "key_manager": "CUSTOMER",
        "description": "",
        "state": "Enabled",
        "created_at": 1.0,
        "policy": "{}",
        "extra": {"nested": {"a": [1, 2]}},
        "policy_principals": {"arn:aws:iam::111122223333:user/u": "AIDAEXAMPLE"},
    }
    fields.update(changes)
    return KeyRecord(**fields)  # type: ignore[arg-type]


def test_key_record_deepcopy_is_equal_and_shares_no_dictionary() -> None:
    record = _record()
    copied = copy.deepcopy(record)
    assert copied == record
    assert copied.extra is not record.extra
    assert copied.extra["nested"] is not record.extra["nested"]
    assert copied.policy_principals is not record.policy_principals


def test_key_record_stays_frozen_and_replace_and_doc_round_trip() -> None:
    record = _record()
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.state = "Disabled"  # type: ignore[misc]
    disabled = record.with_changes(state="Disabled")
    assert (disabled.state, record.state) == ("Disabled", "Enabled")
    assert KeyRecord.from_doc(record.to_doc()) == record


def test_key_state_checks_raise_the_key_state_table_errors() -> None:
    require_usable_for_crypto(_record())
    with pytest.raises(DisabledException, match="is disabled"):
        require_usable_for_crypto(_record(state="Disabled"))
    with pytest.raises(KMSInvalidStateException, match="is pending deletion"):
        require_usable_for_crypto(_record(state="PendingDeletion"))


def test_memory_storage_rolls_a_failed_transaction_back() -> None:
    storage = MemoryStorage()
    record = _record()
    storage.insert_key(record)
    with pytest.raises(RuntimeError), storage.transaction():
        storage.update_key(record.with_changes(state="Disabled"))
        record.extra["nested"]["a"].append(3)  # a change in place, inside a record
        raise RuntimeError("abort")
    stored = storage.get_key(record.arn)
    assert stored is not None and stored.state == "Enabled"
    assert stored.extra == {"nested": {"a": [1, 2]}}


def test_principal_copies_are_itself_and_context_replace_works() -> None:
    principal = Principal("111122223333", "arn:aws:iam::111122223333:root", "root", "AK", "1")
    assert copy.copy(principal) is principal
    assert copy.deepcopy(principal) is principal
    ctx = RequestContext(principal, "us-east-1", "request", 1.0, "Encrypt")
    moved = dataclasses.replace(ctx, region="eu-west-1", resolved={}, resources=[])
    assert (moved.region, moved.principal, moved.operation) == ("eu-west-1", principal, "Encrypt")
    assert ctx.region == "us-east-1"


def test_request_context_defaults_are_fresh_per_context() -> None:
    principal = Principal("111122223333", "arn:aws:iam::111122223333:root", "root", "AK", "1")
    first = RequestContext(principal, "us-east-1", "a", 1.0)
    second = RequestContext(principal, "us-east-1", "b", 1.0)
    first.resolved["k"] = 1
    first.resources.append("arn")
    assert (second.resolved, second.resources) == ({}, [])
    assert (first.operation, first.source_ip, first.secure_transport) == ("", "", False)
    assert first.request_alias is None and first.via_service is None
    assert [f.name for f in dataclasses.fields(RequestContext)][:4] == [
        "principal", "region", "request_id", "now",
    ]  # fmt: skip
