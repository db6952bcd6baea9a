"""The shape of audit records: CloudTrail's record contents for KMS calls."""

from __future__ import annotations

import re
import uuid
from typing import Any

import orjson
import pytest

from openkms.audit.chain import parse_line, seal, seal_parts
from openkms.audit.events import (
    CRYPTOGRAPHIC_OPERATIONS,
    FIELD_LIMITS,
    build_record,
    event_id,
    event_time,
    is_read_only,
    record_parts,
    user_identity,
)
from openkms.service.context import Principal, RequestContext

ACCOUNT = "111122223333"
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
KEY_ARN = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{KEY_ID}"
WHEN = 1_715_000_000.75  # 2024-05-06T12:53:20.75Z

ALICE = Principal(
    account_id=ACCOUNT,
    arn=f"arn:aws:iam::{ACCOUNT}:user/Alice",
    kind="user",
    access_key_id="AKIAALICEEXAMPLE",
    user_id="AIDAALICEEXAMPLE",
)
ROOT = Principal(
    account_id=ACCOUNT,
    arn=f"arn:aws:iam::{ACCOUNT}:root",
    kind="root",
    access_key_id="AKIAROOTEXAMPLE",
    user_id=ACCOUNT,
)
ROLE = Principal(
    account_id=ACCOUNT,
    arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/Deployer/build-42",
    kind="assumed-role",
    access_key_id="ASIAROLEEXAMPLE",
    user_id="AROADEPLOYEREXAMPLE:build-42",
)

CLOUDTRAIL_MEMBERS = [
    "eventVersion",
    "userIdentity",
    "eventTime",
    "eventSource",
    "eventName",
    "awsRegion",
    "sourceIPAddress",
    "userAgent",
    "requestParameters",
    "responseElements",
    "requestID",
    "eventID",
    "readOnly",
    "resources",
    "eventType",
    "managementEvent",
    "recipientAccountId",
    "eventCategory",
]


def ctx_for(principal: Principal) -> RequestContext:
    return RequestContext(principal=principal, region="us-east-1", request_id="req-1", now=WHEN)


def call_args(**overrides: Any) -> dict[str, Any]:
    """The arguments of build_record (and record_parts) for an Encrypt by Alice."""
    args: dict[str, Any] = {
        "ctx": ctx_for(ALICE),
        "operation": "Encrypt",
        "request_params": {
            "KeyId": KEY_ARN,
            "Plaintext": b"attack at dawn",
            "EncryptionContext": {"Department": "Engineering"},
            "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
        },
        "response": {
            "CiphertextBlob": b"\x01" * 110,
            "KeyId": KEY_ARN,
            "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
        },
        "error_code": None,
        "error_message": None,
        "request_id": "f3423043-63bc-11e4-bc2b-4198b6150d5c",
        "event_time": WHEN,
        "region": "us-east-1",
        "source_ip": "192.0.2.0",
        "user_agent": "aws-cli/2.15.0",
        "read_only": True,
        "resources": [KEY_ARN],
        "account_id": ACCOUNT,
    }
    args.update(overrides)
    return args


def record(**overrides: Any) -> dict[str, Any]:
    return build_record(**call_args(**overrides))


def test_encrypt_success_matches_cloudtrail() -> None:
    rec = record()
    assert list(rec) == CLOUDTRAIL_MEMBERS
    assert rec["eventVersion"] == "1.08"
    assert rec["eventTime"] == "2024-05-06T12:53:20Z"
    assert rec["eventSource"] == "kms.amazonaws.com"
    assert rec["eventName"] == "Encrypt"
    assert rec["awsRegion"] == "us-east-1"
    assert rec["sourceIPAddress"] == "192.0.2.0"
    assert rec["userAgent"] == "aws-cli/2.15.0"
    assert rec["requestParameters"] == {
        "keyId": KEY_ARN,
        "encryptionContext": {"Department": "Engineering"},
        "encryptionAlgorithm": "SYMMETRIC_DEFAULT",
    }
    assert rec["responseElements"] is None
    assert rec["requestID"] == "f3423043-63bc-11e4-bc2b-4198b6150d5c"
    assert uuid.UUID(rec["eventID"]).version == 4
    assert rec["readOnly"] is True
    assert rec["resources"] == [{"accountId": ACCOUNT, "type": "AWS::KMS::Key", "ARN": KEY_ARN}]
    assert rec["eventType"] == "AwsApiCall"
    assert rec["managementEvent"] is True
    assert rec["recipientAccountId"] == ACCOUNT
    assert rec["eventCategory"] == "Management"
    assert "errorCode" not in rec and "errorMessage" not in rec
    orjson.dumps(rec)  # JSON-ready as it is


