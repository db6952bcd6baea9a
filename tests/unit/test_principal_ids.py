"""The pure half of binding IAM users and roles to their unique ids (openkms.policy.principal_ids),
and the parser and matcher reading ids in place of ARNs."""

from __future__ import annotations

import json

from openkms.policy.document import parse_policy
from openkms.policy.evaluate import RequestFacts
from openkms.policy.matching import MatchKind, match_principal, not_principal_applies
from openkms.policy.principal_ids import (
    entity_principals,
    id_principals,
    substitute_principals,
)

A = "111122223333"
ALICE = f"arn:aws:iam::{A}:user/alice"
DEPLOYER = f"arn:aws:iam::{A}:role/ci/deployer"
ALICE_ID = "AIDAALICEALICEALICE1"
DEPLOYER_ID = "AROADEPLOYERDEPLOYER1"

POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": [f"arn:aws:iam::{A}:root", ALICE, DEPLOYER]},
                "Action": "kms:*",
                "Resource": "*",
                "Condition": {"ArnEquals": {"aws:PrincipalArn": ALICE}},
            },
            {
                "Effect": "Deny",
                "NotPrincipal": {"AWS": ALICE, "Service": "logs.amazonaws.com"},
                "Action": "kms:Decrypt",
                "Resource": "*",
            },
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:sts::{A}:assumed-role/deployer/s1"},
                "Action": "kms:Encrypt",
                "Resource": "*",
            },
        ],
    }
)


def _facts(arn: str, principal_id: str | None, ptype: str = "User") -> RequestFacts:
    return RequestFacts(
        principal_arn=arn,
        principal_account=A,
        principal_type=ptype,
        principal_role_arn=None,
        action="kms:Decrypt",
        resource="*",
        resource_account=A,
        context={},
        principal_id=principal_id,
    )


def test_users_and_roles_named_as_principals_are_found_once() -> None:
    assert entity_principals(POLICY) == [ALICE, DEPLOYER]
    assert id_principals(POLICY) == []


def test_substitution_replaces_principals_only() -> None:
    bound = json.loads(substitute_principals(POLICY, {ALICE: ALICE_ID, DEPLOYER: DEPLOYER_ID}))
    first, second, third = bound["Statement"]
    assert first["Principal"]["AWS"] == [f"arn:aws:iam::{A}:root", ALICE_ID, DEPLOYER_ID]
    assert second["NotPrincipal"] == {"AWS": ALICE_ID, "Service": "logs.amazonaws.com"}
    # A condition naming the ARN is about aws:PrincipalArn, not a principal: it stays.
    assert first["Condition"] == {"ArnEquals": {"aws:PrincipalArn": ALICE}}
    assert third == json.loads(POLICY)["Statement"][2]
    assert id_principals(json.dumps(bound)) == [ALICE_ID, DEPLOYER_ID, ALICE_ID]


def test_nothing_to_substitute_keeps_the_text_as_written() -> None:
    assert substitute_principals(POLICY, {}) is POLICY
    unrelated = {"arn:aws:iam::1:user/x": "AIDAXXXXXXXXXXXXXXXX"}
    assert substitute_principals(POLICY, unrelated) is POLICY


def test_a_bound_policy_matches_by_unique_id_not_by_name() -> None:
    document = parse_policy(substitute_principals(POLICY, {ALICE: ALICE_ID}), "key")
    spec = document.statements[0].principal
    assert spec is not None
    assert match_principal(spec, _facts(ALICE, ALICE_ID)) is MatchKind.ENTITY
    # Same ARN, new unique id: named only through the account.
    assert match_principal(spec, _facts(ALICE, "AIDAALICEALICEALICE2")) is MatchKind.ACCOUNT
    not_spec = document.statements[1].not_principal
    assert not_spec is not None
    assert not_principal_applies(not_spec, _facts(ALICE, "AIDAALICEALICEALICE2"))


def test_a_role_bound_by_id_names_its_sessions() -> None:
    document = parse_policy(substitute_principals(POLICY, {DEPLOYER: DEPLOYER_ID}), "key")
    spec = document.statements[0].principal
    assert spec is not None
    session = f"arn:aws:sts::{A}:assumed-role/deployer/s9"
    assert match_principal(spec, _facts(session, DEPLOYER_ID, "AssumedRole")) is MatchKind.ENTITY
    other = _facts(session, "AROADEPLOYERDEPLOYER2", "AssumedRole")
    assert match_principal(spec, other) is MatchKind.ACCOUNT
