"""The decision: key policy, identity policies, session policies and grants together.

Pure functions of parsed documents and :class:`RequestFacts`. The order, following AWS's
"Policy evaluation logic" and KMS's "Determining access to a KMS key":

1. An applicable **Deny** in the key policy, any identity policy or any session policy wins
   (``explicit-deny``).
2. The **key policy** decides whether IAM may take part. A statement naming the caller itself
   (its user ARN, the role of its role session, the session ARN, ``"*"``, or a NotPrincipal
   that does not exclude it) allows directly; one naming only the caller's account delegates to
   the account's identity policies.
3. Same account: a direct key-policy allow suffices; an account-level allow needs an identity
   policy allow too (the account root passes that stage by itself).
   Cross account: any key-policy allow needs an identity policy allow of the caller's account.
4. **Session policies** cap what the identity policies allow, and what resource policies allow
   to the role (or user) behind a session; only a statement or grant naming the exact session
   ARN is not capped (IAM "Session policies").
5. Otherwise a **grant** may allow: its grantee names the caller (capped by session policies as
   in 4), the operation is listed and the constraints hold. A grant whose grantee is an account
   needs that account's identity policies to allow, like a key policy naming the account.
6. Nothing allowed: ``implicit-deny``.

``Decision.detail`` is the tail of AWS's AccessDenied message: "with an explicit deny in a
resource-based policy", "because no identity-based policy allows the kms:Decrypt action", ...
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from openkms.policy.conditions import conditions_match
from openkms.policy.document import PolicyDocument, Statement
from openkms.policy.facts import RequestFacts
from openkms.policy.grants import GrantFacts, constraints_allow, grantee_match
from openkms.policy.matching import MatchKind, match_principal, not_principal_applies

__all__ = [
    "Decision",
    "RequestFacts",
    "evaluate_identity",
    "evaluate_kms",
    "evaluate_trust",
    "scan_identity",
    "scan_resource",
    "statement_applies",
    "statement_targets",
]

_EC_PREFIX = "kms:encryptioncontext:"
_CONSTRAINT_FREE = frozenset({"DescribeKey", "RetireGrant", "CreateGrant"})


DenySource = Literal["key-policy", "identity-policy", "session-policy", "trust-policy"]


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: Literal["explicit-deny", "allowed", "implicit-deny"]
    deny_source: str | None  # DenySource, or None
    detail: str  # human-readable; for a denial, the tail of AWS's AccessDenied message


# --- statement scans -----------------------------------------------------------------------


def _applies(stmt: Statement, facts: RequestFacts) -> bool:
    """Action, Resource and Condition (not Principal) of an effective statement."""
    actions = stmt.actions
    assert actions is not None
    if actions.matches(facts.action, facts.context) == stmt.not_action:
        return False
    resources = stmt.resources
    if resources is not None and (
        resources.matches(facts.resource, facts.context) == stmt.not_resource
    ):
        return False
    return not stmt.conditions or conditions_match(stmt.conditions, facts.context)


def statement_targets(stmt: Statement, facts: RequestFacts) -> bool:
    """Action and Resource of an effective statement match (conditions not looked at): the
    statements whose condition keys IAM's simulator reports as missing."""
    actions = stmt.actions
    assert actions is not None
    if actions.matches(facts.action, facts.context) == stmt.not_action:
        return False
    resources = stmt.resources
    if resources is None:
        return True
    return resources.matches(facts.resource, facts.context) != stmt.not_resource


def statement_applies(stmt: Statement, facts: RequestFacts) -> bool:
    """Action, Resource and Condition of an effective statement match (Principal not looked at)."""
    return _applies(stmt, facts)


def _principal_kind(stmt: Statement, facts: RequestFacts) -> MatchKind:
    if stmt.principal is not None:
        return match_principal(stmt.principal, facts)
    if stmt.not_principal is not None:
        return (
            MatchKind.ENTITY if not_principal_applies(stmt.not_principal, facts) else MatchKind.NONE
        )
    return MatchKind.NONE


@dataclass(frozen=True, slots=True)
class ResourceScan:
    deny: Statement | None
    allow: MatchKind  # the most specific way an Allow statement named the caller
    allow_sid: str | None


