"""What applies to a principal (for the KMS side), and how Identities resolves access keys."""

from __future__ import annotations

import json

import pytest

from openkms.errors import UnrecognizedClientException
from openkms.http.identity import Identities
from openkms.iam.principals import identity_policies_for, principal_tags_for, session_policy_for
from tests.unit.test_iam_support import ACCOUNT, Harness, allow, arn, policy


@pytest.fixture
def h() -> Harness:
    return Harness()


def actions_of(texts: list[str]) -> set[str]:
    return {json.loads(t)["Statement"][0]["Action"] for t in texts}


def test_a_users_policies_come_from_itself_its_attachments_and_its_groups(h: Harness) -> None:
    creds = h.user_with_key("u", allow("kms:Inline"))
    managed = h.iam("CreatePolicy", PolicyName="m", PolicyDocument=policy(allow("kms:Managed")))[
        "Policy"
    ]
    h.iam("AttachUserPolicy", UserName="u", PolicyArn=managed["Arn"])
    h.iam("CreateGroup", GroupName="g")
    h.iam("AddUserToGroup", GroupName="g", UserName="u")
    h.iam(
        "PutGroupPolicy",
        GroupName="g",
        PolicyName="gi",
        PolicyDocument=policy(allow("kms:GroupInline")),
    )
    group_managed = h.iam(
        "CreatePolicy", PolicyName="gm", PolicyDocument=policy(allow("kms:GroupManaged"))
    )["Policy"]
    h.iam("AttachGroupPolicy", GroupName="g", PolicyArn=group_managed["Arn"])
    h.iam("CreateGroup", GroupName="other")
    h.iam(
        "PutGroupPolicy",
        GroupName="other",
        PolicyName="x",
        PolicyDocument=policy(allow("kms:NotMine")),
    )
    principal = h.identities.principal_for(creds.access_key_id)
    assert actions_of(identity_policies_for(h.storage, principal)) == {
        "kms:Inline",
        "kms:Managed",
        "kms:GroupInline",
        "kms:GroupManaged",
    }
    assert session_policy_for(h.storage, principal) is None
    h.iam("TagUser", UserName="u", Tags=[{"Key": "team", "Value": "blue"}])
    assert principal_tags_for(h.storage, principal) == {"team": "blue"}


def test_root_has_no_identity_policies(h: Harness) -> None:
    principal = h.identities.principal_for(h.root_creds.access_key_id)
    assert principal.kind == "root"
    assert identity_policies_for(h.storage, principal) == []
    assert principal_tags_for(h.storage, principal) == {}


def test_a_sessions_policies_are_its_roles(h: Harness) -> None:
    alice = h.user_with_key("alice", allow("sts:AssumeRole"), allow("sts:TagSession"))
    h.role(
        "r",
        policy(
            {
                "Effect": "Allow",
                "Principal": {"AWS": ACCOUNT},
                "Action": ["sts:AssumeRole", "sts:TagSession"],
            }
        ),
        Tags=[{"Key": "team", "Value": "role"}, {"Key": "env", "Value": "prod"}],
    )
    h.iam(
        "PutRolePolicy",
        RoleName="r",
        PolicyName="p",
        PolicyDocument=policy(allow("kms:RoleInline")),
    )
    managed = h.iam(
        "CreatePolicy", PolicyName="m", PolicyDocument=policy(allow("kms:RoleManaged"))
    )["Policy"]
    h.iam("AttachRolePolicy", RoleName="r", PolicyArn=managed["Arn"])
    session = h.assume(
        alice,
        arn("role", "r"),
        Policy=policy(allow("kms:Encrypt")),
        Tags=[{"Key": "TEAM", "Value": "session"}],
    )
    principal = h.identities.principal_for(session.access_key_id, session.token)
    assert actions_of(identity_policies_for(h.storage, principal)) == {
        "kms:RoleInline",
        "kms:RoleManaged",
    }
    session_policy = session_policy_for(h.storage, principal)
    assert session_policy is not None
    assert json.loads(session_policy)["Statement"] == [allow("kms:Encrypt")]
    assert principal_tags_for(h.storage, principal) == {"env": "prod", "TEAM": "session"}


def test_a_deleted_user_authenticates_no_more(h: Harness) -> None:
    creds = h.user_with_key("gone")
    principal = h.identities.principal_for(creds.access_key_id)
    h.storage.delete_document("iam-user", ACCOUNT, "gone")  # as if deleted behind IAM's back
    assert identity_policies_for(h.storage, principal) == []
    with pytest.raises(UnrecognizedClientException):
        h.identities.principal_for(creds.access_key_id)


def test_keys_stay_cached_for_the_ttl_only(h: Harness) -> None:
    now = [0.0]
    identities = Identities(h.storage, h.root, "aws", 1.0, clock=h.clock, monotonic=lambda: now[0])
    creds = h.user_with_key("cached")
    assert identities.principal_for(creds.access_key_id).kind == "user"
    h.iam("UpdateAccessKey", UserName="cached", AccessKeyId=creds.access_key_id, Status="Inactive")
    now[0] = 0.9
    assert identities.principal_for(creds.access_key_id).kind == "user"
    now[0] = 1.1
    with pytest.raises(UnrecognizedClientException):
        identities.principal_for(creds.access_key_id)
    assert identities.secret_for(creds.access_key_id) is None


def test_the_permissive_principal_is_the_root(h: Harness) -> None:
    principal = h.identities.permissive_principal("000000000000", "AKIAANY")
    assert (principal.kind, principal.arn) == ("root", "arn:aws:iam::000000000000:root")
