"""Authorization for every KMS request: gathers the facts (key policy, the caller's identity and
session policies, grants, condition keys) and asks the pure evaluator in ``policy/``.

Parsed policies are cached by their text; a principal's identity policies and tags for at most
the cache TTL, so a changed policy takes effect within that bound on every process."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from openkms.domain.grant import GrantRecord
from openkms.domain.key import KeyRecord
from openkms.errors import AccessDeniedException, MalformedPolicyDocumentException
from openkms.policy.document import (
    INVALID_PRINCIPALS,
    PolicyDocument,
    PolicyError,
    parse_policy_cached,
)
from openkms.policy.evaluate import Decision, RequestFacts, evaluate_identity, evaluate_kms
from openkms.policy.grants import GrantConstraints, GrantFacts, is_subset_grant
from openkms.policy.lockout import lockout_check_passes
from openkms.policy.principal_ids import substitute_principals
from openkms.service.caches import TtlCache
from openkms.service.condition_keys import (
    PRINCIPAL_TYPES,
    ConditionKeys,
    encryption_context_of,
)
from openkms.service.context import Principal, RequestContext
from openkms.service.grant_store import grants_from_tokens


def parse_key_policy(text: str) -> PolicyDocument:
    try:
        return parse_policy_cached(text, "key")
    except PolicyError as exc:
        raise MalformedPolicyDocumentException(exc.message) from exc


def _bind_text(text: str, bindings: tuple[tuple[str, str], ...]) -> str:
    return substitute_principals(text, dict(bindings))


_bind_cached: Callable[[str, tuple[tuple[str, str], ...]], str] = functools.lru_cache(maxsize=2048)(
    _bind_text
)


def bound_policy_text(text: str, bindings: Mapping[str, str]) -> str:
    """The policy as the evaluator reads it: each IAM user or role ARN it names replaced by the
    unique id bound to it when the policy was stored (``text`` itself when there is none)."""
    if not bindings:
        return text
    return _bind_cached(text, tuple(bindings.items()))


@dataclass(frozen=True, slots=True)
class Identity:
    """What applies to one principal, resolved from IAM. ``generation`` changes whenever the
    identity is re-read, so decisions cached against it expire with it."""

    policies: tuple[PolicyDocument, ...]
    session_policies: tuple[PolicyDocument, ...]
    tags: Mapping[str, str]
    generation: int = 0
    # The IAM role ARN (with its path) behind a role session: the session's aws:PrincipalArn,
    # and the role its key-policy and grant principals are matched against.
    role_arn: str | None = None


_ROOT_IDENTITY = Identity((), (), {})

# (principal ARN, access key id, action, key ARN, identity generation, key policy text)
_DecisionKey = tuple[str, str, str, str, int, str]
_MAX_CACHED_VALUES = 1024  # characters of condition-key values kept with one cached decision


def _size(values: tuple[tuple[str, ...] | None, ...]) -> int:
    return sum(sum(len(v) for v in vs) for vs in values if vs is not None)


class PolicyAccessController:
    def __init__(self, runtime: Any) -> None:
        # The runtime (service.runtime.Runtime) gives storage, grants and cache settings.
        self._rt = runtime
        self._identities: TtlCache[str, Identity] = TtlCache(
            50_000, runtime.settings.cache_ttl_seconds
        )
        # Allow decisions, for at most the cache TTL. The evaluator is a pure function of the
        # policies, the principal, the action, the key and the condition keys it looked up, so a
        # decision is stored under the names it asked for and their values: a request on which
        # they all have the same values is allowed without evaluating again. The identity
        # generation and the key policy text are part of the key, so a change misses the cache.
        self._asked: TtlCache[_DecisionKey, tuple[str, ...]] = TtlCache(
            50_000, runtime.settings.cache_ttl_seconds
        )
        self._decisions: TtlCache[tuple[_DecisionKey, tuple[tuple[str, ...] | None, ...]], bool] = (
            TtlCache(50_000, runtime.settings.cache_ttl_seconds)
        )
        self._generation = 0

    # -- the protocol ----------------------------------------------------------------------------
    def authorize_key(
        self,
        ctx: RequestContext,
        action: str,
        key: KeyRecord,
        req: Mapping[str, Any] | None = None,
    ) -> None:
        req = req or {}
        principal = ctx.principal
        identity = self._identity(principal)
        policy_text = bound_policy_text(key.policy, key.policy_principals)
        keys = ConditionKeys(
            ctx, action, key, req, identity.tags, self._rt.storage, identity.role_arn
        )
        # Grants are evaluated each time: a revoked grant must stop working at once.
        cacheable = not req.get("GrantTokens") and not self._rt.grants(key.arn)
        decision_key: _DecisionKey = (
            principal.arn,
            principal.access_key_id,
            action,
            key.arn,
            identity.generation,
            policy_text,
        )
        if cacheable:
            names = self._asked.get(decision_key)
            if names is not None and self._decisions.get(
                (decision_key, tuple([keys.get(n) for n in names]))
            ):
                return
        facts = self._facts(ctx, action, key.arn, key.account_id, keys, identity)
        grants = self._grants(ctx, action, key, req) if not cacheable else []
        decision = evaluate_kms(
            parse_key_policy(policy_text),
            identity.policies,
            grants,
            facts,
            session_policies=identity.session_policies,
            is_root=principal.kind == "root",
            encryption_context=encryption_context_of(action, req),
        )
        if cacheable and decision.allowed and not keys.iterated:
            # Every name looked up so far, the ones checked against the cache included: the
            # same values for a superset of what the evaluator read give the same answer.
            names = tuple(keys.asked)
            values = tuple([keys.get(n) for n in names])
            # Bounded memory: values that callers choose (an encryption context can be 8 KiB)
            # are not kept when they are large.
            if _size(values) <= _MAX_CACHED_VALUES:
                self._asked.put(decision_key, names)
                self._decisions.put((decision_key, values), True)
        self._enforce(decision, principal, action, key.arn)

    def authorize_account(
        self, ctx: RequestContext, action: str, resource: str, req: Mapping[str, Any] | None = None
    ) -> None:
        req = req or {}
        identity = self._identity(ctx.principal)
        keys = ConditionKeys(
            ctx, action, None, req, identity.tags, self._rt.storage, identity.role_arn
        )
        facts = self._facts(ctx, action, resource, ctx.principal.account_id, keys, identity)
        decision = evaluate_identity(
            identity.policies,
            facts,
            session_policies=identity.session_policies,
            is_root=ctx.principal.kind == "root",
        )
        self._enforce(decision, ctx.principal, action, resource)

    # -- policy checks on write ------------------------------------------------------------------
    def check_new_policy(
        self, ctx: RequestContext, policy: str, key_arn: str, account_id: str, *, bypass: bool
    ) -> dict[str, str]:
        """The grammar check, the principals (each IAM user or role must exist: the answer is
        its unique id, stored beside the policy), and AWS's policy lockout safety check unless
        bypassed. Returns the principals' bindings."""
        from openkms.iam.unique_ids import bind_policy

        parse_key_policy(policy)
        bindings, invalid = bind_policy(self._rt.storage, policy)
        if invalid:
            raise MalformedPolicyDocumentException(INVALID_PRINCIPALS)
        if bypass:
            return bindings
        document = parse_key_policy(bound_policy_text(policy, bindings))
        identity = self._identity(ctx.principal)
        keys = ConditionKeys(
            ctx, "kms:PutKeyPolicy", None, {}, identity.tags, self._rt.storage, identity.role_arn
        )
        facts = self._facts(ctx, "kms:PutKeyPolicy", key_arn, account_id, keys, identity)
        if not lockout_check_passes(
            document,
            facts,
            identity.policies,
            is_root=ctx.principal.kind == "root",
            session_policies=identity.session_policies,
        ):
            raise MalformedPolicyDocumentException(
                "The new key policy will not allow you to update the key policy in the future."
            )
        return bindings

    # -- facts -------------------------------------------------------------------------------------
    def identity_of(self, principal: Principal) -> Identity:
        """What applies to ``principal`` (identity and session policies, tags, role), cached
        for at most the TTL: for other services' authorization (Secrets Manager) that shares
        this evaluator and its bounded staleness."""
        return self._identity(principal)

    def _identity(self, principal: Principal) -> Identity:
        if principal.kind == "root":
            return _ROOT_IDENTITY
        cache_key = f"{principal.arn}|{principal.access_key_id}"
        cached = self._identities.get(cache_key)
        if cached is not None:
            return cached
        from openkms.iam.authz import role_arn_of
        from openkms.iam.principals import (
            identity_policies_for,
            principal_tags_for,
            session_policy_for,
        )

        storage = self._rt.storage
        policies = []
        for text in identity_policies_for(storage, principal):
            try:
                document = parse_policy_cached(text, "identity")
            except PolicyError:
                # Stored policies were validated when written; one that no longer parses
                # grants nothing (fail closed).
                continue
            policies.append(document)
        sessions: list[PolicyDocument] = []
        session_text = session_policy_for(storage, principal)
        if session_text is not None:
            try:
                sessions.append(parse_policy_cached(session_text, "session"))
            except PolicyError:
                sessions.append(
                    parse_policy_cached('{"Version":"2012-10-17","Statement":[]}', "session")
                )
        self._generation += 1
        identity = Identity(
            tuple(policies),
            tuple(sessions),
            principal_tags_for(storage, principal),
            self._generation,
            role_arn_of(storage, principal),
        )
        self._identities.put(cache_key, identity)
        return identity

    def _facts(
        self,
        ctx: RequestContext,
        action: str,
        resource: str,
        resource_account: str | None,
        context: Mapping[str, tuple[str, ...]],
        identity: Identity,
    ) -> RequestFacts:
        principal = ctx.principal
        return RequestFacts(
            principal_arn=principal.arn,
            principal_account=principal.account_id,
            principal_type=PRINCIPAL_TYPES.get(principal.kind, "User"),
            principal_role_arn=identity.role_arn,
            principal_id=principal.unique_id,
            action=action,
            resource=resource,
            resource_account=resource_account,
            context=context,
        )

    def _grants(
        self, ctx: RequestContext, action: str, key: KeyRecord, req: Mapping[str, Any]
    ) -> list[GrantFacts]:
        records: dict[str, GrantRecord] = {g.grant_id: g for g in self._rt.grants(key.arn)}
        for grant in grants_from_tokens(self._rt.storage, key.arn, req.get("GrantTokens")):
            records[grant.grant_id] = grant
        facts = [_grant_facts(g) for g in records.values()]
        if action == "kms:CreateGrant":
            requested = GrantFacts(
                grantee_principal=str(req.get("GranteePrincipal") or ""),
                operations=frozenset(req.get("Operations") or ()),
                constraints=_constraints(req.get("Constraints")),
            )
            facts = [f for f in facts if is_subset_grant(f, requested)]
        return facts

    def _enforce(
        self, decision: Decision, principal: Principal, action: str, resource: str
    ) -> None:
        if decision.allowed:
            return
        raise AccessDeniedException(
            f"User: {principal.arn} is not authorized to perform: {action} on resource: "
            f"{resource} {decision.detail}"
        )


def _constraints(raw: Mapping[str, Any] | None) -> GrantConstraints | None:
    if not raw:
        return None
    return GrantConstraints(
        encryption_context_equals=raw.get("EncryptionContextEquals"),
        encryption_context_subset=raw.get("EncryptionContextSubset"),
    )


def _grant_facts(grant: GrantRecord) -> GrantFacts:
    constraints = None
    if grant.encryption_context_equals is not None or grant.encryption_context_subset is not None:
        constraints = GrantConstraints(
            encryption_context_equals=grant.encryption_context_equals,
            encryption_context_subset=grant.encryption_context_subset,
        )
    return GrantFacts(
        grantee_principal=grant.grantee_principal,
        operations=frozenset(grant.operations),
        constraints=constraints,
        retiring_principal=grant.retiring_principal,
        grantee_id=grant.grantee_id,
    )