def scan_resource(policy: PolicyDocument, facts: RequestFacts) -> ResourceScan:
    """Evaluate a resource-based policy (key or trust policy) against the request."""
    best = MatchKind.NONE
    best_sid: str | None = None
    for stmt in policy.statements:
        if not stmt.effective:
            continue
        if not stmt.allow:
            if _principal_kind(stmt, facts) is not MatchKind.NONE and _applies(stmt, facts):
                return ResourceScan(stmt, MatchKind.NONE, None)
            continue
        if best is MatchKind.SESSION:
            continue  # nothing more specific to find; keep looking for denies only
        kind = _principal_kind(stmt, facts)
        if kind > best and _applies(stmt, facts):
            best, best_sid = kind, stmt.sid
    return ResourceScan(None, best, best_sid)


@dataclass(frozen=True, slots=True)
class IdentityScan:
    deny: Statement | None
    allow: Statement | None


def scan_identity(policies: Sequence[PolicyDocument], facts: RequestFacts) -> IdentityScan:
    """Evaluate identity (or session) policies: the first applicable Deny, else an Allow."""
    allow: Statement | None = None
    for policy in policies:
        for stmt in policy.statements:
            if not stmt.effective:
                continue
            if stmt.allow:
                if allow is None and _applies(stmt, facts):
                    allow = stmt
            elif _applies(stmt, facts):
                return IdentityScan(stmt, None)
    return IdentityScan(None, allow)


# --- decisions -----------------------------------------------------------------------------


def _label_sid(sid: str | None) -> str:
    return f" (statement {sid!r})" if sid else ""


def _explicit(source: str) -> Decision:
    where = {
        "key-policy": "a resource-based policy",
        "trust-policy": "a resource-based policy",
        "identity-policy": "an identity-based policy",
        "session-policy": "a session policy",
    }[source]
    return Decision(False, "explicit-deny", source, f"with an explicit deny in {where}")


def _implicit(kind: str, action: str) -> Decision:
    return Decision(
        False, "implicit-deny", None, f"because no {kind} policy allows the {action} action"
    )


@dataclass(frozen=True, slots=True)
class _IdentityStage:
    deny: Decision | None
    identity_ok: bool  # identity policies (or root) allow, within the session policies
    session_ok: bool  # the session policies allow (True when there are none)
    identity_allow: bool  # identity policies (or root) allow, ignoring session policies


def _identity_stage(
    identity_policies: Sequence[PolicyDocument],
    session_policies: Sequence[PolicyDocument],
    facts: RequestFacts,
    is_root: bool,
) -> _IdentityStage:
    ident = scan_identity(identity_policies, facts)
    if ident.deny is not None:
        return _IdentityStage(_explicit("identity-policy"), False, False, False)
    session_ok = True
    if session_policies:
        sess = scan_identity(session_policies, facts)
        if sess.deny is not None:
            return _IdentityStage(_explicit("session-policy"), False, False, False)
        session_ok = sess.allow is not None
    identity_allow = is_root or ident.allow is not None
    return _IdentityStage(None, identity_allow and session_ok, session_ok, identity_allow)


def _resource_allows(kind: MatchKind, same_account: bool, stage: _IdentityStage) -> bool:
    if kind is MatchKind.NONE:
        return False
    if not same_account or kind is MatchKind.ACCOUNT:
        return stage.identity_ok
    if kind is MatchKind.SESSION:
        return True
    return stage.session_ok  # ENTITY: capped by the session policies


def _missing_stage(resource_kind: MatchKind, stage: _IdentityStage, action: str) -> Decision:
    if resource_kind is MatchKind.NONE:
        return _implicit("resource-based", action)
    if not stage.session_ok and (stage.identity_allow or resource_kind > MatchKind.ACCOUNT):
        return _implicit("session", action)
    return _implicit("identity-based", action)


def _encryption_context(facts: RequestFacts) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, values in facts.context.items():
        if key.startswith(_EC_PREFIX) and values:
            out[key[len(_EC_PREFIX) :]] = values[0]
    return out


def _operation(action: str) -> str | None:
    service, _, name = action.partition(":")
    return name if service.lower() == "kms" and name else None


