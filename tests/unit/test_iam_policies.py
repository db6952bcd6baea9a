"""Roles, managed policies and their versions, attachments and inline policies."""

from __future__ import annotations

import json
import re
from urllib.parse import quote

import pytest
from botocore.exceptions import ClientError

from tests.unit.test_iam_support import (
    ACCOUNT,
    Harness,
    allow,
    arn,
    decoded,
    deny,
    error_code,
    policy,
    trust,
)

ROOT = f"arn:aws:iam::{ACCOUNT}:root"


@pytest.fixture
def h() -> Harness:
    return Harness()


def raises(h: Harness, code: str, operation: str, **params: object) -> ClientError:
    with pytest.raises(ClientError) as caught:
        h.iam(operation, **params)
    assert error_code(caught.value) == code, caught.value.response["Error"]
    return caught.value


# --- roles ---------------------------------------------------------------------------------
def test_role_lifecycle(h: Harness) -> None:
    document = trust(ROOT)
    role = h.role("deployer", document, Path="/svc/", Description="d", MaxSessionDuration=7200)
    assert re.fullmatch(r"AROA[A-Z2-7]{17}", role["RoleId"])
    assert role["Arn"] == arn("role", "svc/deployer")
    assert decoded(role["AssumeRolePolicyDocument"]) == json.loads(document)
    got = h.iam("GetRole", RoleName="deployer")["Role"]
    assert got["MaxSessionDuration"] == 7200
    assert got["Description"] == "d"
    assert [r["RoleName"] for r in h.iam("ListRoles", PathPrefix="/svc/")["Roles"]] == ["deployer"]
    h.iam("CreateUser", UserName="alice")  # a trust policy names existing principals
    new_trust = trust(arn("user", "alice"))
    h.iam("UpdateAssumeRolePolicy", RoleName="deployer", PolicyDocument=new_trust)
    got = h.iam("GetRole", RoleName="deployer")["Role"]
    assert decoded(got["AssumeRolePolicyDocument"]) == json.loads(new_trust)
    h.iam("UpdateRole", RoleName="deployer", MaxSessionDuration=3600)
    assert h.iam("GetRole", RoleName="deployer")["Role"]["MaxSessionDuration"] == 3600
    h.iam("DeleteRole", RoleName="deployer")
    error = raises(h, "NoSuchEntity", "GetRole", RoleName="deployer")
    assert error.response["Error"]["Message"] == "The role with name deployer cannot be found."


def test_role_errors(h: Harness) -> None:
    h.role("r", trust(ROOT))
    raises(
        h, "EntityAlreadyExists", "CreateRole", RoleName="R", AssumeRolePolicyDocument=trust(ROOT)
    )
    raises(
        h,
        "ValidationError",
        "CreateRole",
        RoleName="long",
        AssumeRolePolicyDocument=trust(ROOT),
        MaxSessionDuration=50000,
    )
    identity_policy = policy(allow("s3:*"))
    error = raises(
        h,
        "MalformedPolicyDocument",
        "CreateRole",
        RoleName="x",
        AssumeRolePolicyDocument=identity_policy,
    )
    assert "no Principal" in error.response["Error"]["Message"]
    raises(
        h,
        "MalformedPolicyDocument",
        "UpdateAssumeRolePolicy",
        RoleName="r",
        PolicyDocument='{"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole"}]}',
    )


def test_role_tags(h: Harness) -> None:
    role = h.role("tagged", trust(ROOT), Tags=[{"Key": "env", "Value": "prod"}])
    assert role["Tags"] == [{"Key": "env", "Value": "prod"}]
    h.iam("TagRole", RoleName="tagged", Tags=[{"Key": "team", "Value": "x"}])
    h.iam("UntagRole", RoleName="tagged", TagKeys=["env"])
    assert h.iam("ListRoleTags", RoleName="tagged")["Tags"] == [{"Key": "team", "Value": "x"}]
    assert h.iam("GetRole", RoleName="tagged")["Role"]["Tags"] == [{"Key": "team", "Value": "x"}]


def test_delete_role_conflicts_while_policies_remain(h: Harness) -> None:
    h.role("busy", trust(ROOT))
    h.iam(
        "PutRolePolicy", RoleName="busy", PolicyName="inline", PolicyDocument=policy(allow("kms:*"))
    )
    raises(h, "DeleteConflict", "DeleteRole", RoleName="busy")
    h.iam("DeleteRolePolicy", RoleName="busy", PolicyName="inline")
    managed = h.iam("CreatePolicy", PolicyName="m", PolicyDocument=policy(allow("kms:*")))["Policy"]
    h.iam("AttachRolePolicy", RoleName="busy", PolicyArn=managed["Arn"])
    error = raises(h, "DeleteConflict", "DeleteRole", RoleName="busy")
    assert (
        error.response["Error"]["Message"]
        == "Cannot delete entity, must detach all policies first."
    )
    h.iam("DetachRolePolicy", RoleName="busy", PolicyArn=managed["Arn"])
    h.iam("DeleteRole", RoleName="busy")


