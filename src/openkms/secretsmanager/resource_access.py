"""Authorization of a Secrets Manager request with the secret's resource policy and across
accounts: what ``access.authorize`` asks.

The decision is the KMS evaluator's (``policy.resource_based``: IAM's rules for an optional
resource policy). Same account: an identity policy allow, or a resource-policy statement that
names the caller itself, suffices; another account: the resource policy must allow the caller
(or its account) and the caller's own identity policies must too; an explicit Deny anywhere
wins. A secret of another account that does not exist is answered exactly like one whose
policy does not admit the caller, so the answer says nothing about the other account's secrets.

The caller's identity (policies, session policy, tags, role) comes from the KMS access
controller's cache (bounded by its TTL, one second by default), so a secret read costs no IAM
storage reads; resource policies are parsed once per text (``parse_policy_cached``).
"""

from __future__ import annotations

from collections.abc import Mapping

from openkms.audit.events import event_time
from openkms.context import RequestContext
from openkms.policy.document import PolicyDocument, PolicyError
from openkms.policy.evaluate import Decision, RequestFacts
from openkms.policy.resource_based import evaluate_with_resource_policy
from openkms.secretsmanager.deps import SecretsDeps
from openkms.secretsmanager.policy_rules import parse_secret_policy
from openkms.service.authorization import Identity, PolicyAccessController, bound_policy_text
from openkms.service.condition_keys import PRINCIPAL_TYPES

__all__ = ["decide"]

_DENY_NOTHING = '{"Version":"2012-10-17","Statement":[]}'


def _identity(deps: SecretsDeps, ctx: RequestContext) -> Identity:
    access = deps.runtime.access
    if isinstance(access, PolicyAccessController):
        return access.identity_of(ctx.principal)
    # Another access controller (tests): read the identity from IAM each time.
    return PolicyAccessController(deps.runtime).identity_of(ctx.principal)


def _context(
    ctx: RequestContext, identity: Identity, extra: Mapping[str, tuple[str, ...]]
) -> dict[str, tuple[str, ...]]:
    """The global condition keys of the request (lower-cased), then the service's own."""
    principal = ctx.principal
    kind = PRINCIPAL_TYPES.get(principal.kind, "User")
    context: dict[str, tuple[str, ...]] = {
        "aws:principalaccount": (principal.account_id,),
        "aws:principaltype": (kind,),
        "aws:userid": (principal.user_id,),
        "aws:principalarn": (identity.role_arn or principal.arn,),
        "aws:principalisawsservice": ("false",),
        "aws:viaawsservice": ("false",),
        "aws:securetransport": ("true" if ctx.secure_transport else "false",),
        "aws:epochtime": (str(int(ctx.now)),),
        # The audit record's eventTime: the same text, formatted once a second, not per request.
        "aws:currenttime": (event_time(ctx.now),),
    }
    if principal.kind == "user":
        context["aws:username"] = (principal.arn.rsplit("/", 1)[-1],)
    if ctx.source_ip:
        context["aws:sourceip"] = (ctx.source_ip,)
    if ctx.region:
        context["aws:requestedregion"] = (ctx.region,)
    for key, value in identity.tags.items():
        context[f"aws:principaltag/{key.lower()}"] = (value,)
    context.update(extra)
    return context


def _resource_policy(text: str | None, bindings: Mapping[str, str]) -> PolicyDocument | None:
    if text is None:
        return None
    try:
        return parse_secret_policy(bound_policy_text(text, bindings))
    except PolicyError:
        # Stored policies were validated when written; one that no longer parses allows
        # nothing (fail closed) and, having no Deny, denies nothing either.
        return parse_secret_policy(_DENY_NOTHING)


def _account_of(arn: str) -> str | None:
    parts = arn.split(":", 5)
    return parts[4] if len(parts) == 6 and parts[4] else None


def decide(
    deps: SecretsDeps,
    ctx: RequestContext,
    action: str,
    resource: str,
    resource_policy: str | None,
    extra: Mapping[str, tuple[str, ...]],
    *,
    bindings: Mapping[str, str] | None = None,
) -> Decision:
    """May ``ctx.principal`` do ``action`` on ``resource`` (a secret ARN, or ``*``)?"""
    identity = _identity(deps, ctx)
    facts = RequestFacts(
        principal_arn=ctx.principal.arn,
        principal_account=ctx.principal.account_id,
        principal_type=PRINCIPAL_TYPES.get(ctx.principal.kind, "User"),
        principal_role_arn=identity.role_arn,
        action=action,
        resource=resource,
        resource_account=_account_of(resource),
        context=_context(ctx, identity, extra),
        principal_id=ctx.principal.unique_id,
    )
    return evaluate_with_resource_policy(
        _resource_policy(resource_policy, bindings or {}),
        identity.policies,
        facts,
        session_policies=identity.session_policies,
        is_root=ctx.principal.kind == "root",
    )
