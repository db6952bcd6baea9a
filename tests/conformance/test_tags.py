"""Tags through boto3: TagResource, UntagResource, ListResourceTags."""

from __future__ import annotations

import uuid

import pytest

from tests.conformance import expect_error, unique_alias


@pytest.fixture
def key(kms) -> dict:
    return dict(kms.create_key()["KeyMetadata"])


def tags_of(kms, key_id: str) -> dict[str, str]:
    pages = kms.get_paginator("list_resource_tags").paginate(KeyId=key_id)
    return {t["TagKey"]: t["TagValue"] for t in pages.build_full_result().get("Tags", [])}


def as_tags(mapping: dict[str, str]) -> list[dict[str, str]]:
    return [{"TagKey": k, "TagValue": v} for k, v in mapping.items()]


def test_tag_list_untag(kms, key) -> None:
    kms.tag_resource(KeyId=key["KeyId"], Tags=as_tags({"a": "1", "b": "2", "c": ""}))
    assert tags_of(kms, key["KeyId"]) == {"a": "1", "b": "2", "c": ""}
    kms.untag_resource(KeyId=key["KeyId"], TagKeys=["a", "c"])
    assert tags_of(kms, key["KeyId"]) == {"b": "2"}


def test_tag_by_key_arn(kms, key) -> None:
    kms.tag_resource(KeyId=key["Arn"], Tags=as_tags({"x": "y"}))
    assert kms.list_resource_tags(KeyId=key["Arn"])["Tags"] == [{"TagKey": "x", "TagValue": "y"}]


def test_update_a_value(kms, key) -> None:
    kms.tag_resource(KeyId=key["KeyId"], Tags=as_tags({"env": "dev", "team": "a"}))
    kms.tag_resource(KeyId=key["KeyId"], Tags=as_tags({"env": "prod"}))
    assert tags_of(kms, key["KeyId"]) == {"env": "prod", "team": "a"}


def test_untag_missing_key_name_is_fine(kms, key) -> None:
    kms.tag_resource(KeyId=key["KeyId"], Tags=as_tags({"keep": "me"}))
    kms.untag_resource(KeyId=key["KeyId"], TagKeys=["never-set"])
    assert tags_of(kms, key["KeyId"]) == {"keep": "me"}


def test_tag_keys_are_case_sensitive(kms, key) -> None:
    kms.tag_resource(KeyId=key["KeyId"], Tags=as_tags({"Env": "a", "env": "b"}))
    assert tags_of(kms, key["KeyId"]) == {"Env": "a", "env": "b"}


@pytest.mark.parametrize("tag_key", ["aws:owner", "AWS:owner", "aws:"])
def test_reserved_prefix(kms, key, tag_key: str) -> None:
    expect_error("TagException", kms.tag_resource, KeyId=key["KeyId"], Tags=as_tags({tag_key: "x"}))
    assert tags_of(kms, key["KeyId"]) == {}


def test_reserved_prefix_in_a_batch_adds_nothing(kms, key) -> None:
    expect_error(
        "TagException",
        kms.tag_resource,
        KeyId=key["KeyId"],
        Tags=as_tags({"fine": "1", "aws:bad": "2"}),
    )
    assert tags_of(kms, key["KeyId"]) == {}


def test_more_than_fifty_tags_at_once(kms, key) -> None:
    expect_error(
        "LimitExceededException",
        kms.tag_resource,
        KeyId=key["KeyId"],
        Tags=as_tags({f"k{i:02}": "v" for i in range(51)}),
    )
    assert tags_of(kms, key["KeyId"]) == {}


def test_fifty_tags_then_one_more(kms, key) -> None:
    fifty = {f"k{i:02}": str(i) for i in range(50)}
    kms.tag_resource(KeyId=key["KeyId"], Tags=as_tags(fifty))
    assert tags_of(kms, key["KeyId"]) == fifty
    expect_error(
        "LimitExceededException", kms.tag_resource, KeyId=key["KeyId"], Tags=as_tags({"z": "1"})
    )
    # Updating an existing tag at the limit is fine.
    kms.tag_resource(KeyId=key["KeyId"], Tags=as_tags({"k00": "changed"}))
    assert tags_of(kms, key["KeyId"])["k00"] == "changed"


def test_list_resource_tags_pagination(kms, key) -> None:
    wanted = {f"tag{i}": f"value{i}" for i in range(7)}
    kms.tag_resource(KeyId=key["KeyId"], Tags=as_tags(wanted))
    seen: dict[str, str] = {}
    marker = None
    pages = 0
    while True:
        kwargs: dict = {"KeyId": key["KeyId"], "Limit": 3}
        if marker:
            kwargs["Marker"] = marker
        resp = kms.list_resource_tags(**kwargs)
        pages += 1
        assert len(resp["Tags"]) <= 3
        for tag in resp["Tags"]:
            assert tag["TagKey"] not in seen
            seen[tag["TagKey"]] = tag["TagValue"]
        if not resp["Truncated"]:
            break
        marker = resp["NextMarker"]
    assert pages == 3
    assert seen == wanted


def test_list_resource_tags_garbage_marker(kms, key) -> None:
    expect_error(
        "InvalidMarkerException", kms.list_resource_tags, KeyId=key["KeyId"], Marker="garbage!!"
    )


def test_tag_pending_deletion_key(kms, key) -> None:
    kms.tag_resource(KeyId=key["KeyId"], Tags=as_tags({"before": "1"}))
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    message = f"{key['Arn']} is pending deletion."
    expect_error(
        "KMSInvalidStateException",
        kms.tag_resource,
        KeyId=key["KeyId"],
        Tags=as_tags({"x": "y"}),
        message=message,
    )
    expect_error(
        "KMSInvalidStateException",
        kms.untag_resource,
        KeyId=key["KeyId"],
        TagKeys=["before"],
        message=message,
    )
    # Listing still works.
    assert tags_of(kms, key["KeyId"]) == {"before": "1"}


def test_tag_disabled_key(kms, key) -> None:
    kms.disable_key(KeyId=key["KeyId"])
    kms.tag_resource(KeyId=key["KeyId"], Tags=as_tags({"x": "y"}))
    assert tags_of(kms, key["KeyId"]) == {"x": "y"}


def test_tag_missing_key(kms) -> None:
    expect_error(
        "NotFoundException", kms.tag_resource, KeyId=str(uuid.uuid4()), Tags=as_tags({"a": "b"})
    )
    expect_error("NotFoundException", kms.list_resource_tags, KeyId=str(uuid.uuid4()))


def test_tags_by_alias_are_refused(kms, key) -> None:
    """TagResource, UntagResource and ListResourceTags take a key id or ARN, not an alias."""
    alias = unique_alias("tags")
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    for call, kwargs in (
        (kms.tag_resource, {"Tags": as_tags({"a": "b"})}),
        (kms.list_resource_tags, {}),
    ):
        with pytest.raises(kms.exceptions.ClientError) as caught:
            call(KeyId=alias, **kwargs)
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert tags_of(kms, key["KeyId"]) == {}


def test_tags_are_per_account(kms, kms_second, key) -> None:
    kms.tag_resource(KeyId=key["KeyId"], Tags=as_tags({"private": "1"}))
    # No cross-account use: another account's key does not exist for these operations.
    expect_error("NotFoundException", kms_second.list_resource_tags, KeyId=key["Arn"])
    expect_error(
        "NotFoundException",
        kms_second.tag_resource,
        KeyId=key["Arn"],
        Tags=as_tags({"evil": "1"}),
    )
    assert tags_of(kms, key["KeyId"]) == {"private": "1"}
