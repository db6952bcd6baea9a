"""Optional resource policies (Secrets Manager): IAM's same-account and cross-account rules, and
the syntactic "broad access" test behind BlockPublicPolicy."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from openkms.policy.document import PolicyDocument, parse_policy
from openkms.policy.evaluate import RequestFacts
from openkms.policy.public_access import broad_statements
from openkms.policy.resource_based import evaluate_with_resource_policy

OWNER = "111122223333"
OTHER = "444455556666"
SECRET = f"arn:aws:secretsmanager:us-east-1:{OWNER}:secret:db-AbCdEf"
ALICE = f"arn:aws:iam::{OWNER}:user/alice"
BOB = f"arn:aws:iam::{OTHER}:user/bob"
READ = "secretsmanager:GetSecretValue"


def facts(**changes: Any) -> RequestFacts:
    base = RequestFacts(
        principal_arn=ALICE,
        principal_account=OWNER,
        principal_type="User",
        principal_role_arn=None,
        action=READ,
        resource=SECRET,
        resource_account=OWNER,
        context={},
    )
    return dataclasses.replace(base, **changes)


def bob(**changes: Any) -> RequestFacts:
    return facts(principal_arn=BOB, principal_account=OTHER, **changes)


def doc(kind: str, *statements: dict[str, Any]) -> PolicyDocument:
    text = json.dumps({"Version": "2012-10-17", "Statement": list(statements)})
    return parse_policy(text, kind)  # type: ignore[arg-type]


def allow(**extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": READ, "Resource": "*", **extra}


def deny(**extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": READ, "Resource": "*", **extra}


IDENTITY_ALLOWS = doc("identity", allow())
NAMES_ALICE = doc("key", allow(Principal={"AWS": ALICE}))
NAMES_OWNER = doc("key", allow(Principal={"AWS": f"arn:aws:iam::{OWNER}:root"}))
NAMES_BOB = doc("key", allow(Principal={"AWS": BOB}))
NAMES_OTHER = doc("key", allow(Principal={"AWS": OTHER}))


@pytest.mark.parametrize(
    ("resource", "identity", "f", "allowed", "detail"),
    [
        # same account: either side suffices, the account statement delegates
        (None, [IDENTITY_ALLOWS], facts(), True, "identity-based"),
        (None, [], facts(), False, "because no identity-based policy allows"),
        (NAMES_ALICE, [], facts(), True, "resource policy"),
        (NAMES_OWNER, [], facts(), False, "because no identity-based policy allows"),
        (NAMES_OWNER, [IDENTITY_ALLOWS], facts(), True, "identity-based"),
        (None, [], facts(principal_arn=f"arn:aws:iam::{OWNER}:root", principal_type="Account"),
         True, "identity-based"),
        # another account: both sides
        (None, [IDENTITY_ALLOWS], bob(), False, "because no resource-based policy allows"),
        (NAMES_BOB, [], bob(), False, "because no identity-based policy allows"),
        (NAMES_BOB, [IDENTITY_ALLOWS], bob(), True, "resource policy"),
        (NAMES_OTHER, [IDENTITY_ALLOWS], bob(), True, "resource policy"),
        (NAMES_ALICE, [IDENTITY_ALLOWS], bob(), False, "because no resource-based policy allows"),
        # explicit denies win wherever they are
        (doc("key", deny(Principal="*")), [IDENTITY_ALLOWS], facts(), False,
         "explicit deny in a resource-based policy"),
        (NAMES_ALICE, [doc("identity", deny())], facts(), False,
         "explicit deny in an identity-based policy"),
    ],
)  # fmt: skip
def test_decisions(
    resource: PolicyDocument | None,
    identity: list[PolicyDocument],
    f: RequestFacts,
    allowed: bool,
    detail: str,
) -> None:
    decision = evaluate_with_resource_policy(
        resource, identity, f, is_root=f.principal_type == "Account"
    )
    assert decision.allowed is allowed
    assert detail in decision.detail


def test_session_policy_caps_identity_and_entity_grants() -> None:
    session = [doc("session", {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"})]
    role = f"arn:aws:iam::{OWNER}:role/reader"
    f = facts(
        principal_arn=f"arn:aws:sts::{OWNER}:assumed-role/reader/s1",
        principal_type="AssumedRole",
        principal_role_arn=role,
    )
    names_role = doc("key", allow(Principal={"AWS": role}))
    capped = evaluate_with_resource_policy(names_role, [IDENTITY_ALLOWS], f,
                                           session_policies=session)  # fmt: skip
    assert not capped.allowed
    assert "because no session policy allows" in capped.detail
    names_session = doc("key", allow(Principal={"AWS": f.principal_arn}))
    direct = evaluate_with_resource_policy(names_session, [], f, session_policies=session)
    assert direct.allowed


def stmt(principal: Any, condition: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    out = {"Effect": "Allow", "Principal": principal, "Action": READ, "Resource": "*", **extra}
    if condition is not None:
        out["Condition"] = condition
    return out


@pytest.mark.parametrize(
    ("statement", "broad"),
    [
        (stmt("*"), True),
        (stmt({"AWS": "*"}), True),
        (stmt({"AWS": ["*", BOB]}), True),
        (stmt({"Service": "*"}), True),
        (stmt({"AWS": BOB}), False),
        (stmt({"AWS": OTHER}), False),
        ({"Effect": "Allow", "NotPrincipal": {"AWS": BOB}, "Action": READ, "Resource": "*"}, True),
        ({**stmt("*"), "Effect": "Deny"}, False),
        (stmt("*", {"StringEquals": {"aws:PrincipalAccount": OWNER}}), False),
        (stmt("*", {"StringEquals": {"aws:PrincipalOrgID": "o-abc123"}}), False),
        (stmt("*", {"StringLike": {"aws:PrincipalOrgID": "o-*"}}), True),
        (stmt("*", {"StringEqualsIfExists": {"aws:PrincipalAccount": OWNER}}), True),
        (stmt("*", {"StringNotEquals": {"aws:PrincipalAccount": OWNER}}), True),
        (stmt("*", {"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{OWNER}:role/*"}}), False),
        (stmt("*", {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/x"}}), True),
        (stmt("*", {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}), False),
        (stmt("*", {"IpAddress": {"aws:SourceIp": "0.0.0.0/1"}}), True),
        (stmt("*", {"StringEquals": {"aws:userid": "AROAEXAMPLE:*"}}), False),
        (stmt("*", {"StringLike": {"aws:userid": "*:alice"}}), True),
        (stmt("*", {"StringEquals": {"secretsmanager:VersionStage": "AWSCURRENT"}}), True),
        (stmt("*", {"ForAllValues:StringEquals": {"aws:PrincipalAccount": OWNER}}), True),
        (stmt("*", {"StringEquals": {"aws:PrincipalAccount": "${aws:username}"}}), True),
    ],
)  # fmt: skip
def test_broad_access(statement: dict[str, Any], broad: bool) -> None:
    document = {"Version": "2012-10-17", "Statement": [{"Sid": "S", **statement}]}
    assert broad_statements(document) == (["S"] if broad else [])


def test_broad_access_names_statements_without_sid_by_position() -> None:
    document = {"Statement": [stmt({"AWS": BOB}), stmt("*")]}
    assert broad_statements(document) == ["#1"]
    assert broad_statements({"Statement": stmt("*")}) == ["#0"]
    assert broad_statements([1, 2]) == []
