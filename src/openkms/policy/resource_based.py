"""The decision for services whose resource policy is optional (Secrets Manager's secrets).

KMS is the exception among AWS services: a key's policy must let IAM take part. Everywhere else,
and for a secret, IAM's general rule holds (IAM "Policy evaluation logic", "Cross-account policy
evaluation logic"):

1. An applicable **Deny** in the resource policy, an identity policy or a session policy wins.
2. **Same account**: an identity policy allow (within the session policies) suffices, with or
   without a resource policy; a resource-policy statement naming the caller itself (its user or
   role ARN, its session ARN, ``"*"``) also allows on its own, while one naming only the
   account delegates to the identity policies (as a key policy's account statement does).
3. **Another account**: the resource policy must allow the caller (by name or by its account)
   *and* the caller's own identity policies must allow.
4. Otherwise ``implicit-deny``, with AWS's wording of what was missing.

Pure: the caller gathers the documents and the facts (``secretsmanager``'s access module).
"""

from __future__ import annotations

from collections.abc import Sequence

from openkms.policy.document import PolicyDocument
from openkms.policy.evaluate import Decision, scan_identity, scan_resource
from openkms.policy.facts import RequestFacts
from openkms.policy.matching import MatchKind

__all__ = ["evaluate_with_resource_policy"]


def _deny(where: str) -> Decision:
    return Decision(False, "explicit-deny", where, f"with an explicit deny in {_WHERE[where]}")


_WHERE = {
    "resource-policy": "a resource-based policy",
    "identity-policy": "an identity-based policy",
    "session-policy": "a session policy",
}


def _implicit(kind: str, action: str) -> Decision:
    return Decision(
        False, "implicit-deny", None, f"because no {kind} policy allows the {action} action"
    )


def evaluate_with_resource_policy(
    resource_policy: PolicyDocument | None,
    identity_policies: Sequence[PolicyDocument],
    facts: RequestFacts,
    *,
    session_policies: Sequence[PolicyDocument] = (),
    is_root: bool = False,
) -> Decision:
    """May the caller do ``facts.action`` on ``facts.resource`` (owned by
    ``facts.resource_account``), given the resource's optional policy?"""
    action = facts.action
    scan = scan_resource(resource_policy, facts) if resource_policy is not None else None
    if scan is not None and scan.deny is not None:
        return _deny("resource-policy")
    ident = scan_identity(identity_policies, facts)
    if ident.deny is not None:
        return _deny("identity-policy")
    session_ok = True
    if session_policies:
        sess = scan_identity(session_policies, facts)
        if sess.deny is not None:
            return _deny("session-policy")
        session_ok = sess.allow is not None
    # The account root of the resource's own account is the owner: it needs no identity policy
    # there. In another account it is just another caller whose account's root may delegate.
    identity_allow = is_root or ident.allow is not None
    identity_ok = identity_allow and session_ok
    kind = scan.allow if scan is not None else MatchKind.NONE
    same_account = (
        facts.resource_account is None or facts.resource_account == facts.principal_account
    )
    if same_account:
        if identity_ok:
            return Decision(True, "allowed", None, "allowed by an identity-based policy")
        if kind is MatchKind.SESSION:
            return Decision(True, "allowed", None, "allowed by the resource policy")
        if kind is MatchKind.ENTITY and session_ok:
            return Decision(True, "allowed", None, "allowed by the resource policy")
        if identity_allow or kind > MatchKind.ACCOUNT:
            return _implicit("session", action)
        return _implicit("identity-based", action)
    # Across accounts both sides must agree.
    if kind is MatchKind.NONE:
        return _implicit("resource-based", action)
    if identity_ok:
        return Decision(True, "allowed", None, "allowed by the resource policy")
    if identity_allow:
        return _implicit("session", action)
    return _implicit("identity-based", action)
