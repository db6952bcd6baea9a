"""Key management through boto3: CreateKey, DescribeKey, ListKeys, UpdateKeyDescription,
EnableKey/DisableKey, ScheduleKeyDeletion/CancelKeyDeletion, and isolation between accounts."""

from __future__ import annotations

import datetime
import re
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from tests.conformance import expect_error, unique_alias

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
DAY = datetime.timedelta(days=1)


def default_policy(account_id: str) -> str:
    """AWS's default key policy, byte for byte as GetKeyPolicy returns it."""
    return (
        "{\n"
        '  "Version" : "2012-10-17",\n'
        '  "Id" : "key-default-1",\n'
        '  "Statement" : [ {\n'
        '    "Sid" : "Enable IAM User Permissions",\n'
        '    "Effect" : "Allow",\n'
        '    "Principal" : {\n'
        f'      "AWS" : "arn:aws:iam::{account_id}:root"\n'
        "    },\n"
        '    "Action" : "kms:*",\n'
        '    "Resource" : "*"\n'
        "  } ]\n"
        "}"
    )


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def pending_message(arn: str) -> str:
    return f"{arn} is pending deletion."


@pytest.fixture
def key(kms) -> dict:
    return dict(kms.create_key(Description="conformance")["KeyMetadata"])


# --- CreateKey -----------------------------------------------------------------------------------
def test_create_key_metadata(kms, server) -> None:
    before = now()
    meta = kms.create_key(Description="my key")["KeyMetadata"]
    after = now()
    for member in (
        "Arn",
        "AWSAccountId",
        "CreationDate",
        "Enabled",
        "KeyState",
        "KeyManager",
        "KeySpec",
        "CustomerMasterKeySpec",
        "EncryptionAlgorithms",
        "KeyUsage",
        "Origin",
        "MultiRegion",
        "CurrentKeyMaterialId",
        "KeyId",
        "Description",
    ):
        assert member in meta, member
    assert UUID_RE.match(meta["KeyId"])
    assert meta["Arn"] == server.key_arn(meta["KeyId"])
    assert meta["AWSAccountId"] == server.account_id
    assert before - datetime.timedelta(seconds=2) <= meta["CreationDate"] <= after + DAY / 86400
    assert meta["Enabled"] is True
    assert meta["KeyState"] == "Enabled"
    assert meta["KeyManager"] == "CUSTOMER"
    assert meta["KeySpec"] == "SYMMETRIC_DEFAULT"
    assert meta["CustomerMasterKeySpec"] == "SYMMETRIC_DEFAULT"
    assert meta["EncryptionAlgorithms"] == ["SYMMETRIC_DEFAULT"]
    assert meta["KeyUsage"] == "ENCRYPT_DECRYPT"
    assert meta["Origin"] == "AWS_KMS"
    assert meta["MultiRegion"] is False
    assert re.fullmatch(r"[0-9a-f]{64}", meta["CurrentKeyMaterialId"])
    assert meta["Description"] == "my key"
    for absent in ("DeletionDate", "PendingDeletionWindowInDays", "ValidTo", "SigningAlgorithms"):
        assert absent not in meta, absent


def test_create_key_ids_are_unique(kms) -> None:
    ids = {kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(3)}
    assert len(ids) == 3


def test_create_key_without_description_has_empty_description(kms) -> None:
    meta = kms.create_key()["KeyMetadata"]
    assert meta.get("Description", "") == ""


def test_create_key_with_tags(kms) -> None:
    tags = [{"TagKey": "team", "TagValue": "crypto"}, {"TagKey": "env", "TagValue": ""}]
    key_id = kms.create_key(Tags=tags)["KeyMetadata"]["KeyId"]
    got = kms.list_resource_tags(KeyId=key_id)["Tags"]
    assert sorted(got, key=lambda t: t["TagKey"]) == sorted(tags, key=lambda t: t["TagKey"])


def test_create_key_with_reserved_tag_creates_nothing(kms) -> None:
    before = {
        k["KeyId"] for k in kms.get_paginator("list_keys").paginate().build_full_result()["Keys"]
    }
    expect_error("TagException", kms.create_key, Tags=[{"TagKey": "aws:reserved", "TagValue": "x"}])
    after = {
        k["KeyId"] for k in kms.get_paginator("list_keys").paginate().build_full_result()["Keys"]
    }
    assert after == before


