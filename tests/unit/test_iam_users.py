"""Users, their access keys, groups and memberships, through handle_query."""

from __future__ import annotations

import re

import pytest
from botocore.exceptions import ClientError

from openkms.errors import UnrecognizedClientException
from tests.unit.test_iam_support import ACCOUNT, Creds, Harness, allow, error_code


@pytest.fixture
def h() -> Harness:
    return Harness()


# --- users ---------------------------------------------------------------------------------
def test_create_get_list_delete_user(h: Harness) -> None:
    created = h.iam(
        "CreateUser", UserName="alice", Path="/eng/", Tags=[{"Key": "team", "Value": "kms"}]
    )
    user = created["User"]
    assert user["UserName"] == "alice"
    assert user["Path"] == "/eng/"
    assert user["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/eng/alice"
    assert re.fullmatch(r"AIDA[A-Z2-7]{17}", user["UserId"])
    assert user["Tags"] == [{"Key": "team", "Value": "kms"}]
    assert h.iam("GetUser", UserName="ALICE")["User"]["UserId"] == user["UserId"]
    listed = h.iam("ListUsers")["Users"]
    assert [u["UserName"] for u in listed] == ["alice"]
    assert "Tags" not in listed[0]
    h.iam("DeleteUser", UserName="alice")
    with pytest.raises(ClientError) as caught:
        h.iam("GetUser", UserName="alice")
    assert error_code(caught.value) == "NoSuchEntity"
    assert h.last_status == 404
    assert caught.value.response["Error"]["Message"] == "The user with name alice cannot be found."


def test_user_names_are_unique_regardless_of_case(h: Harness) -> None:
    h.iam("CreateUser", UserName="Bob")
    with pytest.raises(ClientError) as caught:
        h.iam("CreateUser", UserName="bob")
    assert error_code(caught.value) == "EntityAlreadyExists"
    assert h.last_status == 409


def test_list_users_pages_and_filters_by_path(h: Harness) -> None:
    for i in range(7):
        h.iam("CreateUser", UserName=f"u{i}", Path="/a/" if i % 2 else "/b/")
    first = h.iam("ListUsers", MaxItems=2)
    assert [u["UserName"] for u in first["Users"]] == ["u0", "u1"]
    assert first["IsTruncated"] is True
    names: list[str] = []
    marker = None
    while True:
        page = h.iam(
            "ListUsers", PathPrefix="/a/", MaxItems=2, **({"Marker": marker} if marker else {})
        )
        names += [u["UserName"] for u in page["Users"]]
        if not page["IsTruncated"]:
            break
        marker = page["Marker"]
    assert names == ["u1", "u3", "u5"]


def test_get_user_without_name_is_the_caller(h: Harness) -> None:
    root = h.iam("GetUser")["User"]
    assert root["Arn"] == f"arn:aws:iam::{ACCOUNT}:root"
    assert root["UserId"] == ACCOUNT
    creds = h.user_with_key("carol", allow("iam:GetUser"))
    assert h.iam("GetUser", creds)["User"]["UserName"] == "carol"


def test_delete_user_conflicts_while_it_has_keys_policies_or_groups(h: Harness) -> None:
    h.iam("CreateUser", UserName="dave")
    key = h.iam("CreateAccessKey", UserName="dave")["AccessKey"]["AccessKeyId"]
    with pytest.raises(ClientError) as caught:
        h.iam("DeleteUser", UserName="dave")
    assert error_code(caught.value) == "DeleteConflict"
    assert caught.value.response["Error"]["Message"] == (
        "Cannot delete entity, must delete access keys first."
    )
    h.iam("DeleteAccessKey", UserName="dave", AccessKeyId=key)
    h.iam(
        "PutUserPolicy",
        UserName="dave",
        PolicyName="p",
        PolicyDocument='{"Statement":{"Effect":"Allow","Action":"iam:*","Resource":"*"}}',
    )
    with pytest.raises(ClientError):
        h.iam("DeleteUser", UserName="dave")
    h.iam("DeleteUserPolicy", UserName="dave", PolicyName="p")
    h.iam("CreateGroup", GroupName="g")
    h.iam("AddUserToGroup", GroupName="g", UserName="dave")
    with pytest.raises(ClientError) as caught:
        h.iam("DeleteUser", UserName="dave")
    assert error_code(caught.value) == "DeleteConflict"
    h.iam("RemoveUserFromGroup", GroupName="g", UserName="dave")
    h.iam("DeleteUser", UserName="dave")


def test_user_tags(h: Harness) -> None:
    h.iam("CreateUser", UserName="t")
    h.iam("TagUser", UserName="t", Tags=[{"Key": "A", "Value": "1"}, {"Key": "b", "Value": "2"}])
    h.iam("TagUser", UserName="t", Tags=[{"Key": "a", "Value": "3"}])
    assert h.iam("ListUserTags", UserName="t")["Tags"] == [
        {"Key": "b", "Value": "2"},
        {"Key": "a", "Value": "3"},
    ]
    h.iam("UntagUser", UserName="t", TagKeys=["B"])
    assert h.iam("ListUserTags", UserName="t")["Tags"] == [{"Key": "a", "Value": "3"}]
    with pytest.raises(ClientError) as caught:
        h.iam(
            "TagUser", UserName="t", Tags=[{"Key": "x", "Value": "1"}, {"Key": "X", "Value": "2"}]
        )
    assert error_code(caught.value) == "InvalidInput"
    with pytest.raises(ClientError) as caught:
        h.iam("TagUser", UserName="nobody", Tags=[{"Key": "x", "Value": "1"}])
    assert error_code(caught.value) == "NoSuchEntity"


def test_permissions_boundaries_are_refused_not_ignored(h: Harness) -> None:
    with pytest.raises(ClientError) as caught:
        h.iam(
            "CreateUser",
            UserName="pb",
            PermissionsBoundary="arn:aws:iam::aws:policy/ReadOnlyAccess",
        )
    assert error_code(caught.value) == "InvalidInput"


# --- access keys ---------------------------------------------------------------------------
def test_access_keys_lifecycle_and_limit(h: Harness) -> None:
    h.iam("CreateUser", UserName="k")
    first = h.iam("CreateAccessKey", UserName="k")["AccessKey"]
    assert re.fullmatch(r"AKIA[A-Z2-7]{16}", first["AccessKeyId"])
    assert first["Status"] == "Active"
    assert len(first["SecretAccessKey"]) == 40
    h.iam("CreateAccessKey", UserName="k")
    with pytest.raises(ClientError) as caught:
        h.iam("CreateAccessKey", UserName="k")
    assert error_code(caught.value) == "LimitExceeded"
    assert (
        caught.value.response["Error"]["Message"] == "Cannot exceed quota for AccessKeysPerUser: 2"
    )
    listed = h.iam("ListAccessKeys", UserName="k")["AccessKeyMetadata"]
    assert {m["AccessKeyId"] for m in listed} >= {first["AccessKeyId"]}
    assert all("SecretAccessKey" not in m for m in listed)
    h.iam("UpdateAccessKey", UserName="k", AccessKeyId=first["AccessKeyId"], Status="Inactive")
    statuses = {
        m["AccessKeyId"]: m["Status"]
        for m in h.iam("ListAccessKeys", UserName="k")["AccessKeyMetadata"]
    }
    assert statuses[first["AccessKeyId"]] == "Inactive"
    h.iam("DeleteAccessKey", UserName="k", AccessKeyId=first["AccessKeyId"])
    assert len(h.iam("ListAccessKeys", UserName="k")["AccessKeyMetadata"]) == 1


def test_access_key_of_another_user_is_not_found(h: Harness) -> None:
    h.iam("CreateUser", UserName="a")
    h.iam("CreateUser", UserName="b")
    key = h.iam("CreateAccessKey", UserName="a")["AccessKey"]["AccessKeyId"]
    with pytest.raises(ClientError) as caught:
        h.iam("DeleteAccessKey", UserName="b", AccessKeyId=key)
    assert error_code(caught.value) == "NoSuchEntity"
    assert (
        caught.value.response["Error"]["Message"]
        == f"The Access Key with id {key} cannot be found."
    )


def test_inactive_and_deleted_keys_stop_authenticating(h: Harness) -> None:
    creds = h.user_with_key("eve")
    assert h.sts("GetCallerIdentity", creds)["Arn"].endswith(":user/eve")
    h.iam("UpdateAccessKey", UserName="eve", AccessKeyId=creds.access_key_id, Status="Inactive")
    with pytest.raises(UnrecognizedClientException):
        h.identities.principal_for(creds.access_key_id)
    h.iam("UpdateAccessKey", UserName="eve", AccessKeyId=creds.access_key_id, Status="Active")
    assert h.identities.principal_for(creds.access_key_id).kind == "user"
    h.iam("DeleteAccessKey", UserName="eve", AccessKeyId=creds.access_key_id)
    assert h.identities.secret_for(creds.access_key_id) is None


def test_a_user_manages_its_own_keys_without_naming_itself(h: Harness) -> None:
    creds = h.user_with_key(
        "self", allow(["iam:*AccessKey*"], f"arn:aws:iam::{ACCOUNT}:user/${{aws:username}}")
    )
    created = h.iam("CreateAccessKey", creds)["AccessKey"]
    assert created["UserName"] == "self"
    assert len(h.iam("ListAccessKeys", creds)["AccessKeyMetadata"]) == 2
    h.iam("DeleteAccessKey", creds, AccessKeyId=created["AccessKeyId"])
    with pytest.raises(ClientError) as caught:
        h.iam("CreateAccessKey", creds, UserName="someone-else")
    assert error_code(caught.value) == "AccessDenied"


def test_root_keeps_its_last_active_access_key(h: Harness) -> None:
    root_keys = h.iam("ListAccessKeys")["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in root_keys] == [h.root_creds.access_key_id]
    with pytest.raises(ClientError) as caught:
        h.iam("DeleteAccessKey", AccessKeyId=h.root_creds.access_key_id)
    assert error_code(caught.value) == "DeleteConflict"
    second = h.iam("CreateAccessKey")["AccessKey"]
    assert second["UserName"] == "root"
    h.iam("DeleteAccessKey", AccessKeyId=second["AccessKeyId"])


# --- groups --------------------------------------------------------------------------------
def test_groups_and_memberships(h: Harness) -> None:
    group = h.iam("CreateGroup", GroupName="admins", Path="/ops/")["Group"]
    assert re.fullmatch(r"AGPA[A-Z2-7]{17}", group["GroupId"])
    assert group["Arn"] == f"arn:aws:iam::{ACCOUNT}:group/ops/admins"
    h.iam("CreateUser", UserName="u1")
    h.iam("CreateUser", UserName="u2")
    h.iam("AddUserToGroup", GroupName="admins", UserName="u1")
    h.iam("AddUserToGroup", GroupName="admins", UserName="u2")
    h.iam("AddUserToGroup", GroupName="admins", UserName="u2")  # idempotent
    got = h.iam("GetGroup", GroupName="admins")
    assert got["Group"]["GroupName"] == "admins"
    assert [u["UserName"] for u in got["Users"]] == ["u1", "u2"]
    page = h.iam("GetGroup", GroupName="admins", MaxItems=1)
    assert page["IsTruncated"] is True
    assert [g["GroupName"] for g in h.iam("ListGroupsForUser", UserName="u1")["Groups"]] == [
        "admins"
    ]
    assert [g["GroupName"] for g in h.iam("ListGroups", PathPrefix="/ops/")["Groups"]] == ["admins"]
    assert h.iam("ListGroups", PathPrefix="/dev/")["Groups"] == []
    with pytest.raises(ClientError) as caught:
        h.iam("DeleteGroup", GroupName="admins")
    assert error_code(caught.value) == "DeleteConflict"
    h.iam("RemoveUserFromGroup", GroupName="admins", UserName="u1")
    h.iam("RemoveUserFromGroup", GroupName="admins", UserName="u2")
    with pytest.raises(ClientError) as caught:
        h.iam("RemoveUserFromGroup", GroupName="admins", UserName="u2")
    assert error_code(caught.value) == "NoSuchEntity"
    h.iam("DeleteGroup", GroupName="admins")
    assert h.iam("ListGroupsForUser", UserName="u1")["Groups"] == []


def test_group_errors(h: Harness) -> None:
    h.iam("CreateGroup", GroupName="g")
    with pytest.raises(ClientError) as caught:
        h.iam("CreateGroup", GroupName="G")
    assert error_code(caught.value) == "EntityAlreadyExists"
    with pytest.raises(ClientError) as caught:
        h.iam("AddUserToGroup", GroupName="g", UserName="ghost")
    assert error_code(caught.value) == "NoSuchEntity"
    with pytest.raises(ClientError) as caught:
        h.iam("GetGroup", GroupName="nope")
    assert caught.value.response["Error"]["Message"] == "The group with name nope cannot be found."


def test_a_user_belongs_to_at_most_ten_groups(h: Harness) -> None:
    h.iam("CreateUser", UserName="joiner")
    for i in range(10):
        h.iam("CreateGroup", GroupName=f"g{i}")
        h.iam("AddUserToGroup", GroupName=f"g{i}", UserName="joiner")
    h.iam("CreateGroup", GroupName="g10")
    with pytest.raises(ClientError) as caught:
        h.iam("AddUserToGroup", GroupName="g10", UserName="joiner")
    assert error_code(caught.value) == "LimitExceeded"


def test_accounts_are_isolated(h: Harness) -> None:
    h.iam("CreateUser", UserName="shared-name")
    h.iam("CreateUser", h.other_root, UserName="shared-name")
    other = h.iam("GetUser", h.other_root, UserName="shared-name")["User"]
    assert other["Arn"] == "arn:aws:iam::444455556666:user/shared-name"
    h.iam("DeleteUser", h.other_root, UserName="shared-name")
    assert h.iam("GetUser", UserName="shared-name")["User"]["Arn"].startswith(
        f"arn:aws:iam::{ACCOUNT}"
    )


def test_unknown_key_is_unrecognized(h: Harness) -> None:
    with pytest.raises(UnrecognizedClientException):
        h.iam("ListUsers", Creds("AKIAUNKNOWNUNKNOWN00"))
