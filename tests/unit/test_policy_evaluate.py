"""The evaluator's API: decisions, AccessDenied message tails, grants and the lockout check."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from openkms.policy.document import PolicyDocument, parse_policy
from openkms.policy.evaluate import Decision, RequestFacts, evaluate_kms
from openkms.policy.grants import GrantConstraints, GrantFacts, grant_allows, grantee_match
from openkms.policy.lockout import lockout_check_passes
from openkms.policy.matching import MatchKind

ACCOUNT = "111122223333"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"
DEFAULT_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Id": "key-default-1",
        "Statement": [
            {
                "Sid": "Enable IAM User Permissions",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": "kms:*",
                "Resource": "*",
            }
        ],
    }
)


def facts(**changes: Any) -> RequestFacts:
    base = RequestFacts(
        principal_arn=ALICE,
        principal_account=ACCOUNT,
        principal_type="User",
        principal_role_arn=None,
        action="kms:Decrypt",
        resource=KEY,
        resource_account=ACCOUNT,
        context={},
    )
    return dataclasses.replace(base, **changes)


def identity(*statements: dict[str, Any]) -> PolicyDocument:
    return parse_policy(
        json.dumps({"Version": "2012-10-17", "Statement": list(statements)}), "identity"
    )


def access_denied(f: RequestFacts, decision: Decision) -> str:
    """How the KMS layer is expected to build AWS's AccessDenied message."""
    return (
        f"User: {f.principal_arn} is not authorized to perform: {f.action} on resource: "
        f"{f.resource} {decision.detail}"
    )


def test_access_denied_messages_read_like_aws() -> None:
    key_policy = parse_policy(DEFAULT_POLICY, "key")
    f = facts()
    decision = evaluate_kms(key_policy, [], [], f)
    assert access_denied(f, decision) == (
        f"User: {ALICE} is not authorized to perform: kms:Decrypt on resource: {KEY} "
        "because no identity-based policy allows the kms:Decrypt action"
    )
    deny = identity({"Effect": "Deny", "Action": "kms:*", "Resource": "*"})
    decision = evaluate_kms(key_policy, [deny], [], f)
    assert decision == Decision(
        False,
        "explicit-deny",
        "identity-policy",
        "with an explicit deny in an identity-based policy",
    )


def test_allowed_detail_names_the_statement() -> None:
    key_policy = parse_policy(DEFAULT_POLICY, "key")
    allow = identity({"Effect": "Allow", "Action": "kms:Decrypt", "Resource": KEY})
    decision = evaluate_kms(key_policy, [allow], [], facts())
    assert decision.allowed and decision.reason == "allowed" and decision.deny_source is None
    assert "Enable IAM User Permissions" in decision.detail


def test_evaluation_is_repeatable_and_pure() -> None:
    key_policy = parse_policy(DEFAULT_POLICY, "key")
    allow = identity({"Effect": "Allow", "Action": "kms:*", "Resource": "*"})
    context = {"aws:sourceip": ("203.0.113.1",)}
    f = facts(context=context)
    first = evaluate_kms(key_policy, [allow], [], f)
    for _ in range(3):
        assert evaluate_kms(key_policy, [allow], [], f) == first
    assert context == {"aws:sourceip": ("203.0.113.1",)}


def test_request_facts_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        facts().action = "kms:Encrypt"  # type: ignore[misc]


def test_grant_allows_accepts_both_operation_spellings() -> None:
    grant = GrantFacts(ALICE, frozenset({"Decrypt"}))
    assert grant_allows(grant, "Decrypt", facts(), None)
    assert grant_allows(grant, "kms:Decrypt", facts(), None)
    assert not grant_allows(grant, "kms:Encrypt", facts(), None)


def test_create_grant_constraints_are_checked_on_the_child_not_here() -> None:
    grant = GrantFacts(
        ALICE,
        frozenset({"CreateGrant", "Decrypt"}),
        GrantConstraints(encryption_context_equals={"a": "1"}),
    )
    assert grant_allows(grant, "CreateGrant", facts(action="kms:CreateGrant"), None)
    assert not grant_allows(grant, "Decrypt", facts(), {"a": "2"})


def test_grantee_match_kinds() -> None:
    session = facts(
        principal_arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/App/s1",
        principal_type="AssumedRole",
        principal_role_arn=f"arn:aws:iam::{ACCOUNT}:role/App",
    )
    assert (
        grantee_match(GrantFacts(session.principal_arn, frozenset()), session) is MatchKind.SESSION
    )
    assert grantee_match(GrantFacts(f"arn:aws:iam::{ACCOUNT}:role/app", frozenset()), session) is (
        MatchKind.ENTITY
    )
    assert grantee_match(GrantFacts(ACCOUNT, frozenset()), session) is MatchKind.ACCOUNT
    assert grantee_match(GrantFacts(f"arn:aws:iam::{ACCOUNT}:root", frozenset()), session) is (
        MatchKind.ACCOUNT
    )
    assert grantee_match(GrantFacts("arn:aws:iam::444455556666:root", frozenset()), session) is (
        MatchKind.NONE
    )


def test_lockout_check_forces_put_key_policy() -> None:
    policy = parse_policy(
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": ALICE},
                        "Action": "kms:PutKeyPolicy",
                        "Resource": "*",
                    }
                ],
            }
        ),
        "key",
    )
    assert lockout_check_passes(policy, facts(action="kms:CreateKey"), [], is_root=False)
    assert not lockout_check_passes(
        policy, facts(principal_arn=f"arn:aws:iam::{ACCOUNT}:user/bob"), [], is_root=False
    )