def test_failure_has_error_members_and_no_response() -> None:
    rec = record(
        operation="Decrypt",
        request_params={"CiphertextBlob": b"\x02" * 120, "EncryptionContext": {"a": "b"}},
        response=None,
        error_code="InvalidCiphertextException",
        error_message="",
        resources=[],
    )
    assert rec["errorCode"] == "InvalidCiphertextException"
    assert rec["errorMessage"] == ""
    # CloudTrail's order: the error right after userAgent.
    members = list(rec)
    assert members.index("errorCode") == members.index("userAgent") + 1
    assert rec["requestParameters"] == {"encryptionContext": {"a": "b"}}
    assert rec["responseElements"] is None
    assert "resources" not in rec


def test_failure_of_a_mutating_call_logs_no_response() -> None:
    rec = record(
        operation="ScheduleKeyDeletion",
        request_params={"KeyId": KEY_ID, "PendingWindowInDays": 7},
        response={"KeyId": KEY_ARN},
        error_code="KMSInvalidStateException",
        error_message="is pending deletion",
        read_only=False,
    )
    assert rec["responseElements"] is None
    assert rec["errorMessage"] == "is pending deletion"


def test_unauthenticated_caller_is_unknown() -> None:
    rec = record(
        ctx=None,
        operation="ListKeys",
        request_params={},
        response=None,
        error_code="UnrecognizedClientException",
        error_message="The security token included in the request is invalid.",
        read_only=True,
        resources=[],
        access_key_id="AKIANOBODY",
    )
    assert rec["userIdentity"] == {
        "type": "Unknown",
        "principalId": "",
        "arn": "",
        "accountId": "",
        "accessKeyId": "AKIANOBODY",
    }
    assert rec["requestParameters"] is None


def test_identity_types() -> None:
    assert user_identity(ROOT) == {
        "type": "Root",
        "principalId": ACCOUNT,
        "arn": f"arn:aws:iam::{ACCOUNT}:root",
        "accountId": ACCOUNT,
        "accessKeyId": "AKIAROOTEXAMPLE",
    }
    alice = user_identity(ALICE)
    assert alice["type"] == "IAMUser"
    assert alice["userName"] == "Alice"
    assert alice["principalId"] == "AIDAALICEEXAMPLE"
    role = user_identity(ROLE)
    assert role["type"] == "AssumedRole"
    assert role["principalId"] == "AROADEPLOYEREXAMPLE:build-42"
    assert role["arn"] == ROLE.arn
    assert role["sessionContext"]["sessionIssuer"] == {
        "type": "Role",
        "principalId": "AROADEPLOYEREXAMPLE",
        "arn": f"arn:aws:iam::{ACCOUNT}:role/Deployer",
        "accountId": ACCOUNT,
        "userName": "Deployer",
    }
    assert role["sessionContext"]["attributes"]["mfaAuthenticated"] == "false"
    # Cached per principal, and stable.
    assert user_identity(ALICE) is alice


def test_create_key_logs_key_metadata() -> None:
    rec = record(
        operation="CreateKey",
        request_params={
            "Description": "",
            "KeySpec": "SYMMETRIC_DEFAULT",
            "KeyUsage": "ENCRYPT_DECRYPT",
            "Tags": [{"TagKey": "team", "TagValue": "payments"}],
            "BypassPolicyLockoutSafetyCheck": False,
        },
        response={
            "KeyMetadata": {
                "AWSAccountId": ACCOUNT,
                "KeyId": KEY_ID,
                "Arn": KEY_ARN,
                "CreationDate": 1_660_171_107.0,
                "Enabled": True,
                "KeyState": "Enabled",
                "EncryptionAlgorithms": ["SYMMETRIC_DEFAULT"],
                "MultiRegion": False,
            }
        },
        read_only=False,
    )
    assert rec["readOnly"] is False
    assert rec["requestParameters"] == {
        "description": "",
        "keySpec": "SYMMETRIC_DEFAULT",
        "keyUsage": "ENCRYPT_DECRYPT",
        "tags": [{"tagKey": "team", "tagValue": "payments"}],
        "bypassPolicyLockoutSafetyCheck": False,
    }
    assert rec["responseElements"] == {
        "keyMetadata": {
            "AWSAccountId": ACCOUNT,
            "keyId": KEY_ID,
            "arn": KEY_ARN,
            "creationDate": "Aug 10, 2022, 10:38:27 PM",
            "enabled": True,
            "keyState": "Enabled",
            "encryptionAlgorithms": ["SYMMETRIC_DEFAULT"],
            "multiRegion": False,
        }
    }