def evaluate_kms(
    key_policy: PolicyDocument | None,
    identity_policies: Sequence[PolicyDocument],
    grants: Sequence[GrantFacts],
    facts: RequestFacts,
    *,
    session_policies: Sequence[PolicyDocument] = (),
    is_root: bool = False,
    encryption_context: Mapping[str, str] | None = None,
) -> Decision:
    """May the caller do ``facts.action`` on the key ``facts.resource``?

    ``encryption_context`` is the request's context for grant constraints; by default it is read
    back from the ``kms:encryptioncontext:<k>`` keys of ``facts.context`` (constraint keys are
    case-insensitive, so the lower-cased names lose nothing). For ``kms:CreateGrant`` pass only
    the grants of which the requested grant is a subset (:func:`is_subset_grant`).
    """
    action = facts.action
    scan = scan_resource(key_policy, facts) if key_policy is not None else None
    if scan is not None and scan.deny is not None:
        return _explicit("key-policy")
    stage = _identity_stage(identity_policies, session_policies, facts, is_root)
    if stage.deny is not None:
        return stage.deny
    same_account = (
        facts.resource_account is None or facts.resource_account == facts.principal_account
    )
    kind = scan.allow if scan is not None else MatchKind.NONE
    if _resource_allows(kind, same_account, stage):
        via = "its account in the key policy" if kind is MatchKind.ACCOUNT else "the key policy"
        sid = _label_sid(scan.allow_sid if scan is not None else None)
        return Decision(True, "allowed", None, f"allowed by {via}{sid}")
    operation = _operation(action)
    if operation is not None and grants:
        context = encryption_context
        for index, grant in enumerate(grants):
            if operation not in grant.operations:
                continue
            grant_kind = grantee_match(grant, facts)
            if grant_kind is MatchKind.NONE:
                continue
            if operation not in _CONSTRAINT_FREE:
                if context is None:
                    context = _encryption_context(facts)
                if not constraints_allow(grant.constraints, context):
                    continue
            if _resource_allows(grant_kind, True, stage):
                return Decision(True, "allowed", None, f"allowed by grant #{index}")
    return _missing_stage(kind, stage, action)


def evaluate_identity(
    identity_policies: Sequence[PolicyDocument],
    facts: RequestFacts,
    *,
    session_policies: Sequence[PolicyDocument] = (),
    is_root: bool = False,
) -> Decision:
    """Operations on no key (CreateKey, ListKeys, GenerateRandom, ...): identity policies,
    within the session policies; the account root is allowed unless explicitly denied."""
    stage = _identity_stage(identity_policies, session_policies, facts, is_root)
    if stage.deny is not None:
        return stage.deny
    if stage.identity_ok:
        return Decision(True, "allowed", None, "allowed by an identity-based policy")
    if stage.identity_allow:
        return _implicit("session", facts.action)
    return _implicit("identity-based", facts.action)


def evaluate_trust(
    trust_policy: PolicyDocument,
    facts: RequestFacts,
    *,
    identity_policies: Sequence[PolicyDocument] | None = None,
    session_policies: Sequence[PolicyDocument] = (),
    is_root: bool = False,
) -> Decision:
    """``sts:AssumeRole`` (and friends) against a role's trust policy.

    Without ``identity_policies`` only the trust policy is judged: any Allow naming the caller,
    directly or through its account, allows. With them, the full resource-policy rule applies:
    an Allow naming only the account, or any Allow across accounts, also needs the caller's
    identity policies to allow the action.
    """
    scan = scan_resource(trust_policy, facts)
    if scan.deny is not None:
        return _explicit("trust-policy")
    if identity_policies is None:
        if scan.allow is MatchKind.NONE:
            return _implicit("resource-based", facts.action)
        return Decision(
            True, "allowed", None, f"allowed by the trust policy{_label_sid(scan.allow_sid)}"
        )
    stage = _identity_stage(identity_policies, session_policies, facts, is_root)
    if stage.deny is not None:
        return stage.deny
    same_account = (
        facts.resource_account is None or facts.resource_account == facts.principal_account
    )
    if _resource_allows(scan.allow, same_account, stage):
        return Decision(
            True, "allowed", None, f"allowed by the trust policy{_label_sid(scan.allow_sid)}"
        )
    return _missing_stage(scan.allow, stage, facts.action)
