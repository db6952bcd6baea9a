"""Authorization for every KMS request: gathers the facts (key policy, the caller's identity and
session policies, grants, condition keys) and asks the pure evaluator in ``policy/``.

Parsed policies are cached by their text; a principal's identity policies and tags for at most
the cache TTL, so a changed policy takes effect within that bound on every process."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from openkms.domain.grant import GrantRecord
from openkms.domain.key import KeyRecord
from openkms.errors import AccessDeniedException, MalformedPolicyDocumentException
from openkms.policy.document import PolicyDocument, PolicyError, parse_policy_cached
from openkms.policy.evaluate import Decision, RequestFacts, evaluate_identity, evaluate_kms
from openkms.policy.grants import GrantConstraints, GrantFacts, is_subset_grant
from openkms.policy.lockout import lockout_check_passes
from openkms.service.caches import TtlCache
from openkms.service.context import Principal, RequestContext

_PRINCIPAL_TYPES = {"root": "Account", "user": "User", "assumed-role": "AssumedRole"}

# Which request members feed which kms: condition keys.
_REQUEST_KEYS = {
    "EncryptionAlgorithm": "kms:encryptionalgorithm",
    "SigningAlgorithm": "kms:signingalgorithm",
    "MacAlgorithm": "kms:macalgorithm",
    "KeyAgreementAlgorithm": "kms:keyagreementalgorithm",
    "RotationPeriodInDays": "kms:rotationperiodindays",
    "PendingWindowInDays": "kms:schedulekeydeletionpendingwindowindays",
    "ReplicaRegion": "kms:replicaregion",
    "PrimaryRegion": "kms:primaryregion",
    "KeyPairSpec": "kms:datakeypairspec",
    "ExpirationModel": "kms:expirationmodel",
    "WrappingAlgorithm": "kms:wrappingalgorithm",
    "WrappingKeySpec": "kms:wrappingkeyspec",
    "BypassPolicyLockoutSafetyCheck": "kms:bypasspolicylockoutsafetycheck",
}


def parse_key_policy(text: str) -> PolicyDocument:
    try:
        return parse_policy_cached(text, "key")
    except PolicyError as exc:
        raise MalformedPolicyDocumentException(exc.message) from exc


@dataclass(frozen=True, slots=True)
class Identity:
    """What applies to one principal, resolved from IAM. ``generation`` changes whenever the
    identity is re-read, so decisions cached against it expire with it."""

    policies: tuple[PolicyDocument, ...]
    session_policies: tuple[PolicyDocument, ...]
    tags: Mapping[str, str]
    generation: int = 0
    context_free: bool = True


def context_free(document: PolicyDocument, text: str) -> bool:
    """A policy whose decisions depend only on principal, action and resource: no conditions
    and no policy variables."""
    return "${" not in text and all(not st.conditions for st in document.statements)


_ROOT_IDENTITY = Identity((), (), {})


class LazyContext(Mapping[str, tuple[str, ...]]):
    """Condition keys; the ones that need storage (resource tags, aliases) are computed only when
    a policy asks for them."""

    def __init__(
        self,
        base: dict[str, tuple[str, ...]],
        lazy: Callable[[str], tuple[str, ...] | None],
    ) -> None:
        self._base = base
        self._lazy = lazy

    def __getitem__(self, name: str) -> tuple[str, ...]:
        if name in self._base:
            return self._base[name]
        value = self._lazy(name)
        if value is None:
            raise KeyError(name)
        self._base[name] = value
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._base)

    def __len__(self) -> int:
        return len(self._base)


class PolicyAccessController:
    def __init__(self, runtime: Any) -> None:
        # The runtime (service.runtime.Runtime) gives storage, grants and cache settings.
        self._rt = runtime
        self._identities: TtlCache[str, Identity] = TtlCache(
            50_000, runtime.settings.cache_ttl_seconds
        )
        # A session's role never changes; only its existence does (checked per identity load).
        self._role_arns: TtlCache[str, str] = TtlCache(50_000, 3600.0)
        # Decisions that depend on no condition key, for at most the cache TTL. Their key names
        # the identity generation and the key policy text, so any change misses the cache.
        self._decisions: TtlCache[tuple[str, str, str, str, int, str], bool] = TtlCache(
            100_000, runtime.settings.cache_ttl_seconds
        )
        self._policy_context_free: dict[str, bool] = {}
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
        key_policy = parse_key_policy(key.policy)
        cacheable = (
            identity.context_free
            and self._key_policy_context_free(key_policy, key.policy)
            and not req.get("GrantTokens")
            and not self._rt.grants(key.arn)
        )
        cache_key = (
            principal.arn,
            principal.access_key_id,
            action,
            key.arn,
            identity.generation,
            key.policy,
        )
        if cacheable and self._decisions.get(cache_key):
            return
        context = self._context(ctx, action, key, req, identity)
        facts = self._facts(ctx, action, key.arn, key.account_id, context)
        grants = self._grants(ctx, action, key, req)
        decision = evaluate_kms(
            key_policy,
            identity.policies,
            grants,
            facts,
            session_policies=identity.session_policies,
            is_root=principal.kind == "root",
            encryption_context=_encryption_context(action, req),
        )
        if cacheable and decision.allowed:
            self._decisions.put(cache_key, True)
        self._enforce(decision, principal, action, key.arn)

    def _key_policy_context_free(self, document: PolicyDocument, text: str) -> bool:
        known = self._policy_context_free.get(text)
        if known is None:
            if len(self._policy_context_free) > 10_000:
                self._policy_context_free.clear()
            known = context_free(document, text)
            self._policy_context_free[text] = known
        return known

    def authorize_account(
        self, ctx: RequestContext, action: str, resource: str, req: Mapping[str, Any] | None = None
    ) -> None:
        req = req or {}
        identity = self._identity(ctx.principal)
        context = self._context(ctx, action, None, req, identity)
        facts = self._facts(ctx, action, resource, ctx.principal.account_id, context)
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
    ) -> None:
        """The grammar check, and AWS's policy lockout safety check unless bypassed."""
        document = parse_key_policy(policy)
        if bypass:
            return
        identity = self._identity(ctx.principal)
        context = self._context(ctx, "kms:PutKeyPolicy", None, {}, identity)
        facts = self._facts(ctx, "kms:PutKeyPolicy", key_arn, account_id, context)
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

    # -- facts -------------------------------------------------------------------------------------
    def _identity(self, principal: Principal) -> Identity:
        if principal.kind == "root":
            return _ROOT_IDENTITY
        cache_key = f"{principal.arn}|{principal.access_key_id}"
        cached = self._identities.get(cache_key)
        if cached is not None:
            return cached
        from openkms.iam.principals import (
            identity_policies_for,
            principal_tags_for,
            session_policy_for,
        )

        storage = self._rt.storage
        policies = []
        free = True
        for text in identity_policies_for(storage, principal):
            try:
                document = parse_policy_cached(text, "identity")
            except PolicyError:
                # Stored policies were validated when written; one that no longer parses
                # grants nothing (fail closed).
                continue
            policies.append(document)
            free = free and context_free(document, text)
        sessions: list[PolicyDocument] = []
        session_text = session_policy_for(storage, principal)
        if session_text is not None:
            free = free and "${" not in session_text and "Condition" not in session_text
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
            free,
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
    ) -> RequestFacts:
        principal = ctx.principal
        role_arn = None
        if principal.kind == "assumed-role":
            role_arn = self._role_arn(principal)
        return RequestFacts(
            principal_arn=principal.arn,
            principal_account=principal.account_id,
            principal_type=_PRINCIPAL_TYPES.get(principal.kind, "User"),
            principal_role_arn=role_arn,
            action=action,
            resource=resource,
            resource_account=resource_account,
            context=context,
        )

    def _role_arn(self, principal: Principal) -> str | None:
        """The role ARN (with its path) behind a session, as policies name it."""
        cache_key = f"role|{principal.access_key_id}"
        cached = self._role_arns.get(cache_key)
        if cached is not None:
            return cached
        from openkms.iam.authz import role_arn_of

        role_arn = role_arn_of(self._rt.storage, principal)
        if role_arn is not None:
            self._role_arns.put(cache_key, role_arn)
        return role_arn

    def _context(
        self,
        ctx: RequestContext,
        action: str,
        key: KeyRecord | None,
        req: Mapping[str, Any],
        identity: Identity,
    ) -> LazyContext:
        principal = ctx.principal
        moment = datetime.datetime.fromtimestamp(ctx.now, tz=datetime.UTC)
        base: dict[str, tuple[str, ...]] = {
            "aws:principalarn": (principal.arn,),
            "aws:principalaccount": (principal.account_id,),
            "aws:principaltype": (_PRINCIPAL_TYPES.get(principal.kind, "User"),),
            "aws:userid": (principal.user_id,),
            "aws:currenttime": (moment.strftime("%Y-%m-%dT%H:%M:%SZ"),),
            "aws:epochtime": (str(int(ctx.now)),),
            "aws:securetransport": ("true" if ctx.secure_transport else "false",),
            "aws:requestedregion": (ctx.region,),
            "kms:calleraccount": (principal.account_id,),
            "kms:grantisforawsresource": ("false",),
        }
        if principal.kind == "user":
            base["aws:username"] = (principal.arn.rsplit("/", 1)[-1],)
        if ctx.source_ip:
            base["aws:sourceip"] = (ctx.source_ip,)
        for name, value in identity.tags.items():
            base[f"aws:principaltag/{name.lower()}"] = (value,)
        if key is not None:
            base["kms:keyspec"] = (key.key_spec,)
            base["kms:keyusage"] = (key.key_usage,)
            base["kms:keyorigin"] = (key.origin,)
            base["kms:multiregion"] = ("true" if key.multi_region else "false",)
            if key.multi_region:
                base["kms:multiregionkeytype"] = (str(key.extra.get("mr_type", "PRIMARY")),)
            if key.valid_to is not None:
                base["kms:validto"] = (str(int(key.valid_to)),)
        for member, name in _REQUEST_KEYS.items():
            if member in req and req[member] is not None:
                value = req[member]
                base[name] = (str(value).lower() if isinstance(value, bool) else str(value),)
        context = _encryption_context(action, req)
        if context is not None:
            for k, v in context.items():
                base[f"kms:encryptioncontext:{k.lower()}"] = (v,)
            base["kms:encryptioncontextkeys"] = tuple(context)
        if "Operations" in req:
            base["kms:grantoperations"] = tuple(req["Operations"])
            constraints = req.get("Constraints") or {}
            types = tuple(
                t
                for t in ("EncryptionContextEquals", "EncryptionContextSubset")
                if t in constraints
            )
            if types:
                base["kms:grantconstrainttype"] = types
        tags = req.get("Tags")
        if isinstance(tags, list) and tags:
            for tag in tags:
                base[f"aws:requesttag/{tag['TagKey'].lower()}"] = (tag["TagValue"],)
            base["aws:tagkeys"] = tuple(t["TagKey"] for t in tags)
        elif "TagKeys" in req:
            base["aws:tagkeys"] = tuple(req["TagKeys"])
        if ctx.request_alias is not None:
            base["kms:requestalias"] = (ctx.request_alias,)

        def lazy(name: str) -> tuple[str, ...] | None:
            if key is None:
                return None
            if name.startswith("aws:resourcetag/"):
                wanted = name[len("aws:resourcetag/") :]
                for tag_key, value in self._rt.storage.get_tags(key.arn).items():
                    if tag_key.lower() == wanted:
                        return (value,)
                return None
            if name == "kms:resourcealiases":
                aliases = self._rt.storage.list_aliases(
                    key.account_id, key.region, key.key_id, None, 51
                )
                # AWS evaluates this key only for keys with at most 50 aliases.
                return tuple(a.alias_name for a in aliases) if len(aliases) <= 50 else None
            return None

        return LazyContext(base, lazy)

    def _grants(
        self, ctx: RequestContext, action: str, key: KeyRecord, req: Mapping[str, Any]
    ) -> list[GrantFacts]:
        from openkms.service.grants import grants_from_tokens

        records: dict[str, GrantRecord] = {g.grant_id: g for g in self._rt.grants(key.arn)}
        for grant in grants_from_tokens(self._rt, key.arn, req.get("GrantTokens")):
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
    )


def _encryption_context(action: str, req: Mapping[str, Any]) -> Mapping[str, str] | None:
    if action == "kms:ReEncryptFrom":
        value = req.get("SourceEncryptionContext")
    elif action == "kms:ReEncryptTo":
        value = req.get("DestinationEncryptionContext")
    else:
        value = req.get("EncryptionContext")
    return value if isinstance(value, Mapping) else None
