"""Authorization of IAM and STS calls: the one adapter between this package and the policy
evaluator (``openkms.policy.document`` / ``openkms.policy.evaluate``).

Everything else in ``openkms.iam`` calls ``validate_policy``, ``require`` and
``authorize_assume_role``; only ``_facts`` and ``_verdict`` know the shape of the evaluator's
``RequestFacts`` and ``Decision``.

- The account root may do everything in its own account (an explicit deny cannot name it: no
  identity policy attaches to the root).
- IAM users and role sessions need an identity policy that allows the ``iam:...`` action on the
  resource, within the session policy of a role session.
- ``sts:AssumeRole`` (and ``sts:TagSession`` when session tags are passed) must be allowed by
  the role's trust policy, and by the caller's identity policies unless, within one account,
  the trust policy names the caller itself. The account root cannot assume roles.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from openkms.iam import AccessDenied, MalformedPolicyDocument
from openkms.iam.principals import (
    identity_policies_for,
    principal_tags_for,
    session_policy_for,
)
from openkms.iam.sessions import load_session
from openkms.policy import document as _document
from openkms.policy import evaluate as _evaluate
from openkms.service.context import Principal, RequestContext
from openkms.storage.base import Storage

log = logging.getLogger("openkms.iam.authz")

IDENTITY = "identity"
SESSION = "session"
TRUST = "trust"

_PRINCIPAL_TYPES = {"root": "Account", "user": "User", "assumed-role": "AssumedRole"}


def validate_policy(text: str, kind: str = IDENTITY) -> None:
    """Raises MalformedPolicyDocument unless ``text`` is a valid policy of ``kind``
    (``identity``, ``session`` or ``trust``)."""
    try:
        _document.parse_policy(text, cast(Any, kind))
    except _document.PolicyError as exc:
        raise MalformedPolicyDocument(str(exc) or "Syntax errors in policy.") from exc


def _parsed(text: str, kind: str) -> Any:
    try:
        return _document.parse_policy_cached(text, cast(Any, kind))
    except _document.PolicyError:
        # Stored policies were validated when written; one that no longer parses grants nothing.
        log.warning("a stored %s policy no longer parses; it is ignored", kind)
        return None


def _parse_all(texts: Iterable[str], kind: str = IDENTITY) -> list[Any]:
    return [p for p in (_parsed(t, kind) for t in texts) if p is not None]


def _session_policies(storage: Storage, principal: Principal) -> list[Any]:
    text = session_policy_for(storage, principal)
    if text is None:
        return []
    parsed = _parsed(text, SESSION)
    # A session policy that no longer parses allows nothing (fail closed).
    return [parsed if parsed is not None else _parsed('{"Statement": []}', SESSION)]


def role_arn_of(storage: Storage, principal: Principal) -> str | None:
    """The IAM role ARN (with its path) behind an assumed-role session."""
    if principal.kind != "assumed-role":
        return None
    session = load_session(storage, principal.access_key_id)
    return None if session is None else session.role_arn


def _facts(
    storage: Storage,
    principal: Principal,
    action: str,
    resource: str,
    resource_account: str | None,
    context: Mapping[str, tuple[str, ...]],
) -> Any:
    """The evaluator's ``RequestFacts`` (the one place that knows its fields)."""
    return _evaluate.RequestFacts(
        principal_arn=principal.arn,
        principal_account=principal.account_id,
        principal_type=_PRINCIPAL_TYPES.get(principal.kind, "User"),
        principal_role_arn=role_arn_of(storage, principal),
        action=action,
        resource=resource,
        resource_account=resource_account,
        context=context,
        principal_id=principal.unique_id,
    )


def _verdict(decision: Any) -> tuple[str, str]:
    """(``allow`` | ``deny`` | ``implicit``, detail) of the evaluator's ``Decision``."""
    if decision.allowed:
        return "allow", str(decision.detail)
    verdict = "deny" if decision.reason == "explicit-deny" else "implicit"
    return verdict, str(decision.detail)


