"""The authorization adapter over the shared evaluator, exercised through the IAM endpoint.

The evaluator's own semantics are table-tested in tests/unit/test_policy_*.py; these tests
check what the adapter feeds it (facts, context keys, policy kinds) and how its decisions come
back as IAM's AccessDenied.
"""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from openkms.iam import MalformedPolicyDocument, authz
from openkms.iam.authz import SESSION, TRUST, validate_policy
from openkms.policy.evaluate import Decision
from openkms.service.context import RequestContext
from tests.unit.test_iam_support import (
    ACCOUNT,
    Harness,
    allow,
    arn,
    deny,
    error_code,
    policy,
    trust,
)


@pytest.fixture
def h() -> Harness:
    return Harness()


def denied(h: Harness, operation: str, creds: object, **params: object) -> ClientError:
    with pytest.raises(ClientError) as caught:
        h.iam(operation, creds, **params)  # type: ignore[arg-type]
    assert error_code(caught.value) == "AccessDenied"
    assert h.last_status == 403
    return caught.value


def test_verdicts() -> None:
    assert authz._verdict(Decision(True, "allowed", None, "allowed")) == ("allow", "allowed")
    explicit = Decision(False, "explicit-deny", "identity-policy", "with an explicit deny")
    assert authz._verdict(explicit)[0] == "deny"
    assert authz._verdict(Decision(False, "implicit-deny", None, "because"))[0] == "implicit"


def test_policy_kinds() -> None:
    validate_policy(policy(allow(["kms:Encrypt", "kms:Decrypt"], ["arn:aws:kms:*:*:key/*"])))
    validate_policy('{"Statement": {"Effect": "Deny", "Action": "*", "Resource": "*"}}', SESSION)
    validate_policy(trust("*"), TRUST)
    for document, kind in (
        (policy(allow("kms:*")), TRUST),
        (trust(ACCOUNT), "identity"),
        ('{"Statement":[{"Effect":"Allow","Principal":{"AWS":"bob"},"Action":"sts:*"}]}', TRUST),
    ):
        with pytest.raises(MalformedPolicyDocument) as caught:
            validate_policy(document, kind)
        assert caught.value.message


def test_the_root_needs_no_policy(h: Harness) -> None:
    ctx = RequestContext(
        principal=h.identities.principal_for(h.root_creds.access_key_id),
        region="us-east-1",
        request_id="r",
        now=h.clock.now(),
    )
    assert authz.evaluate(h.storage, ctx, "iam:DeleteUser", arn("user", "x"))[0] == "allow"


def test_iam_calls_need_an_identity_policy(h: Harness) -> None:
    reader = h.user_with_key("reader", allow("iam:Get*"), deny("iam:GetRole"))
    h.iam("GetUser", reader, UserName="reader")
    error = denied(h, "CreateUser", reader, UserName="x")
    assert error.response["Error"]["Message"] == (
        f"User: {arn('user', 'reader')} is not authorized to perform: iam:CreateUser on resource: "
        f"{arn('user', 'x')} because no identity-based policy allows the iam:CreateUser action"
    )
    error = denied(h, "GetRole", reader, RoleName="x")
    assert error.response["Error"]["Message"].endswith(
        "with an explicit deny in an identity-based policy"
    )


def test_resources_are_the_entities_arns(h: Harness) -> None:
    team = h.user_with_key("lead", allow("iam:*", f"arn:aws:iam::{ACCOUNT}:user/team/*"))
    h.iam("CreateUser", team, UserName="member", Path="/team/")
    h.iam("GetUser", team, UserName="member")
    denied(h, "CreateUser", team, UserName="outsider")
    h.iam("CreateUser", UserName="outsider")
    denied(h, "DeleteUser", team, UserName="outsider")


