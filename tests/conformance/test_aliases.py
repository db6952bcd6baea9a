"""Aliases through boto3: CreateAlias, UpdateAlias, DeleteAlias, ListAliases."""

from __future__ import annotations

import uuid

import pytest
from botocore.exceptions import ClientError

from tests.conformance import expect_error, unique_alias

ALIAS_PREFIX_MESSAGE = (
    'Alias must start with the prefix "alias/". Please see '
    "https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html"
)


@pytest.fixture
def key(kms) -> dict:
    return dict(kms.create_key()["KeyMetadata"])


@pytest.fixture
def other_key(kms) -> dict:
    return dict(kms.create_key()["KeyMetadata"])


def all_aliases(client, **kwargs) -> list[dict]:
    return list(
        client.get_paginator("list_aliases").paginate(**kwargs).build_full_result()["Aliases"]
    )


def test_create_and_list(kms, server, key) -> None:
    name = unique_alias()
    assert kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    entries = [a for a in all_aliases(kms) if a["AliasName"] == name]
    assert len(entries) == 1
    entry = entries[0]
    assert entry["AliasArn"] == server.alias_arn(name)
    assert entry["TargetKeyId"] == key["KeyId"]
    assert entry["CreationDate"] <= entry["LastUpdatedDate"]


def test_create_alias_by_key_arn(kms, key) -> None:
    name = unique_alias()
    kms.create_alias(AliasName=name, TargetKeyId=key["Arn"])
    assert kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == key["KeyId"]


def test_list_aliases_by_key_id(kms, key, other_key) -> None:
    names = sorted(unique_alias("mine") for _ in range(3))
    for name in names:
        kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    kms.create_alias(AliasName=unique_alias("other"), TargetKeyId=other_key["KeyId"])
    for ref in (key["KeyId"], key["Arn"]):
        got = kms.list_aliases(KeyId=ref)
        assert sorted(a["AliasName"] for a in got["Aliases"]) == names
        assert all(a["TargetKeyId"] == key["KeyId"] for a in got["Aliases"])
        assert got["Truncated"] is False


def test_list_aliases_of_key_without_aliases(kms, key) -> None:
    got = kms.list_aliases(KeyId=key["KeyId"])
    assert got["Aliases"] == []
    assert got["Truncated"] is False


def test_list_aliases_of_missing_key(kms) -> None:
    expect_error("NotFoundException", kms.list_aliases, KeyId=str(uuid.uuid4()))


def test_list_aliases_pagination(kms, key) -> None:
    names = {unique_alias("page") for _ in range(5)}
    for name in names:
        kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    seen: list[str] = []
    marker = None
    pages = 0
    while True:
        kwargs: dict = {"KeyId": key["KeyId"], "Limit": 2}
        if marker:
            kwargs["Marker"] = marker
        resp = kms.list_aliases(**kwargs)
        pages += 1
        assert len(resp["Aliases"]) <= 2
        seen.extend(a["AliasName"] for a in resp["Aliases"])
        if not resp["Truncated"]:
            break
        marker = resp["NextMarker"]
    assert pages == 3
    assert sorted(seen) == sorted(names)
    # And the paginator over every alias of the account.
    paged = list(kms.get_paginator("list_aliases").paginate(PaginationConfig={"PageSize": 2}))
    everything = [a["AliasName"] for p in paged for a in p["Aliases"]]
    assert len(everything) == len(set(everything))
    assert names <= set(everything)


def test_list_aliases_garbage_marker(kms) -> None:
    expect_error("InvalidMarkerException", kms.list_aliases, Marker="garbage!!")


def test_duplicate_alias(kms, server, key, other_key) -> None:
    name = unique_alias()
    kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    expect_error(
        "AlreadyExistsException",
        kms.create_alias,
        AliasName=name,
        TargetKeyId=other_key["KeyId"],
        message=f"An alias with the name {server.alias_arn(name)} already exists",
    )
    assert kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == key["KeyId"]


