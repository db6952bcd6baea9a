"""What a secret's resource policy may say: the checks of PutResourcePolicy and
ValidateResourcePolicy, pure functions of the policy text.

AWS describes three checks (ValidateResourcePolicy): the grammar, broad access (Zelkova there,
``policy.public_access`` here) and that the policy does not lock the caller out. On top of the
grammar that every resource-based policy shares (``policy.document``, kind ``key``: every
statement names a Principal), a secret's policy may name only Secrets Manager actions
(``secretsmanager:<Operation>``, with wildcards, or ``*``) and only secrets as resources
(``*``, meaning this secret, or a ``secretsmanager`` secret ARN pattern): anything else could
never apply to the secret it is attached to, and is refused rather than silently ignored.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from openkms.policy.document import PolicyDocument, PolicyError, parse_policy_cached
from openkms.policy.public_access import broad_statements

__all__ = [
    "MAX_POLICY_CHARS",
    "PolicyCheck",
    "check_policy",
    "parse_secret_policy",
]

MAX_POLICY_CHARS = 20_480  # NonEmptyResourcePolicyType

# AWS's message for a policy it cannot accept (MalformedPolicyDocumentException); the detail
# of what is wrong follows it, as openkms's own addition.
SYNTAX_MESSAGE = "This policy has invalid syntax."
PUBLIC_MESSAGE = (
    "The BlockPublicPolicy parameter is set to true, and the resource policy did not prevent "
    "broad access to the secret."
)

# Every operation of the service (botocore 1.44.8's secretsmanager model), as IAM actions.
ACTIONS = frozenset(
    name.lower()
    for name in (
        "AssociateCrossAccountReplica", "BatchGetSecretValue", "CancelRotateSecret",
        "CreateSecret", "DeleteResourcePolicy", "DeleteSecret", "DescribeSecret",
        "DisassociateCrossAccountReplica", "GetRandomPassword", "GetResourcePolicy",
        "GetSecretValue", "ListResourcePolicies", "ListSecretVersionIds", "ListSecrets",
        "PutResourcePolicy", "PutSecretValue", "RemoveRegionsFromReplication",
        "ReplicateSecretToRegions", "RestoreSecret", "RotateSecret",
        "StopReplicationToReplica", "TagResource", "UntagResource", "UpdateSecret",
        "UpdateSecretVersionStage", "ValidateResourcePolicy",
    )
)  # fmt: skip
_SECRET_ARN = re.compile(r"^arn:[^:]+:secretsmanager:[^:]*:[^:]*:secret:.+$")


@dataclass(frozen=True, slots=True)
class PolicyCheck:
    """One failed check: ``name`` is ValidateResourcePolicy's CheckName."""

    name: str
    message: str


def parse_secret_policy(text: str) -> PolicyDocument:
    """The policy as the evaluator reads it; raises :class:`PolicyError` (grammar only)."""
    return parse_policy_cached(text, "key")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _action_ok(action: str) -> bool:
    if action == "*":
        return True
    service, _, name = action.partition(":")
    if service.lower() != "secretsmanager":
        return False
    if "*" in name or "?" in name:
        return True  # a wildcard may match some operation; the evaluator matches it at run time
    return name.lower() in ACTIONS


def _resource_ok(resource: str) -> bool:
    return resource == "*" or bool(_SECRET_ARN.match(resource))


def _secret_scope(raw: dict[str, Any]) -> list[PolicyCheck]:
    out: list[PolicyCheck] = []
    statements = raw.get("Statement")
    for index, stmt in enumerate(_as_list(statements)):
        if not isinstance(stmt, dict):
            continue
        label = stmt.get("Sid") or f"#{index}"
        for element in ("Action", "NotAction"):
            for action in _as_list(stmt.get(element, [])):
                if isinstance(action, str) and not _action_ok(action):
                    out.append(PolicyCheck(
                        "SECRET_ACTION_CHECK",
                        f"Statement {label}: the action {action} does not apply to a secret; "
                        "a secret's policy names secretsmanager actions.",
                    ))  # fmt: skip
        for element in ("Resource", "NotResource"):
            for resource in _as_list(stmt.get(element, [])):
                if isinstance(resource, str) and not _resource_ok(resource):
                    out.append(PolicyCheck(
                        "SECRET_RESOURCE_CHECK",
                        f"Statement {label}: the resource {resource} is not a secret; use \"*\" "
                        "(this secret) or a secretsmanager secret ARN.",
                    ))  # fmt: skip
    return out


def check_policy(text: str) -> tuple[PolicyDocument | None, list[PolicyCheck], list[str]]:
    """(the parsed document or None, the failed grammar and scope checks, the statements that
    grant broad access). The grammar's own failure is the single check when there is one."""
    if len(text) > MAX_POLICY_CHARS:
        return (
            None,
            [PolicyCheck("SYNTAX_CHECK", "The policy is longer than 20480 characters.")],
            [],
        )
    try:
        document = parse_secret_policy(text)
    except PolicyError as exc:
        return None, [PolicyCheck("SYNTAX_CHECK", exc.message)], []
    raw = json.loads(text)
    return document, _secret_scope(raw), broad_statements(raw)