def test_group_and_managed_policies_apply(h: Harness) -> None:
    member = h.user_with_key("member")
    h.iam("CreateGroup", GroupName="readers")
    h.iam("AddUserToGroup", GroupName="readers", UserName="member")
    managed = h.iam("CreatePolicy", PolicyName="list", PolicyDocument=policy(allow("iam:List*")))[
        "Policy"
    ]
    denied(h, "ListUsers", member)
    h.iam("AttachGroupPolicy", GroupName="readers", PolicyArn=managed["Arn"])
    h.iam("ListUsers", member)
    h.iam(
        "CreatePolicyVersion",
        PolicyArn=managed["Arn"],
        PolicyDocument=policy(allow("iam:ListRoles")),
        SetAsDefault=True,
    )
    denied(h, "ListUsers", member)
    h.iam("ListRoles", member)


def test_policy_variables_name_the_caller(h: Harness) -> None:
    own = allow("iam:*AccessKey*", f"arn:aws:iam::{ACCOUNT}:user/${{aws:username}}")
    creds = h.user_with_key("self", own)
    h.iam("ListAccessKeys", creds)
    h.iam("CreateUser", UserName="other")
    denied(h, "ListAccessKeys", creds, UserName="other")


def test_request_tag_conditions(h: Harness) -> None:
    creator = h.user_with_key(
        "creator",
        allow("iam:CreateUser", "*", Condition={"StringEquals": {"aws:RequestTag/team": "blue"}}),
    )
    h.iam("CreateUser", creator, UserName="ok", Tags=[{"Key": "team", "Value": "blue"}])
    denied(h, "CreateUser", creator, UserName="no", Tags=[{"Key": "team", "Value": "red"}])
    untagger = h.user_with_key(
        "untagger",
        allow(
            "iam:UntagUser",
            "*",
            Condition={"ForAllValues:StringEquals": {"aws:TagKeys": ["team"]}},
        ),
    )
    h.iam("UntagUser", untagger, UserName="ok", TagKeys=["team"])
    denied(h, "UntagUser", untagger, UserName="ok", TagKeys=["owner"])


def test_principal_tag_conditions(h: Harness) -> None:
    statement = allow(
        "iam:ListUsers", "*", Condition={"StringEquals": {"aws:PrincipalTag/Clearance": "high"}}
    )
    creds = h.user_with_key("tagged", statement)
    denied(h, "ListUsers", creds)
    h.iam("TagUser", UserName="tagged", Tags=[{"Key": "clearance", "Value": "high"}])
    h.iam("ListUsers", creds)


def test_role_sessions_are_matched_by_their_role_arn(h: Harness) -> None:
    alice = h.user_with_key("alice", allow("sts:AssumeRole"))
    h.role("pathed", trust(ACCOUNT), Path="/svc/")
    role_arn = arn("role", "svc/pathed")
    h.iam(
        "PutRolePolicy",
        RoleName="pathed",
        PolicyName="p",
        PolicyDocument=policy(
            allow("iam:ListRoles", "*", Condition={"ArnEquals": {"aws:PrincipalArn": role_arn}})
        ),
    )
    session = h.assume(alice, role_arn)
    h.iam("ListRoles", session)
    # a second role trusting the first role (by its ARN, path included) directly
    h.role(
        "next",
        policy({"Effect": "Allow", "Principal": {"AWS": role_arn}, "Action": "sts:AssumeRole"}),
    )
    chained = h.assume(session, arn("role", "next"), "s2")
    assert h.sts("GetCallerIdentity", chained)["Arn"].endswith("assumed-role/next/s2")


def test_a_stored_policy_that_no_longer_parses_grants_nothing(h: Harness) -> None:
    creds = h.user_with_key("broken", allow("iam:ListUsers"))
    h.iam("ListUsers", creds)
    name = "user/broken/p"
    h.storage.put_document(
        "iam-inline", ACCOUNT, name, json.dumps({"name": "p", "document": "{oops"}), 0.0
    )
    denied(h, "ListUsers", creds)


# --- simulation ----------------------------------------------------------------------------
def decisions(answer: dict[str, object]) -> list[tuple[str, str, str]]:
    results = answer["EvaluationResults"]
    assert isinstance(results, list)
    return [(r["EvalActionName"], r["EvalResourceName"], r["EvalDecision"]) for r in results]