def test_reserved_aws_prefix_is_refused(kms, key) -> None:
    name = f"alias/aws/{uuid.uuid4().hex[:8]}"
    with pytest.raises(ClientError) as caught:
        kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    response = caught.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # Implementations of AWS's behaviour differ on the code; AWS refuses it as a client fault.
    assert response["Error"]["Code"] in {
        "AccessDeniedException",
        "NotAuthorizedException",
        "InvalidAliasNameException",
        "ValidationException",
    }
    assert name not in {a["AliasName"] for a in all_aliases(kms)}


def test_name_without_alias_prefix(kms_unvalidated, key) -> None:
    expect_error(
        "ValidationException",
        kms_unvalidated.create_alias,
        AliasName="no-prefix",
        TargetKeyId=key["KeyId"],
        message=ALIAS_PREFIX_MESSAGE,
    )


def test_alias_pointing_to_alias(kms, server, key) -> None:
    first = unique_alias()
    kms.create_alias(AliasName=first, TargetKeyId=key["KeyId"])
    for target in (first, server.alias_arn(first)):
        expect_error(
            "ValidationException",
            kms.create_alias,
            AliasName=unique_alias(),
            TargetKeyId=target,
            message="Aliases must refer to keys. Not aliases",
        )


def test_update_alias_to_an_alias(kms, key, other_key) -> None:
    name, target = unique_alias(), unique_alias()
    kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    kms.create_alias(AliasName=target, TargetKeyId=other_key["KeyId"])
    expect_error(
        "ValidationException",
        kms.update_alias,
        AliasName=name,
        TargetKeyId=target,
        message="Aliases must refer to keys. Not aliases",
    )
    assert kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == key["KeyId"]


def test_fifty_aliases_per_key(kms, key) -> None:
    prefix = unique_alias("many")
    for i in range(50):
        kms.create_alias(AliasName=f"{prefix}-{i:02}", TargetKeyId=key["KeyId"])
    expect_error(
        "LimitExceededException",
        kms.create_alias,
        AliasName=f"{prefix}-50",
        TargetKeyId=key["KeyId"],
    )
    listed = kms.get_paginator("list_aliases").paginate(KeyId=key["KeyId"]).build_full_result()
    assert len(listed["Aliases"]) == 50


def test_create_alias_to_missing_key(kms, server) -> None:
    missing = str(uuid.uuid4())
    expect_error(
        "NotFoundException",
        kms.create_alias,
        AliasName=unique_alias(),
        TargetKeyId=missing,
        message=f"Key '{server.key_arn(missing)}' does not exist",
    )


def test_create_alias_to_pending_deletion_key(kms, key) -> None:
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    expect_error(
        "KMSInvalidStateException",
        kms.create_alias,
        AliasName=unique_alias(),
        TargetKeyId=key["KeyId"],
        message=f"{key['Arn']} is pending deletion.",
    )


def test_update_alias(kms, key, other_key) -> None:
    name = unique_alias()
    kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    created = next(a for a in all_aliases(kms) if a["AliasName"] == name)
    kms.update_alias(AliasName=name, TargetKeyId=other_key["KeyId"])
    assert kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == other_key["KeyId"]
    updated = next(a for a in all_aliases(kms) if a["AliasName"] == name)
    assert updated["TargetKeyId"] == other_key["KeyId"]
    assert updated["CreationDate"] == created["CreationDate"]
    assert updated["LastUpdatedDate"] >= created["LastUpdatedDate"]
    # Encrypt through the alias now uses the new key.
    resp = kms.encrypt(KeyId=name, Plaintext=b"x")
    assert resp["KeyId"] == other_key["Arn"]


def test_update_alias_to_missing_key(kms, key) -> None:
    name = unique_alias()
    kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    expect_error(
        "NotFoundException", kms.update_alias, AliasName=name, TargetKeyId=str(uuid.uuid4())
    )
    assert kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == key["KeyId"]