def request_context(
    storage: Storage,
    principal: Principal,
    ctx: RequestContext | None = None,
    extra: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, tuple[str, ...]]:
    """Condition keys (lower-cased) for a request by ``principal``."""
    context: dict[str, tuple[str, ...]] = {
        "aws:principalaccount": (principal.account_id,),
        "aws:principaltype": (_PRINCIPAL_TYPES.get(principal.kind, "User"),),
        "aws:userid": (principal.user_id,),
        "aws:principalarn": (principal.arn,),
        "aws:principalisawsservice": ("false",),
        "aws:viaawsservice": ("false",),
    }
    if principal.kind == "user":
        context["aws:username"] = (principal.arn.rsplit("/", 1)[-1],)
    role_arn = role_arn_of(storage, principal)
    if role_arn is not None:
        context["aws:principalarn"] = (role_arn,)  # AWS: the role's ARN for its sessions
    for key, value in principal_tags_for(storage, principal).items():
        context[f"aws:principaltag/{key.lower()}"] = (value,)
    if ctx is not None:
        moment = datetime.fromtimestamp(ctx.now, UTC)
        context["aws:currenttime"] = (moment.strftime("%Y-%m-%dT%H:%M:%SZ"),)
        context["aws:epochtime"] = (str(int(ctx.now)),)
        context["aws:securetransport"] = ("true" if ctx.secure_transport else "false",)
        if ctx.source_ip:
            context["aws:sourceip"] = (ctx.source_ip,)
        if ctx.region:
            context["aws:requestedregion"] = (ctx.region,)
    for key, values in (extra or {}).items():
        context[key.lower()] = tuple(values)
    return context


def _account_of(arn: str) -> str | None:
    parts = arn.split(":", 5)
    return parts[4] if len(parts) == 6 and parts[4] else None


def evaluate(
    storage: Storage,
    ctx: RequestContext,
    action: str,
    resource: str,
    extra: Mapping[str, Sequence[str]] | None = None,
) -> tuple[str, str]:
    """(verdict, detail) of ``ctx.principal`` doing ``action`` on ``resource``."""
    principal = ctx.principal
    if principal.kind == "root":
        return "allow", "the account root"
    context = request_context(storage, principal, ctx, extra)
    facts = _facts(storage, principal, action, resource, _account_of(resource), context)
    decision = _evaluate.evaluate_identity(
        _parse_all(identity_policies_for(storage, principal)),
        facts,
        session_policies=_session_policies(storage, principal),
        is_root=False,
    )
    return _verdict(decision)


def require(
    storage: Storage,
    ctx: RequestContext,
    action: str,
    resource: str,
    extra: Mapping[str, Sequence[str]] | None = None,
) -> None:
    """Raises AccessDenied unless the caller may do ``action`` (``iam:CreateUser``) on
    ``resource``, worded as IAM words it."""
    verdict, detail = evaluate(storage, ctx, action, resource, extra)
    if verdict != "allow":
        raise AccessDenied(
            f"User: {ctx.principal.arn} is not authorized to perform: {action} "
            f"on resource: {resource} {detail}"
        )


def authorize_assume_role(
    storage: Storage,
    ctx: RequestContext,
    role_arn: str,
    trust_text: str | None,
    actions: Sequence[str],
    extra: Mapping[str, Sequence[str]],
) -> None:
    """Raises AccessDenied unless the caller may assume the role (``actions`` is
    ``sts:AssumeRole``, with ``sts:TagSession`` when session tags are passed). A role that does
    not exist (``trust_text`` None) is denied the same way, as AWS does."""
    principal = ctx.principal
    if principal.kind == "root":
        raise AccessDenied("Roles may not be assumed by root accounts.")
    trust = _parsed(trust_text, TRUST) if trust_text is not None else None
    context = request_context(storage, principal, ctx, extra)
    identity = _parse_all(identity_policies_for(storage, principal))
    sessions = _session_policies(storage, principal)
    for action in actions:
        denied = AccessDenied(
            f"User: {principal.arn} is not authorized to perform: {action} on resource: {role_arn}"
        )
        if trust is None:
            raise denied
        facts = _facts(storage, principal, action, role_arn, _account_of(role_arn), context)
        decision = _evaluate.evaluate_trust(
            trust, facts, identity_policies=identity, session_policies=sessions, is_root=False
        )
        if _verdict(decision)[0] != "allow":
            raise denied