# --- managed policies ----------------------------------------------------------------------
def test_managed_policy_and_versions(h: Harness) -> None:
    v1 = policy(allow("kms:Encrypt"))
    created = h.iam(
        "CreatePolicy", PolicyName="crypto", Path="/team/", PolicyDocument=v1, Description="c"
    )
    p = created["Policy"]
    assert re.fullmatch(r"ANPA[A-Z2-7]{17}", p["PolicyId"])
    assert p["Arn"] == arn("policy", "team/crypto")
    assert (p["DefaultVersionId"], p["AttachmentCount"], p["IsAttachable"]) == ("v1", 0, True)
    assert h.iam("GetPolicy", PolicyArn=p["Arn"])["Policy"]["Description"] == "c"
    version = h.iam("GetPolicyVersion", PolicyArn=p["Arn"], VersionId="v1")["PolicyVersion"]
    assert decoded(version["Document"]) == json.loads(v1)
    assert version["IsDefaultVersion"] is True
    for i in range(2, 6):
        made = h.iam(
            "CreatePolicyVersion",
            PolicyArn=p["Arn"],
            PolicyDocument=policy(allow(f"kms:Op{i}")),
            SetAsDefault=i == 3,
        )["PolicyVersion"]
        assert made["VersionId"] == f"v{i}"
        assert "Document" not in made
    error = raises(h, "LimitExceeded", "CreatePolicyVersion", PolicyArn=p["Arn"], PolicyDocument=v1)
    assert "up to 5 versions" in error.response["Error"]["Message"]
    assert h.iam("GetPolicy", PolicyArn=p["Arn"])["Policy"]["DefaultVersionId"] == "v3"
    versions = h.iam("ListPolicyVersions", PolicyArn=p["Arn"])["Versions"]
    assert [v["VersionId"] for v in versions] == ["v5", "v4", "v3", "v2", "v1"]
    assert [v["IsDefaultVersion"] for v in versions] == [False, False, True, False, False]
    error = raises(h, "DeleteConflict", "DeletePolicyVersion", PolicyArn=p["Arn"], VersionId="v3")
    assert error.response["Error"]["Message"] == "Cannot delete the default version of a policy."
    h.iam("DeletePolicyVersion", PolicyArn=p["Arn"], VersionId="v1")
    made = h.iam("CreatePolicyVersion", PolicyArn=p["Arn"], PolicyDocument=v1)["PolicyVersion"]
    assert made["VersionId"] == "v6"  # ids are never reused
    raises(h, "DeleteConflict", "DeletePolicy", PolicyArn=p["Arn"])  # more than one version
    h.iam("SetDefaultPolicyVersion", PolicyArn=p["Arn"], VersionId="v6")
    for v in ("v2", "v3", "v4", "v5"):
        h.iam("DeletePolicyVersion", PolicyArn=p["Arn"], VersionId=v)
    h.iam("DeletePolicy", PolicyArn=p["Arn"])
    error = raises(h, "NoSuchEntity", "GetPolicy", PolicyArn=p["Arn"])
    assert error.response["Error"]["Message"] == f"Policy {p['Arn']} was not found."