def test_update_missing_alias(kms, server, key) -> None:
    name = unique_alias("missing")
    expect_error(
        "NotFoundException",
        kms.update_alias,
        AliasName=name,
        TargetKeyId=key["KeyId"],
        message=f"Alias {server.alias_arn(name)} is not found.",
    )


def test_update_alias_to_pending_deletion_key(kms, key, other_key) -> None:
    name = unique_alias()
    kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    kms.schedule_key_deletion(KeyId=other_key["KeyId"], PendingWindowInDays=7)
    expect_error(
        "KMSInvalidStateException", kms.update_alias, AliasName=name, TargetKeyId=other_key["KeyId"]
    )


def test_update_alias_away_from_pending_deletion_key(kms, key, other_key) -> None:
    """Allowed: only the new target must not be pending deletion."""
    name = unique_alias()
    kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    kms.update_alias(AliasName=name, TargetKeyId=other_key["KeyId"])
    assert kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == other_key["KeyId"]


def test_delete_alias(kms, key) -> None:
    name = unique_alias()
    kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    kms.delete_alias(AliasName=name)
    expect_error("NotFoundException", kms.describe_key, KeyId=name)
    assert name not in {a["AliasName"] for a in all_aliases(kms)}
    # The key itself is untouched, and the name is free again.
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"
    kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])


def test_delete_missing_alias(kms, server) -> None:
    name = unique_alias("missing")
    expect_error(
        "NotFoundException",
        kms.delete_alias,
        AliasName=name,
        message=f"Alias {server.alias_arn(name)} is not found.",
    )


def test_delete_alias_of_pending_deletion_key(kms, key) -> None:
    name = unique_alias()
    kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    kms.delete_alias(AliasName=name)
    expect_error("NotFoundException", kms.describe_key, KeyId=name)


def test_aliases_are_per_region(kms, server, key) -> None:
    west = server.client(region="us-west-2")
    west_key = west.create_key()["KeyMetadata"]
    name = unique_alias("regional")
    kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    # Not visible from us-west-2, and the us-east-1 key is not found there.
    expect_error("NotFoundException", west.describe_key, KeyId=name)
    expect_error("NotFoundException", west.create_alias, AliasName=name, TargetKeyId=key["KeyId"])
    expect_error("NotFoundException", west.describe_key, KeyId=key["KeyId"])
    # The same name in us-west-2 is a different alias.
    west.create_alias(AliasName=name, TargetKeyId=west_key["KeyId"])
    assert west.describe_key(KeyId=name)["KeyMetadata"]["Arn"] == west_key["Arn"]
    assert kms.describe_key(KeyId=name)["KeyMetadata"]["Arn"] == key["Arn"]
    west_entry = next(a for a in all_aliases(west) if a["AliasName"] == name)
    assert west_entry["AliasArn"] == server.alias_arn(name, region="us-west-2")
    west.delete_alias(AliasName=name)
    assert kms.describe_key(KeyId=name)["KeyMetadata"]["Arn"] == key["Arn"]


def test_aliases_are_per_account(kms, kms_second, key) -> None:
    name = unique_alias("acct")
    kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    expect_error("NotFoundException", kms_second.describe_key, KeyId=name)
    theirs = kms_second.create_key()["KeyMetadata"]
    kms_second.create_alias(AliasName=name, TargetKeyId=theirs["KeyId"])
    assert kms_second.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == theirs["KeyId"]
    assert kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == key["KeyId"]
    theirs_listed = [a for a in all_aliases(kms_second) if a["AliasName"] == name]
    assert [a["TargetKeyId"] for a in theirs_listed] == [theirs["KeyId"]]


def test_second_account_cannot_alias_my_key(kms_second, key) -> None:
    with pytest.raises(ClientError) as caught:
        kms_second.create_alias(AliasName=unique_alias(), TargetKeyId=key["Arn"])
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert caught.value.response["Error"]["Code"] in {"NotFoundException", "AccessDeniedException"}