def test_default_key_policy(kms, server, key) -> None:
    resp = kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")
    assert resp["Policy"] == default_policy(server.account_id)
    # PolicyName is optional in the current API.
    assert kms.get_key_policy(KeyId=key["KeyId"])["Policy"] == default_policy(server.account_id)
    assert kms.list_key_policies(KeyId=key["KeyId"])["PolicyNames"] == ["default"]


# --- DescribeKey ----------------------------------------------------------------------------------
def test_describe_key_by_every_kind_of_reference(kms, server, key) -> None:
    alias = unique_alias("describe")
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    for ref in (key["KeyId"], key["Arn"], alias, server.alias_arn(alias)):
        meta = kms.describe_key(KeyId=ref)["KeyMetadata"]
        assert meta["KeyId"] == key["KeyId"], ref
        assert meta["Arn"] == key["Arn"], ref


def test_describe_key_matches_create_key(kms, key) -> None:
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"] == key


def test_describe_nonexistent_key(kms, server) -> None:
    missing = str(uuid.uuid4())
    expect_error(
        "NotFoundException",
        kms.describe_key,
        KeyId=missing,
        message=f"Key '{server.key_arn(missing)}' does not exist",
    )
    expect_error("NotFoundException", kms.describe_key, KeyId=server.key_arn(missing))


@pytest.mark.parametrize(
    "ref", ["not-a-key-id", "1234", "alias/does-not-exist-anywhere", "arn:aws:kms:us-east-1:1:x"]
)
def test_describe_malformed_or_unknown_reference(kms, ref: str) -> None:
    expect_error("NotFoundException", kms.describe_key, KeyId=ref)


def test_describe_unknown_alias_message(kms, server) -> None:
    expect_error(
        "NotFoundException",
        kms.describe_key,
        KeyId="alias/no-such-alias-here",
        message=f"Alias {server.alias_arn('alias/no-such-alias-here')} is not found.",
    )


# --- ListKeys -------------------------------------------------------------------------------------
def test_list_keys_pagination(kms, server) -> None:
    created = {kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(7)}
    seen: list[str] = []
    pages = 0
    marker = None
    while True:
        kwargs = {"Limit": 3}
        if marker:
            kwargs["Marker"] = marker
        resp = kms.list_keys(**kwargs)
        pages += 1
        assert len(resp["Keys"]) <= 3
        for entry in resp["Keys"]:
            assert entry["KeyArn"] == server.key_arn(entry["KeyId"])
        seen.extend(k["KeyId"] for k in resp["Keys"])
        if not resp["Truncated"]:
            assert "NextMarker" not in resp
            break
        assert len(resp["Keys"]) == 3
        marker = resp["NextMarker"]
    assert len(seen) == len(set(seen)), "a key appeared on two pages"
    assert created <= set(seen)
    assert pages >= 3


def test_list_keys_paginator(kms) -> None:
    created = {kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(7)}
    pages = list(kms.get_paginator("list_keys").paginate(PaginationConfig={"PageSize": 3}))
    ids = [k["KeyId"] for page in pages for k in page["Keys"]]
    assert len(ids) == len(set(ids))
    assert created <= set(ids)
    assert all(len(page["Keys"]) <= 3 for page in pages)
    assert len(pages) >= 3


def test_list_keys_garbage_marker(kms) -> None:
    expect_error("InvalidMarkerException", kms.list_keys, Marker="garbage!!")


@pytest.mark.parametrize("marker", ["@@@", "Zm9v", "AAAA", "not-a-marker"])
@pytest.mark.parametrize("operation", ["list_keys", "list_aliases", "list_resource_tags"])
def test_marker_never_issued(kms, key, operation: str, marker: str) -> None:
    """A Marker this server did not issue is refused, not read as a position."""
    kwargs = {"KeyId": key["KeyId"]} if operation == "list_resource_tags" else {}
    expect_error("InvalidMarkerException", getattr(kms, operation), Marker=marker, **kwargs)


def test_list_keys_shows_only_this_region(kms, server) -> None:
    west = server.client(region="us-west-2")
    west_key = west.create_key()["KeyMetadata"]["KeyId"]
    east_ids = {
        k["KeyId"] for k in kms.get_paginator("list_keys").paginate().build_full_result()["Keys"]
    }
    assert west_key not in east_ids
    west_ids = {
        k["KeyId"] for k in west.get_paginator("list_keys").paginate().build_full_result()["Keys"]
    }
    assert west_key in west_ids


# --- UpdateKeyDescription -------------------------------------------------------------------------
def test_update_key_description(kms, key) -> None:
    assert kms.update_key_description(KeyId=key["KeyId"], Description="new words")
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["Description"] == "new words"
    kms.update_key_description(KeyId=key["Arn"], Description="")
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["Description"] == ""