def test_simulate_principal_policy(h: Harness) -> None:
    h.user_with_key("sim", allow("iam:Get*"), deny("iam:GetRole"))
    h.iam("CreateGroup", GroupName="g")
    h.iam("AddUserToGroup", GroupName="g", UserName="sim")
    h.iam("PutGroupPolicy", GroupName="g", PolicyName="p", PolicyDocument=policy(allow("kms:*")))
    answer = h.iam(
        "SimulatePrincipalPolicy",
        PolicySourceArn=arn("user", "sim"),
        ActionNames=["iam:GetUser", "iam:GetRole", "iam:CreateUser", "kms:Encrypt"],
    )
    assert decisions(answer) == [
        ("iam:GetUser", "*", "allowed"),
        ("iam:GetRole", "*", "explicitDeny"),
        ("iam:CreateUser", "*", "implicitDeny"),
        ("kms:Encrypt", "*", "allowed"),
    ]
    extra = policy(allow("iam:CreateUser", arn("user", "team/*")))
    answer = h.iam(
        "SimulatePrincipalPolicy",
        PolicySourceArn=arn("user", "sim"),
        ActionNames=["iam:CreateUser"],
        ResourceArns=[arn("user", "team/a"), arn("user", "b")],
        PolicyInputList=[extra],
    )
    assert [d for _, _, d in decisions(answer)] == ["allowed", "implicitDeny"]
    with pytest.raises(ClientError) as caught:
        h.iam("SimulatePrincipalPolicy", PolicySourceArn=arn("user", "ghost"), ActionNames=["a:b"])
    assert error_code(caught.value) == "NoSuchEntity"


def test_simulate_custom_policy_with_context(h: Harness) -> None:
    document = policy(
        allow("kms:Decrypt", "*", Condition={"StringEquals": {"aws:PrincipalTag/team": "blue"}})
    )
    answer = h.iam(
        "SimulateCustomPolicy",
        PolicyInputList=[document],
        ActionNames=["kms:Decrypt"],
        ContextEntries=[
            {
                "ContextKeyName": "aws:PrincipalTag/team",
                "ContextKeyValues": ["blue"],
                "ContextKeyType": "string",
            }
        ],
    )
    assert decisions(answer) == [("kms:Decrypt", "*", "allowed")]
    answer = h.iam("SimulateCustomPolicy", PolicyInputList=[document], ActionNames=["kms:Decrypt"])
    assert decisions(answer) == [("kms:Decrypt", "*", "implicitDeny")]


def test_simulation_reports_the_statements_that_decided_and_where_they_are(h: Harness) -> None:
    h.user_with_key("matcher", allow("kms:Encrypt"), deny("kms:Decrypt"))
    h.iam("CreateGroup", GroupName="crew")
    h.iam("AddUserToGroup", GroupName="crew", UserName="matcher")
    group_policy = policy(allow("kms:*"))
    h.iam("PutGroupPolicy", GroupName="crew", PolicyName="gp", PolicyDocument=group_policy)
    answer = h.iam(
        "SimulatePrincipalPolicy",
        PolicySourceArn=arn("user", "matcher"),
        ActionNames=["kms:Encrypt", "kms:Decrypt", "iam:GetUser"],
    )
    results = {r["EvalActionName"]: r for r in answer["EvaluationResults"]}
    encrypt = results["kms:Encrypt"]
    assert encrypt["EvalDecision"] == "allowed"
    assert [(m["SourcePolicyId"], m["SourcePolicyType"]) for m in encrypt["MatchedStatements"]] == [
        ("p", "user"),
        ("gp", "group"),
    ]
    # policy() writes the document on one line: the first statement starts after '"Statement": ['.
    text = policy(allow("kms:Encrypt"), deny("kms:Decrypt"))
    first = encrypt["MatchedStatements"][0]
    assert first["StartPosition"] == {"Line": 1, "Column": text.index("{", 1) + 1}
    assert text[first["EndPosition"]["Column"] - 1] == "}"
    decrypt = results["kms:Decrypt"]
    assert decrypt["EvalDecision"] == "explicitDeny"
    assert [m["SourcePolicyType"] for m in decrypt["MatchedStatements"]] == ["user"]
    assert results["iam:GetUser"]["EvalDecision"] == "implicitDeny"
    assert results["iam:GetUser"]["MatchedStatements"] == []