def test_policy_errors(h: Harness) -> None:
    h.iam("CreatePolicy", PolicyName="dup", PolicyDocument=policy(allow("kms:*")))
    error = raises(
        h,
        "EntityAlreadyExists",
        "CreatePolicy",
        PolicyName="DUP",
        PolicyDocument=policy(allow("kms:*")),
    )
    assert "Duplicate names are not allowed" in error.response["Error"]["Message"]
    raises(
        h, "MalformedPolicyDocument", "CreatePolicy", PolicyName="bad", PolicyDocument="{not json"
    )
    raises(h, "InvalidInput", "GetPolicy", PolicyArn="arn:aws:iam::123:notapolicy/x")
    raises(h, "NoSuchEntity", "GetPolicy", PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    raises(h, "NoSuchEntity", "GetPolicyVersion", PolicyArn=arn("policy", "dup"), VersionId="v9")
    huge = policy(*[allow(f"kms:Operation{i:05d}") for i in range(200)])
    error = raises(h, "LimitExceeded", "CreatePolicy", PolicyName="huge", PolicyDocument=huge)
    assert error.response["Error"]["Message"] == "Cannot exceed quota for PolicySize: 6144"


def test_list_policies_scopes_and_filters(h: Harness) -> None:
    a = h.iam("CreatePolicy", PolicyName="a", Path="/x/", PolicyDocument=policy(allow("kms:*")))[
        "Policy"
    ]
    h.iam("CreatePolicy", PolicyName="b", PolicyDocument=policy(allow("kms:*")))
    assert [p["PolicyName"] for p in h.iam("ListPolicies", Scope="Local")["Policies"]] == ["a", "b"]
    assert h.iam("ListPolicies", Scope="AWS")["Policies"] == []
    assert [p["PolicyName"] for p in h.iam("ListPolicies", PathPrefix="/x/")["Policies"]] == ["a"]
    h.iam("CreateUser", UserName="u")
    h.iam("AttachUserPolicy", UserName="u", PolicyArn=a["Arn"])
    attached = h.iam("ListPolicies", OnlyAttached=True)["Policies"]
    assert [(p["PolicyName"], p["AttachmentCount"]) for p in attached] == [("a", 1)]


def test_policy_documents_may_arrive_url_encoded(h: Harness) -> None:
    document = policy(allow("kms:Decrypt"))
    created = h.iam("CreatePolicy", PolicyName="enc", PolicyDocument=quote(document, safe=""))[
        "Policy"
    ]
    version = h.iam("GetPolicyVersion", PolicyArn=created["Arn"], VersionId="v1")["PolicyVersion"]
    assert decoded(version["Document"]) == json.loads(document)


# --- attachments ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "param"), [("User", "UserName"), ("Group", "GroupName"), ("Role", "RoleName")]
)
def test_attach_detach_list(h: Harness, kind: str, param: str) -> None:
    if kind == "Role":
        h.role("e", trust(ROOT))
    else:
        h.iam(f"Create{kind}", **{param: "e"})
    managed = h.iam(
        "CreatePolicy", PolicyName="pol", Path="/p/", PolicyDocument=policy(allow("kms:*"))
    )["Policy"]
    h.iam(f"Attach{kind}Policy", **{param: "e"}, PolicyArn=managed["Arn"])
    h.iam(f"Attach{kind}Policy", **{param: "e"}, PolicyArn=managed["Arn"])  # idempotent
    assert h.iam("GetPolicy", PolicyArn=managed["Arn"])["Policy"]["AttachmentCount"] == 1
    listed = h.iam(f"ListAttached{kind}Policies", **{param: "e"})["AttachedPolicies"]
    assert listed == [{"PolicyName": "pol", "PolicyArn": managed["Arn"]}]
    assert (
        h.iam(f"ListAttached{kind}Policies", **{param: "e"}, PathPrefix="/q/")["AttachedPolicies"]
        == []
    )
    raises(h, "DeleteConflict", "DeletePolicy", PolicyArn=managed["Arn"])
    h.iam(f"Detach{kind}Policy", **{param: "e"}, PolicyArn=managed["Arn"])
    raises(h, "NoSuchEntity", f"Detach{kind}Policy", **{param: "e"}, PolicyArn=managed["Arn"])
    assert h.iam("GetPolicy", PolicyArn=managed["Arn"])["Policy"]["AttachmentCount"] == 0
    raises(h, "NoSuchEntity", f"Attach{kind}Policy", **{param: "ghost"}, PolicyArn=managed["Arn"])
    error = raises(
        h, "NoSuchEntity", f"Attach{kind}Policy", **{param: "e"}, PolicyArn=arn("policy", "nothing")
    )
    assert "does not exist or is not attachable" in error.response["Error"]["Message"]
    h.iam("DeletePolicy", PolicyArn=managed["Arn"])


def test_at_most_ten_managed_policies_per_entity(h: Harness) -> None:
    h.iam("CreateUser", UserName="many")
    for i in range(11):
        made = h.iam("CreatePolicy", PolicyName=f"p{i}", PolicyDocument=policy(allow("kms:*")))[
            "Policy"
        ]
        if i < 10:
            h.iam("AttachUserPolicy", UserName="many", PolicyArn=made["Arn"])
    error = raises(h, "LimitExceeded", "AttachUserPolicy", UserName="many", PolicyArn=made["Arn"])
    assert error.response["Error"]["Message"] == "Cannot exceed quota for PoliciesPerUser: 10"


