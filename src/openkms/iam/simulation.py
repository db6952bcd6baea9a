"""IAM's policy simulator (SimulatePrincipalPolicy, SimulateCustomPolicy): which statements of
which policies decide each action on each resource, and which condition keys those statements
needed that the request did not supply.

Identity policies only, as IAM evaluates them: an applicable Deny statement decides
``explicitDeny``, else an applicable Allow ``allowed``, else ``implicitDeny``. The statements
reported in ``MatchedStatements`` are the ones that decided (every applicable Deny, or every
applicable Allow), each with its policy and its position in the policy text. A role is simulated
as its sessions are seen (``aws:PrincipalType`` ``AssumedRole``, ``aws:PrincipalArn`` the
role's ARN); a user as the user, with its groups' policies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from openkms.iam.store import IamStore
from openkms.policy import document as _document
from openkms.policy import evaluate as _evaluate

# IAM's PolicySourceType values.
INLINE_TYPES = {"user": "user", "group": "group", "role": "role"}


@dataclass(frozen=True, slots=True)
class SourcePolicy:
    policy_id: str  # SourcePolicyId: the policy's name, or PolicyInputList.N
    policy_type: str  # SourcePolicyType: user | group | role | user-managed | aws-managed | none
    text: str


@dataclass(frozen=True, slots=True)
class SimulatedPrincipal:
    arn: str
    account_id: str
    principal_type: str  # "User" | "AssumedRole"
    role_arn: str | None
    keys: Mapping[str, tuple[str, ...]]  # condition keys the simulator fills in itself


def entity_sources(store: IamStore, kind: str, name: str) -> list[SourcePolicy]:
    """The inline and attached managed policies of a user (with its groups'), group or role."""
    sources = _own_sources(store, kind, name)
    if kind == "user":
        for group in store.group_names_of(name):
            sources += _own_sources(store, "group", group)
    return sources


def _own_sources(store: IamStore, kind: str, name: str) -> list[SourcePolicy]:
    sources = [
        SourcePolicy(p.name, INLINE_TYPES[kind], p.document)
        for p in store.inline_policies(kind, name)
    ]
    for attachment in store.attachments(kind, name):
        policy = store.policy_by_arn(attachment.policy_arn)
        document = store.default_document(policy) if policy is not None else None
        if policy is not None and document is not None:
            managed = "aws-managed" if ":aws:policy/" in policy.arn else "user-managed"
            sources.append(SourcePolicy(policy.name, managed, document))
    return sources


def input_sources(texts: Sequence[str]) -> list[SourcePolicy]:
    return [SourcePolicy(f"PolicyInputList.{i}", "none", t) for i, t in enumerate(texts, 1)]


def simulate(
    sources: Sequence[SourcePolicy],
    principal: SimulatedPrincipal,
    actions: Sequence[str],
    resources: Sequence[str],
    context: Mapping[str, Sequence[str]],
) -> list[dict[str, Any]]:
    """One EvaluationResult per (action, resource), in request order."""
    keys = dict(principal.keys)
    keys.update({k.lower(): tuple(v) for k, v in context.items()})
    parsed = []
    for source in sources:
        try:
            document = _document.parse_policy_cached(source.text, "identity")
        except _document.PolicyError:
            # Stored policies were validated when written (PolicyInputList just now); one that
            # no longer parses grants nothing, as in authorization (iam/authz.py).
            continue
        parsed.append((source, document, _spans(source.text)))
    results = []
    for action in actions:
        for resource in resources:
            facts = _evaluate.RequestFacts(
                principal_arn=principal.arn,
                principal_account=principal.account_id,
                principal_type=principal.principal_type,
                principal_role_arn=principal.role_arn,
                action=action,
                resource=resource,
                resource_account=_account_of(resource),
                context=keys,
            )
            results.append(_one(parsed, facts, action, resource))
    return results


def _one(
    parsed: Sequence[tuple[SourcePolicy, Any, list[tuple[int, int, int, int]]]],
    facts: _evaluate.RequestFacts,
    action: str,
    resource: str,
) -> dict[str, Any]:
    allows: list[dict[str, Any]] = []
    denies: list[dict[str, Any]] = []
    missing: list[str] = []
    for source, policy, spans in parsed:
        for index, stmt in enumerate(policy.statements):
            if not stmt.effective or not _evaluate.statement_targets(stmt, facts):
                continue
            for condition in stmt.conditions:
                if condition.key not in facts.context and condition.key not in missing:
                    missing.append(condition.key)
            if not _evaluate.statement_applies(stmt, facts):
                continue
            matched = _matched(source, spans[index] if index < len(spans) else None)
            (allows if stmt.allow else denies).append(matched)
    if denies:
        decision, statements = "explicitDeny", denies
    elif allows:
        decision, statements = "allowed", allows
    else:
        decision, statements = "implicitDeny", []
    return {
        "EvalActionName": action,
        "EvalResourceName": resource,
        "EvalDecision": decision,
        "MatchedStatements": statements,
        "MissingContextValues": missing,
    }


def _matched(source: SourcePolicy, span: tuple[int, int, int, int] | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "SourcePolicyId": source.policy_id,
        "SourcePolicyType": source.policy_type,
    }
    if span is not None:
        out["StartPosition"] = {"Line": span[0], "Column": span[1]}
        out["EndPosition"] = {"Line": span[2], "Column": span[3]}
    return out


def _account_of(arn: str) -> str | None:
    parts = arn.split(":", 5)
    return parts[4] if len(parts) == 6 and parts[4] else None


def _spans(text: str) -> list[tuple[int, int, int, int]]:
    """(start line, start column, end line, end column), 1-based, of each statement object of
    the policy ``text``, in order: the positions IAM reports in MatchedStatements."""
    offsets = _statement_offsets(text)
    return [(*_line_col(text, start), *_line_col(text, end)) for start, end in offsets]


def _line_col(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _statement_offsets(text: str) -> list[tuple[int, int]]:
    """Start and end offsets of the objects under the top-level "Statement" key (a list of
    objects, or one object). The text is valid JSON (it parsed)."""
    depth = 0
    i = 0
    n = len(text)
    key: str | None = None
    in_statement = False
    statement_depth = 0
    start = 0
    found: list[tuple[int, int]] = []
    while i < n:
        ch = text[i]
        if ch == '"':
            end = _string_end(text, i)
            literal = text[i + 1 : end]
            if depth == 1 and not in_statement:
                key = literal
            i = end + 1
            continue
        if ch in "{[":
            depth += 1
            if depth == 2 and key == "Statement" and not in_statement:
                in_statement = True
                statement_depth = 2 if ch == "[" else 1
                if ch == "{":
                    start = i
            elif in_statement and ch == "{" and depth == statement_depth + 1:
                start = i
        elif ch in "}]":
            if in_statement and ch == "}" and depth == statement_depth + 1:
                found.append((start, i))
            depth -= 1
            if in_statement and depth < 2:
                in_statement = False
                key = None
        elif ch == "," and depth == 1:
            key = None
        i += 1
    return found


def _string_end(text: str, start: int) -> int:
    i = start + 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == '"':
            return i
        i += 1
    return len(text) - 1