def test_simulation_reports_condition_keys_it_was_not_given(h: Harness) -> None:
    document = policy(
        allow(
            "kms:Decrypt",
            Condition={"StringEquals": {"kms:EncryptionContext:tenant": "blue"}},
        ),
        allow("kms:Encrypt", Condition={"Bool": {"aws:SecureTransport": "true"}}),
    )
    answer = h.iam("SimulateCustomPolicy", PolicyInputList=[document], ActionNames=["kms:Decrypt"])
    result = answer["EvaluationResults"][0]
    assert result["EvalDecision"] == "implicitDeny"
    # Only the statements whose action and resource match count (not kms:Encrypt's).
    assert result["MissingContextValues"] == ["kms:encryptioncontext:tenant"]
    answer = h.iam(
        "SimulateCustomPolicy",
        PolicyInputList=[document],
        ActionNames=["kms:Decrypt"],
        ContextEntries=[
            {
                "ContextKeyName": "kms:EncryptionContext:tenant",
                "ContextKeyValues": ["blue"],
                "ContextKeyType": "string",
            }
        ],
    )
    result = answer["EvaluationResults"][0]
    assert result["EvalDecision"] == "allowed"
    assert result["MissingContextValues"] == []
    assert result["MatchedStatements"][0]["SourcePolicyId"] == "PolicyInputList.1"
    assert result["MatchedStatements"][0]["SourcePolicyType"] == "none"


def test_a_role_is_simulated_as_its_sessions_are_seen(h: Harness) -> None:
    h.iam("CreateRole", RoleName="sim-role", AssumeRolePolicyDocument=trust(ACCOUNT))
    role_arn = arn("role", "sim-role")
    h.iam(
        "PutRolePolicy",
        RoleName="sim-role",
        PolicyName="rp",
        PolicyDocument=policy(
            allow("kms:Encrypt", Condition={"StringEquals": {"aws:PrincipalType": "AssumedRole"}}),
            allow("kms:Decrypt", Condition={"StringEquals": {"aws:PrincipalArn": role_arn}}),
        ),
    )
    answer = h.iam(
        "SimulatePrincipalPolicy",
        PolicySourceArn=role_arn,
        ActionNames=["kms:Encrypt", "kms:Decrypt"],
    )
    assert [r["EvalDecision"] for r in answer["EvaluationResults"]] == ["allowed", "allowed"]
    assert answer["EvaluationResults"][0]["MatchedStatements"][0]["SourcePolicyType"] == "role"


@pytest.mark.parametrize(
    "extra",
    [
        {"ResourcePolicy": policy(allow("kms:*"))},
        {"PermissionsBoundaryPolicyInputList": [policy(allow("kms:*"))]},
        {"ResourceOwner": f"arn:aws:iam::{ACCOUNT}:root"},
    ],
)
def test_what_the_simulator_does_not_simulate_is_refused_not_ignored(
    h: Harness, extra: dict[str, object]
) -> None:
    with pytest.raises(ClientError) as caught:
        h.iam(
            "SimulateCustomPolicy",
            PolicyInputList=[policy(allow("kms:Decrypt"))],
            ActionNames=["kms:Decrypt"],
            **extra,
        )
    assert error_code(caught.value) == "InvalidInput"


def test_the_simulator_skips_a_stored_policy_that_no_longer_parses(h: Harness) -> None:
    """As authorization does: it grants nothing, and the simulation still answers."""
    h.user_with_key("broken-sim", allow("iam:ListUsers"))
    h.iam(
        "PutUserPolicy",
        UserName="broken-sim",
        PolicyName="q",
        PolicyDocument=policy(allow("kms:Encrypt")),
    )
    h.storage.put_document(
        "iam-inline",
        ACCOUNT,
        "user/broken-sim/p",
        json.dumps({"name": "p", "document": "{oops"}),
        0.0,
    )
    answer = h.iam(
        "SimulatePrincipalPolicy",
        PolicySourceArn=arn("user", "broken-sim"),
        ActionNames=["iam:ListUsers", "kms:Encrypt"],
    )
    assert decisions(answer) == [
        ("iam:ListUsers", "*", "implicitDeny"),
        ("kms:Encrypt", "*", "allowed"),
    ]