def test_schedule_key_deletion_response() -> None:
    rec = record(
        operation="ScheduleKeyDeletion",
        request_params={"KeyId": KEY_ID, "PendingWindowInDays": 30},
        response={
            "KeyId": KEY_ARN,
            "DeletionDate": 1_417_564_800.0,
            "KeyState": "PendingDeletion",
            "PendingWindowInDays": 30,
        },
        read_only=False,
    )
    assert rec["responseElements"] == {
        "keyId": KEY_ARN,
        "deletionDate": "Dec 3, 2014, 12:00:00 AM",
        "keyState": "PendingDeletion",
        "pendingWindowInDays": 30,
    }


def test_generate_data_key_and_random() -> None:
    rec = record(
        operation="GenerateDataKey",
        request_params={"KeyId": KEY_ID, "KeySpec": "AES_256", "EncryptionContext": {"P": "A"}},
        response={"Plaintext": b"k" * 32, "CiphertextBlob": b"c" * 150, "KeyId": KEY_ARN},
    )
    assert rec["requestParameters"] == {
        "keyId": KEY_ID,
        "keySpec": "AES_256",
        "encryptionContext": {"P": "A"},
    }
    assert rec["responseElements"] is None
    rnd = record(
        operation="GenerateRandom",
        request_params={"NumberOfBytes": 32},
        response={"Plaintext": b"r" * 32},
        resources=[],
    )
    assert rnd["requestParameters"] == {"numberOfBytes": 32}
    assert rnd["responseElements"] is None


def test_crypto_operations_never_log_a_response_even_if_read_only_is_false() -> None:
    for operation in CRYPTOGRAPHIC_OPERATIONS:
        rec = record(operation=operation, response={"KeyId": KEY_ARN}, read_only=False)
        assert rec["responseElements"] is None, operation


def test_resources_dedupe_and_alias_type() -> None:
    alias_arn = f"arn:aws:kms:us-east-1:{ACCOUNT}:alias/payments"
    other = "arn:aws:kms:us-east-1:444455556666:key/0000aaaa-0000-0000-0000-000000000000"
    rec = record(operation="CreateAlias", read_only=False, resources=[alias_arn, KEY_ARN,
                                                                      KEY_ARN, other])  # fmt: skip
    assert rec["resources"] == [
        {"accountId": ACCOUNT, "type": "AWS::KMS::Alias", "ARN": alias_arn},
        {"accountId": ACCOUNT, "type": "AWS::KMS::Key", "ARN": KEY_ARN},
        {"accountId": "444455556666", "type": "AWS::KMS::Key", "ARN": other},
    ]


def test_additional_event_data() -> None:
    rec = record(additional_event_data={"keyMaterialId": "ab" * 32})
    assert rec["additionalEventData"] == {"keyMaterialId": "ab" * 32}


def test_read_only_follows_cloudtrail() -> None:
    for op in ("Encrypt", "Decrypt", "GenerateDataKey", "Sign", "DescribeKey", "ListKeys"):
        assert is_read_only(op), op
    for op in ("CreateKey", "ScheduleKeyDeletion", "PutKeyPolicy", "TagResource"):
        assert not is_read_only(op), op


def test_event_time_and_id() -> None:
    assert event_time(0) == "1970-01-01T00:00:00Z"
    assert event_time(1_700_000_000.999) == "2023-11-14T22:13:20Z"
    assert event_time(1_700_000_000.0) == "2023-11-14T22:13:20Z"
    ids = {event_id() for _ in range(2000)}
    assert len(ids) == 2000
    for value in list(ids)[:200]:
        parsed = uuid.UUID(value)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
                            value)  # fmt: skip


def test_event_ids_are_unique_across_threads_and_forks() -> None:
    import threading

    from openkms.audit import events

    seen: list[list[str]] = [[] for _ in range(4)]

    def take(out: list[str]) -> None:
        out.extend(event_id() for _ in range(3000))

    threads = [threading.Thread(target=take, args=(out,)) for out in seen]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [value for out in seen for value in out]
    assert len(set(every)) == len(every) == 12_000
    # What a forked worker runs (os.register_at_fork): the parent's unused ids are dropped.
    events._ids.extend(events._batch())
    events._after_fork()
    assert not events._ids
    assert uuid.UUID(event_id()).version == 4