def test_update_description_of_missing_key(kms) -> None:
    expect_error(
        "NotFoundException", kms.update_key_description, KeyId=str(uuid.uuid4()), Description="x"
    )


# --- EnableKey / DisableKey -----------------------------------------------------------------------
def test_disable_and_enable(kms, key) -> None:
    kms.disable_key(KeyId=key["KeyId"])
    meta = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
    assert (meta["KeyState"], meta["Enabled"]) == ("Disabled", False)
    expect_error(
        "DisabledException",
        kms.encrypt,
        KeyId=key["KeyId"],
        Plaintext=b"x",
        message=f"{key['Arn']} is disabled.",
    )
    expect_error("DisabledException", kms.generate_data_key, KeyId=key["KeyId"], KeySpec="AES_256")
    kms.disable_key(KeyId=key["KeyId"])  # idempotent
    kms.enable_key(KeyId=key["KeyId"])
    meta = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
    assert (meta["KeyState"], meta["Enabled"]) == ("Enabled", True)
    kms.enable_key(KeyId=key["KeyId"])  # idempotent
    assert kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]


def test_decrypt_under_a_disabled_key(kms, key) -> None:
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    kms.disable_key(KeyId=key["KeyId"])
    expect_error("DisabledException", kms.decrypt, CiphertextBlob=blob)
    kms.enable_key(KeyId=key["KeyId"])
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"


def test_enable_missing_key(kms) -> None:
    expect_error("NotFoundException", kms.enable_key, KeyId=str(uuid.uuid4()))
    expect_error("NotFoundException", kms.disable_key, KeyId=str(uuid.uuid4()))


# --- ScheduleKeyDeletion / CancelKeyDeletion ------------------------------------------------------
def test_schedule_deletion_default_thirty_days(kms, key) -> None:
    before = now()
    resp = kms.schedule_key_deletion(KeyId=key["KeyId"])
    assert resp["KeyId"] == key["Arn"]
    assert resp["KeyState"] == "PendingDeletion"
    assert resp["PendingWindowInDays"] == 30
    assert abs(resp["DeletionDate"] - (before + 30 * DAY)) < datetime.timedelta(minutes=1)
    meta = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
    assert meta["KeyState"] == "PendingDeletion"
    assert meta["Enabled"] is False
    assert meta["PendingDeletionWindowInDays"] == 30
    assert meta["DeletionDate"] == resp["DeletionDate"]


def test_schedule_deletion_seven_days(kms, key) -> None:
    before = now()
    resp = kms.schedule_key_deletion(KeyId=key["Arn"], PendingWindowInDays=7)
    assert resp["PendingWindowInDays"] == 7
    assert abs(resp["DeletionDate"] - (before + 7 * DAY)) < datetime.timedelta(minutes=1)
    meta = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
    assert meta["PendingDeletionWindowInDays"] == 7
    assert meta["KeyState"] == "PendingDeletion"


def test_crypto_on_pending_deletion_key(kms, key) -> None:
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"before")["CiphertextBlob"]
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    message = pending_message(key["Arn"])
    expect_error(
        "KMSInvalidStateException", kms.encrypt, KeyId=key["KeyId"], Plaintext=b"x", message=message
    )
    expect_error("KMSInvalidStateException", kms.decrypt, CiphertextBlob=blob, message=message)
    expect_error(
        "KMSInvalidStateException", kms.generate_data_key, KeyId=key["KeyId"], KeySpec="AES_256"
    )


def test_schedule_deletion_twice(kms, key) -> None:
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    expect_error(
        "KMSInvalidStateException",
        kms.schedule_key_deletion,
        KeyId=key["KeyId"],
        message=pending_message(key["Arn"]),
    )
    # The first schedule stands.
    meta = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
    assert meta["PendingDeletionWindowInDays"] == 7


def test_cancel_deletion_leaves_the_key_disabled(kms, key) -> None:
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    resp = kms.cancel_key_deletion(KeyId=key["KeyId"])
    assert resp["KeyId"] == key["Arn"]
    meta = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
    assert meta["KeyState"] == "Disabled"
    assert meta["Enabled"] is False
    assert "DeletionDate" not in meta
    assert "PendingDeletionWindowInDays" not in meta
    kms.enable_key(KeyId=key["KeyId"])
    assert kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]


