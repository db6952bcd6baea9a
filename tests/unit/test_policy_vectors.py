"""Every case of ``tests/vectors/policy/*.json`` (format: that directory's README.md).

The runner plays the caller's part: it turns the JSON policies into text for ``parse_policy``,
lower-cases condition-key names in the request context and derives the principal's account,
type and role from its ARN when a case does not state them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from openkms.policy.document import PolicyDocument, PolicyError, PolicyKind, parse_policy
from openkms.policy.evaluate import (
    Decision,
    RequestFacts,
    evaluate_identity,
    evaluate_kms,
    evaluate_trust,
)
from openkms.policy.grants import (
    GrantConstraints,
    GrantFacts,
    is_subset_grant,
    operations_valid_for_key,
)
from openkms.policy.lockout import lockout_check_passes

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "policy"
DEFAULT_ACCOUNT = "111122223333"


def default_key_policy(account: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Id": "key-default-1",
            "Statement": [
                {
                    "Sid": "Enable IAM User Permissions",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                }
            ],
        }
    )


def _merge(defaults: Mapping[str, Any], case: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(defaults)
    for key, value in case.items():
        if key == "facts" and isinstance(out.get("facts"), dict):
            out["facts"] = {**out["facts"], **value}
        else:
            out[key] = value
    return out


def load_cases() -> list[Any]:
    params = []
    for path in sorted(VECTORS.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        defaults = data.get("defaults", {})
        for case in data["cases"]:
            merged = _merge(defaults, case)
            params.append(pytest.param(merged, id=f"{path.stem}: {case['name']}"))
    return params


CASES = load_cases()


def test_at_least_150_cases() -> None:
    assert len(CASES) >= 150


def test_case_names_are_unique() -> None:
    ids = [p.id for p in CASES]
    assert len(ids) == len(set(ids))


def build_facts(raw: Mapping[str, Any]) -> RequestFacts:
    principal = raw["principal"]
    parts = principal.split(":", 5)
    is_arn = len(parts) == 6 and parts[0] == "arn"
    resource_part = parts[5] if is_arn else ""
    if "principal_type" in raw:
        ptype = raw["principal_type"]
    elif resource_part == "root":
        ptype = "Account"
    elif resource_part.startswith("user/"):
        ptype = "User"
    elif resource_part.startswith("assumed-role/"):
        ptype = "AssumedRole"
    elif resource_part.startswith("federated-user/"):
        ptype = "FederatedUser"
    else:
        raise AssertionError(f"cannot infer the principal type of {principal}")
    account = raw.get("principal_account", parts[4] if is_arn else "")
    role = raw.get("principal_role_arn")
    if role is None and ptype == "AssumedRole":
        role_name = resource_part.split("/")[1]
        role = f"arn:{parts[1]}:iam::{account}:role/{role_name}"
    resource = raw["resource"]
    if "resource_account" in raw:
        resource_account = raw["resource_account"]
    elif resource.startswith("arn:"):
        resource_account = resource.split(":", 5)[4]
    else:
        resource_account = None
    context: dict[str, tuple[str, ...]] = {}
    for key, value in raw.get("context", {}).items():
        context[key.lower()] = tuple(value) if isinstance(value, list) else (value,)
    return RequestFacts(
        principal_arn=principal,
        principal_account=account,
        principal_type=ptype,
        principal_role_arn=role,
        action=raw["action"],
        resource=resource,
        resource_account=resource_account,
        context=context,
        principal_id=raw.get("principal_id"),
    )


def doc(policy: Any, kind: PolicyKind, account: str = DEFAULT_ACCOUNT) -> PolicyDocument:
    if policy == "default":
        return parse_policy(default_key_policy(account), kind)
    text = policy if isinstance(policy, str) else json.dumps(policy)
    return parse_policy(text, kind)


def grant(raw: Mapping[str, Any]) -> GrantFacts:
    constraints = None
    if "constraints" in raw:
        c = raw["constraints"]
        constraints = GrantConstraints(
            encryption_context_equals=c.get("encryption_context_equals"),
            encryption_context_subset=c.get("encryption_context_subset"),
        )
    return GrantFacts(
        grantee_principal=raw["grantee"],
        operations=frozenset(raw["operations"]),
        constraints=constraints,
        retiring_principal=raw.get("retiring_principal"),
        grantee_id=raw.get("grantee_id"),
    )


def check_decision(decision: Decision, case: Mapping[str, Any]) -> None:
    expect = case["expect"]
    assert decision.reason == expect, decision
    assert decision.allowed == (expect == "allowed"), decision
    if "deny_source" in case:
        assert decision.deny_source == case["deny_source"], decision
    if expect != "explicit-deny":
        assert decision.deny_source is None, decision
    if "detail_contains" in case:
        assert case["detail_contains"] in decision.detail, decision


@pytest.mark.parametrize("case", CASES)
def test_vector(case: dict[str, Any]) -> None:
    if "parse" in case or "parse_text" in case:
        source = case.get("parse_text", case.get("parse"))
        text = source if isinstance(source, str) else json.dumps(source)
        expected_error = case["expect_error"]
        if expected_error is None:
            parse_policy(text, case["kind"])
        else:
            with pytest.raises(PolicyError) as info:
                parse_policy(text, case["kind"])
            assert expected_error in info.value.message
        return
    if "subset_grant" in case:
        raw = case["subset_grant"]
        assert is_subset_grant(grant(raw["parent"]), grant(raw["child"])) is case["expect"]
        return
    if "grant_operations" in case:
        raw = case["grant_operations"]
        message = operations_valid_for_key(raw["operations"], raw["key_spec"], raw["key_usage"])
        if case["expect_error"] is None:
            assert message is None
        else:
            assert message is not None and case["expect_error"] in message
        return

    facts = build_facts(case["facts"])
    key_account = facts.resource_account or DEFAULT_ACCOUNT
    identity = [doc(p, "identity") for p in case.get("identity_policies", [])]
    session = [doc(p, "session") for p in case.get("session_policies", [])]
    is_root = bool(case.get("is_root", False))

    if "lockout" in case:
        passes = lockout_check_passes(
            doc(case["lockout"], "key", key_account),
            facts,
            identity,
            is_root=is_root,
            session_policies=session,
        )
        assert passes is case["expect"]
        return

    mode = case.get("evaluate", "kms")
    if mode == "identity":
        decision = evaluate_identity(identity, facts, session_policies=session, is_root=is_root)
    elif mode == "trust":
        decision = evaluate_trust(
            doc(case["trust_policy"], "trust"),
            facts,
            identity_policies=identity if "identity_policies" in case else None,
            session_policies=session,
            is_root=is_root,
        )
    else:
        key_policy = case.get("key_policy")
        decision = evaluate_kms(
            doc(key_policy, "key", key_account) if key_policy is not None else None,
            identity,
            [grant(g) for g in case.get("grants", [])],
            facts,
            session_policies=session,
            is_root=is_root,
            encryption_context=case.get("encryption_context"),
        )
    check_decision(decision, case)