# --- inline policies -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "param"), [("User", "UserName"), ("Group", "GroupName"), ("Role", "RoleName")]
)
def test_inline_policies(h: Harness, kind: str, param: str) -> None:
    if kind == "Role":
        h.role("e", trust(ROOT))
    else:
        h.iam(f"Create{kind}", **{param: "e"})
    document = policy(allow("kms:Encrypt"), deny("kms:Decrypt"))
    h.iam(f"Put{kind}Policy", **{param: "e"}, PolicyName="b", PolicyDocument=document)
    h.iam(f"Put{kind}Policy", **{param: "e"}, PolicyName="a", PolicyDocument=policy(allow("kms:*")))
    got = h.iam(f"Get{kind}Policy", **{param: "e"}, PolicyName="b")
    assert got[param] == "e"
    assert decoded(got["PolicyDocument"]) == json.loads(document)
    assert h.iam(f"List{kind}Policies", **{param: "e"})["PolicyNames"] == ["a", "b"]
    h.iam(
        f"Put{kind}Policy", **{param: "e"}, PolicyName="b", PolicyDocument=policy(allow("kms:Sign"))
    )
    assert (
        decoded(h.iam(f"Get{kind}Policy", **{param: "e"}, PolicyName="b")["PolicyDocument"])[
            "Statement"
        ][0]["Action"]
        == "kms:Sign"
    )
    h.iam(f"Delete{kind}Policy", **{param: "e"}, PolicyName="b")
    error = raises(h, "NoSuchEntity", f"Get{kind}Policy", **{param: "e"}, PolicyName="b")
    assert error.response["Error"]["Message"] == (
        f"The {kind.lower()} policy with name b cannot be found."
    )
    raises(h, "NoSuchEntity", f"Delete{kind}Policy", **{param: "e"}, PolicyName="b")
    raises(
        h,
        "NoSuchEntity",
        f"Put{kind}Policy",
        **{param: "ghost"},
        PolicyName="x",
        PolicyDocument=document,
    )
    raises(
        h,
        "MalformedPolicyDocument",
        f"Put{kind}Policy",
        **{param: "e"},
        PolicyName="x",
        PolicyDocument='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*"}]}',
    )


def test_inline_policies_have_an_aggregate_size_limit(h: Harness) -> None:
    h.iam("CreateUser", UserName="big")
    chunk = policy(*[allow(f"kms:Operation{i:04d}") for i in range(15)])  # 983 characters
    h.iam("PutUserPolicy", UserName="big", PolicyName="one", PolicyDocument=chunk)
    h.iam("PutUserPolicy", UserName="big", PolicyName="two", PolicyDocument=chunk)
    error = raises(
        h,
        "LimitExceeded",
        "PutUserPolicy",
        UserName="big",
        PolicyName="three",
        PolicyDocument=chunk,
    )
    assert (
        error.response["Error"]["Message"]
        == "Maximum policy size of 2048 bytes exceeded for user big"
    )
    h.iam(
        "PutUserPolicy", UserName="big", PolicyName="two", PolicyDocument=chunk
    )  # replacing is fine


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ("[]", "must be a JSON object"),
        ("{not json", "not valid JSON"),
        ('{"Version":"2012-10-17"}', "no Statement"),
        ('{"Version":"2001-01-01","Statement":[]}', "invalid Version"),
        ('{"Statement":[{"Action":"kms:*","Resource":"*"}]}', "invalid Effect"),
        ('{"Statement":[{"Effect":"Maybe","Action":"kms:*","Resource":"*"}]}', "invalid Effect"),
        ('{"Statement":[{"Effect":"Allow","Resource":"*"}]}', "no Action"),
        ('{"Statement":[{"Effect":"Allow","Action":"kms:*"}]}', "no Resource"),
        ('{"Statement":[{"Effect":"Allow","Action":"Encrypt","Resource":"*"}]}', "invalid action"),
        (
            '{"Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"key"}]}',
            "invalid resource",
        ),
        (
            '{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}]}',
            "prohibited element Principal",
        ),
        (
            '{"Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*",'
            '"Condition":{"Sometimes":{"kms:a":"b"}}}]}',
            "unsupported condition operator Sometimes",
        ),
        (
            '{"Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*","Colour":"red"}]}',
            "unknown element Colour",
        ),
    ],
)
def test_malformed_identity_policies(h: Harness, document: str, fragment: str) -> None:
    h.iam("CreateUser", UserName="m")
    error = raises(
        h,
        "MalformedPolicyDocument",
        "PutUserPolicy",
        UserName="m",
        PolicyName="p",
        PolicyDocument=document,
    )
    assert fragment in error.response["Error"]["Message"]
    assert h.last_status == 400