def test_secrets_manager_current_time_is_utc_to_the_second() -> None:
    # aws:CurrentTime of a Secrets Manager request: the eventTime text, formatted once a second.
    import datetime

    from openkms.secretsmanager.resource_access import _context
    from openkms.service.authorization import Identity

    for now in (WHEN, 0.0, 1_700_000_000.999, 1_700_000_001.0):
        ctx = RequestContext(principal=ALICE, region="us-east-1", request_id="r", now=now)
        moment = datetime.datetime.fromtimestamp(int(now), datetime.UTC)
        expected = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert _context(ctx, Identity((), (), {}), {})["aws:currenttime"] == (expected,)


# --- the request path's serialized form: record_parts + chain.seal_parts ----------------------
def _both(**overrides: Any) -> tuple[bytes, bytes, dict[str, Any]]:
    """(prefix, rest) from record_parts and the dict build_record gives for the same call
    (with the event id record_parts drew, the one member two calls cannot share)."""
    args = call_args(
        request_params={
            "KeyId": KEY_ARN,
            "Plaintext": b"attack at dawn",
            "EncryptionContext": {"Department": "Engineering", "é": "ü\u2028"},
        },
        response={"CiphertextBlob": b"\x01" * 110, "KeyId": KEY_ARN},
    )
    args.update(overrides)
    prefix, rest = record_parts(**args)
    rec = build_record(**args)
    rec["eventID"] = orjson.loads(prefix + rest)["eventID"]
    return prefix, rest, rec


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"ctx": ctx_for(ROOT)},
        {"ctx": ctx_for(ROLE), "region": "eu-west-1"},
        {
            "operation": "Decrypt",
            "response": None,
            "error_code": "InvalidCiphertextException",
            "error_message": "x" * 2000,
            "resources": [],
        },
        {
            "operation": "CreateKey",
            "read_only": False,
            "request_params": {"Description": "d", "Tags": [{"TagKey": "k", "TagValue": "v"}]},
            "response": {"KeyMetadata": {"KeyId": KEY_ID, "Arn": KEY_ARN, "Enabled": True}},
        },
        {"resources": [KEY_ARN, f"arn:aws:kms:us-east-1:{ACCOUNT}:alias/a", KEY_ARN]},
        {"additional_event_data": {"keyMaterialId": "ab" * 32}},
        {"user_agent": "u" * 3000, "source_ip": ""},
        {"request_params": None},
        # The usual record's fixed layout (one key, no error): a read-only management call, a
        # request id JSON must escape, an alias, a key of another account, readOnly false.
        {"operation": "DescribeKey", "request_params": {"KeyId": "alias/a"}, "response": None},
        {"request_id": 'quote " back \\ \u2028'},
        {"resources": [f"arn:aws:kms:us-east-1:{ACCOUNT}:alias/a"]},
        {"resources": ["arn:aws:kms:us-east-1:444455556666:key/k"]},
        {"operation": "GenerateRandom", "read_only": False, "resources": [KEY_ARN]},
    ],
)
def test_record_parts_serialize_exactly_what_build_record_builds(overrides: dict[str, Any]) -> None:
    prefix, rest, rec = _both(**overrides)
    assert prefix + rest == orjson.dumps(rec)
    assert prefix.startswith(b"{") and rest.startswith(b',"') and rest.endswith(b"}")


def test_record_parts_reuse_one_prefix_per_caller_and_second() -> None:
    first, _, _ = _both()
    again, _, _ = _both(request_id="another")
    assert again is first  # one object: chain.seal_parts finds its hash state by identity
    later, _, _ = _both(event_time=WHEN + 1)
    other, _, _ = _both(ctx=ctx_for(ROOT))
    assert later != first and other != first


def test_seal_parts_gives_the_line_and_hash_seal_gives() -> None:
    prev = "ab" * 32
    for overrides in ({}, {"error_code": "AccessDeniedException", "error_message": "no"}):
        prefix, rest, rec = _both(**overrides)
        for seq in (0, 7, 10**6):
            assert seal_parts(prefix, rest, seq, prev) == seal(rec, seq, prev)
            line, digest = seal_parts(prefix, rest, seq, prev)
            entry = parse_line(line)
            assert entry.computed == entry.hash == digest and entry.seq == seq


def test_record_parts_keep_no_caller_string_longer_than_the_record_does() -> None:
    from openkms.audit import events

    events._PREFIXES.clear()
    _both(user_agent="u" * 15_000)
    limit = FIELD_LIMITS["userAgent"] + 40  # the bound and its "...[truncated N chars]"
    assert events._PREFIXES
    assert all(len(part) <= limit for key in events._PREFIXES for part in key)