def test_cancel_deletion_of_enabled_key(kms, key) -> None:
    expect_error(
        "KMSInvalidStateException",
        kms.cancel_key_deletion,
        KeyId=key["KeyId"],
        message=f"{key['Arn']} is not pending deletion.",
    )


def test_cancel_deletion_of_disabled_key(kms, key) -> None:
    kms.disable_key(KeyId=key["KeyId"])
    expect_error("KMSInvalidStateException", kms.cancel_key_deletion, KeyId=key["KeyId"])


def test_enable_disable_on_pending_deletion(kms, key) -> None:
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    message = pending_message(key["Arn"])
    expect_error("KMSInvalidStateException", kms.enable_key, KeyId=key["KeyId"], message=message)
    expect_error("KMSInvalidStateException", kms.disable_key, KeyId=key["KeyId"], message=message)
    expect_error(
        "KMSInvalidStateException",
        kms.update_key_description,
        KeyId=key["KeyId"],
        Description="x",
        message=message,
    )
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "PendingDeletion"


def test_schedule_deletion_of_disabled_key(kms, key) -> None:
    kms.disable_key(KeyId=key["KeyId"])
    resp = kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    assert resp["KeyState"] == "PendingDeletion"


def test_schedule_deletion_by_alias_is_refused(kms, key) -> None:
    """ScheduleKeyDeletion takes a key id or key ARN only."""
    alias = unique_alias("sched")
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    with pytest.raises(ClientError) as caught:
        kms.schedule_key_deletion(KeyId=alias, PendingWindowInDays=7)
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"


def test_describe_still_works_on_pending_deletion(kms, key) -> None:
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    assert kms.get_key_policy(KeyId=key["KeyId"])["Policy"]
    assert kms.list_resource_tags(KeyId=key["KeyId"])["Tags"] == []
    ids = {
        k["KeyId"] for k in kms.get_paginator("list_keys").paginate().build_full_result()["Keys"]
    }
    assert key["KeyId"] in ids


# --- isolation between accounts -------------------------------------------------------------------
def test_second_account_cannot_see_key_by_id(kms_second, second_account, key) -> None:
    # A bare key id resolves in the caller's own account, where it does not exist.
    expect_error(
        "NotFoundException",
        kms_second.describe_key,
        KeyId=key["KeyId"],
        message=f"Key '{second_account.key_arn(key['KeyId'])}' does not exist",
    )
    expect_error("NotFoundException", kms_second.encrypt, KeyId=key["KeyId"], Plaintext=b"x")


def test_second_account_is_denied_by_key_arn(kms_second, key) -> None:
    expect_error("AccessDeniedException", kms_second.describe_key, KeyId=key["Arn"])
    expect_error("AccessDeniedException", kms_second.encrypt, KeyId=key["Arn"], Plaintext=b"x")
    expect_error(
        "AccessDeniedException", kms_second.generate_data_key, KeyId=key["Arn"], KeySpec="AES_256"
    )
    # No cross-account use: the key does not exist for another account, whatever its policy.
    expect_error("NotFoundException", kms_second.disable_key, KeyId=key["Arn"])
    expect_error("NotFoundException", kms_second.schedule_key_deletion, KeyId=key["Arn"])


def test_second_account_cannot_decrypt(kms, kms_second, key) -> None:
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"secret")["CiphertextBlob"]
    expect_error("AccessDeniedException", kms_second.decrypt, CiphertextBlob=blob)


def test_second_account_lists_only_its_keys(kms, kms_second, key) -> None:
    mine = kms_second.create_key()["KeyMetadata"]
    listed = kms_second.get_paginator("list_keys").paginate().build_full_result()["Keys"]
    ids = {k["KeyId"] for k in listed}
    assert mine["KeyId"] in ids
    assert key["KeyId"] not in ids
    first_ids = {
        k["KeyId"] for k in kms.get_paginator("list_keys").paginate().build_full_result()["Keys"]
    }
    assert mine["KeyId"] not in first_ids


def test_second_account_default_policy_names_its_account(kms_second, second_account) -> None:
    key_id = kms_second.create_key()["KeyMetadata"]["KeyId"]
    assert kms_second.get_key_policy(KeyId=key_id)["Policy"] == default_policy(
        second_account.account_id
    )


def test_new_account_is_recognized_within_a_second(server) -> None:
    from tests.conftest import create_account, wait_until_recognized

    started = time.monotonic()
    third = server.as_account(create_account(server.data_dir))
    created = time.monotonic()
    took = wait_until_recognized(third, timeout=5.0)
    assert took <= 2.0, f"account recognized only after {took:.2f}s ({created - started:.2f}s)"
