"""The condition keys of one request (``aws:SourceIp``, ``kms:EncryptionContext:team`` ...).

Each key is computed only when a policy asks for it, and the names asked for are recorded: the
evaluator is a pure function of the policies, the principal, the action, the resource and the
values it looked up, so a later request on which every recorded name has the same value gets
the same decision (see ``PolicyAccessController``). Resource tags and aliases come from storage;
they are read only when a policy names them.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from openkms.domain.key import KeyRecord
from openkms.errors import AccessDeniedException
from openkms.service.context import RequestContext

PRINCIPAL_TYPES = {"root": "Account", "user": "User", "assumed-role": "AssumedRole"}

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
_MEMBER_FOR = {name: member for member, name in _REQUEST_KEYS.items()}

_EC_PREFIX = "kms:encryptioncontext:"
_PRINCIPAL_TAG = "aws:principaltag/"
_REQUEST_TAG = "aws:requesttag/"
_RESOURCE_TAG = "aws:resourcetag/"

Values = tuple[str, ...]


def encryption_context_of(action: str, req: Mapping[str, Any]) -> Mapping[str, str] | None:
    """The encryption context an action is about (ReEncrypt has one on each side)."""
    if action == "kms:ReEncryptFrom":
        value = req.get("SourceEncryptionContext")
    elif action == "kms:ReEncryptTo":
        value = req.get("DestinationEncryptionContext")
    else:
        value = req.get("EncryptionContext")
    if value is None or type(value) is dict:  # validate_input's dicts: no ABC check (costly)
        return value
    return value if isinstance(value, Mapping) else None


class ConditionKeys(Mapping[str, Values]):
    """A read-only mapping from lower-cased condition key names to their values.

    ``asked`` lists, in order, every name looked up; ``iterated`` is set when something walked
    the whole mapping (its answer then depends on every key, and nothing may be cached on it).
    """

    __slots__ = (
        "_action",
        "_ctx",
        "_key",
        "_principal_arn",
        "_req",
        "_storage",
        "_tags",
        "_values",
        "asked",
        "iterated",
    )

    def __init__(
        self,
        ctx: RequestContext,
        action: str,
        key: KeyRecord | None,
        req: Mapping[str, Any],
        principal_tags: Mapping[str, str],
        storage: Any,
        role_arn: str | None = None,
    ) -> None:
        """``role_arn`` is the role behind a role session: its aws:PrincipalArn."""
        self._ctx = ctx
        self._principal_arn = role_arn if role_arn is not None else ctx.principal.arn
        self._action = action
        self._key = key
        self._req = req
        self._tags = principal_tags
        self._storage = storage
        self._values: dict[str, Values | None] = {}
        self.asked: list[str] = []
        self.iterated = False

    # -- Mapping ---------------------------------------------------------------------------------
    def get(self, name: str, default: Any = None) -> Any:
        values = self._values
        if name in values:
            value = values[name]
        else:
            self.asked.append(name)
            value = values[name] = self._compute(name)
        return default if value is None else value

    def __getitem__(self, name: str) -> Values:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value  # type: ignore[no-any-return]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[str]:
        self.iterated = True
        return iter([n for n in self._names() if self.get(n) is not None])

    def __len__(self) -> int:
        return sum(1 for _ in self)

    # -- computing one key -------------------------------------------------------------------------
    def _compute(self, name: str) -> Values | None:
        simple = _SIMPLE.get(name)
        if simple is not None:
            return simple(self)
        member = _MEMBER_FOR.get(name)
        if member is not None:
            value = self._req.get(member)
            if value is None:
                return None
            return (str(value).lower() if isinstance(value, bool) else str(value),)
        if name.startswith(_EC_PREFIX):
            return _context_value(self._context(), name[len(_EC_PREFIX) :])
        if name.startswith(_PRINCIPAL_TAG):
            return _last_case_insensitive(self._tags, name[len(_PRINCIPAL_TAG) :])
        if name.startswith(_REQUEST_TAG):
            tags = self._req.get("Tags")
            if not isinstance(tags, list) or not tags:
                return None
            wanted = name[len(_REQUEST_TAG) :]
            found: Values | None = None
            for tag in tags:
                if str(tag["TagKey"]).lower() == wanted:
                    found = (tag["TagValue"],)
            return found
        if name.startswith(_RESOURCE_TAG):
            return self._resource_tag(name[len(_RESOURCE_TAG) :])
        if name == "kms:resourcealiases":
            return self._resource_aliases()
        return None

    def _names(self) -> Iterator[str]:
        """Every name this request may have a value for (storage-backed ones excepted)."""
        yield from _SIMPLE
        yield from _MEMBER_FOR
        for k in self._context() or {}:
            yield _EC_PREFIX + k.lower()
        for k in self._tags:
            yield _PRINCIPAL_TAG + k.lower()
        tags = self._req.get("Tags")
        if isinstance(tags, list):
            for tag in tags:
                yield _REQUEST_TAG + str(tag["TagKey"]).lower()

    def _context(self) -> Mapping[str, str] | None:
        return encryption_context_of(self._action, self._req)

    def _resource_tag(self, wanted: str) -> Values | None:
        if self._key is None:
            return None
        for tag_key, value in self._storage.get_tags(self._key.arn).items():
            if tag_key.lower() == wanted:
                return (value,)
        return None

    def _resource_aliases(self) -> Values | None:
        key = self._key
        if key is None:
            return None
        aliases = self._storage.list_aliases(key.account_id, key.region, key.key_id, None, 51)
        # AWS evaluates this key only for keys with at most 50 aliases.
        return tuple(a.alias_name for a in aliases) if len(aliases) <= 50 else None


def _context_value(pairs: Mapping[str, str] | None, wanted: str) -> Values | None:
    """``kms:EncryptionContext:<wanted>``. Condition key names are case-insensitive while the
    encryption context is not: when two of its keys fold to ``wanted``, the condition has no
    single value, and answering either would let the caller pick it by ordering the pairs, so
    the request is denied."""
    found: Values | None = None
    for k, v in (pairs or {}).items():
        if k.lower() == wanted:
            if found is not None:
                raise AccessDeniedException(
                    f"The encryption context has more than one key named {wanted!r} when case is "
                    f"ignored, so a kms:EncryptionContext:{wanted} condition cannot be evaluated "
                    "for this request."
                )
            found = (v,)
    return found


def _last_case_insensitive(pairs: Mapping[str, str] | None, wanted: str) -> Values | None:
    """Condition key names are case-insensitive: the last pair whose key folds to ``wanted``."""
    if not pairs:
        return None
    found: Values | None = None
    for k, v in pairs.items():
        if k.lower() == wanted:
            found = (v,)
    return found


def _current_time(keys: ConditionKeys) -> Values:
    moment = datetime.datetime.fromtimestamp(keys._ctx.now, tz=datetime.UTC)
    return (moment.strftime("%Y-%m-%dT%H:%M:%SZ"),)


def _username(keys: ConditionKeys) -> Values | None:
    principal = keys._ctx.principal
    return (principal.arn.rsplit("/", 1)[-1],) if principal.kind == "user" else None


def _key_attr(read: Callable[[KeyRecord], str | None]) -> Callable[[ConditionKeys], Values | None]:
    def compute(keys: ConditionKeys) -> Values | None:
        if keys._key is None:
            return None
        value = read(keys._key)
        return None if value is None else (value,)

    return compute


def _context_keys(keys: ConditionKeys) -> Values | None:
    context = keys._context()
    return None if context is None else tuple(context)


def _grant_operations(keys: ConditionKeys) -> Values | None:
    operations = keys._req.get("Operations")
    return None if operations is None else tuple(operations)


def _grant_constraint_type(keys: ConditionKeys) -> Values | None:
    if "Operations" not in keys._req:
        return None
    constraints = keys._req.get("Constraints") or {}
    types = tuple(
        t for t in ("EncryptionContextEquals", "EncryptionContextSubset") if t in constraints
    )
    return types or None


def _grant_principal(member: str) -> Callable[[ConditionKeys], Values | None]:
    """kms:GranteePrincipal and kms:RetiringPrincipal: whom a CreateGrant names (only
    CreateGrant's, as AWS documents them; ListGrants' filter of the same name is not one).
    Unknown, they were absent, so a Deny on whom a grant names never matched."""

    def value(keys: ConditionKeys) -> Values | None:
        principal = keys._req.get(member)
        return (str(principal),) if principal and keys._action == "kms:CreateGrant" else None

    return value


# ReEncrypt's authorization requests carry the other side's key ARN under these members (set by
# service/encryption.py, never by a caller: request members are never named with a leading "_").
REENCRYPT_DESTINATION = "_DestinationKeyArn"
REENCRYPT_SOURCE = "_SourceKeyArn"


def _reencrypt_on_same_key(keys: ConditionKeys) -> Values | None:
    """kms:ReEncryptOnSameKey: whether ReEncrypt's source and destination are one key, on both
    of its authorizations (ReEncryptFrom on the source, ReEncryptTo on the destination).
    Unknown, it was absent, so a Deny of re-encryption on the same key never matched."""
    if keys._action == "kms:ReEncryptFrom":
        other = keys._req.get(REENCRYPT_DESTINATION)
    elif keys._action == "kms:ReEncryptTo":
        other = keys._req.get(REENCRYPT_SOURCE)
    else:
        return None
    if other is None or keys._key is None:
        return None
    return ("true" if other == keys._key.arn else "false",)


def _tag_keys(keys: ConditionKeys) -> Values | None:
    tags = keys._req.get("Tags")
    if isinstance(tags, list) and tags:
        return tuple(t["TagKey"] for t in tags)
    if "TagKeys" in keys._req:
        return tuple(keys._req["TagKeys"])
    return None


def _mr_type(key: KeyRecord) -> str | None:
    return str(key.extra.get("mr_type", "PRIMARY")) if key.multi_region else None


_SIMPLE: dict[str, Callable[[ConditionKeys], Values | None]] = {
    # A role session's aws:PrincipalArn is its role's ARN, not the session ARN (AWS "global
    # condition context keys"); aws:userid is the account id, AIDA... or ROLEID:session-name.
    "aws:principalarn": lambda k: (k._principal_arn,),
    "aws:principalaccount": lambda k: (k._ctx.principal.account_id,),
    "aws:principaltype": lambda k: (PRINCIPAL_TYPES.get(k._ctx.principal.kind, "User"),),
    "aws:userid": lambda k: (k._ctx.principal.user_id,),
    "aws:username": _username,
    "aws:principalisawsservice": lambda k: ("false",),
    # Set when a service (Secrets Manager) makes the request on the caller's behalf.
    "aws:viaawsservice": lambda k: ("true" if k._ctx.via_service else "false",),
    "kms:viaservice": lambda k: (k._ctx.via_service,) if k._ctx.via_service else None,
    "aws:resourceaccount": lambda k: (
        (k._key.account_id,) if k._key is not None else (k._ctx.principal.account_id,)
    ),
    "aws:currenttime": _current_time,
    "aws:epochtime": lambda k: (str(int(k._ctx.now)),),
    "aws:securetransport": lambda k: ("true" if k._ctx.secure_transport else "false",),
    "aws:requestedregion": lambda k: (k._ctx.region,),
    "aws:sourceip": lambda k: (k._ctx.source_ip,) if k._ctx.source_ip else None,
    "kms:calleraccount": lambda k: (k._ctx.principal.account_id,),
    "kms:grantisforawsresource": lambda k: ("false",),
    "kms:requestalias": lambda k: (
        (k._ctx.request_alias,) if k._ctx.request_alias is not None else None
    ),
    "kms:keyspec": _key_attr(lambda key: key.key_spec),
    "kms:keyusage": _key_attr(lambda key: key.key_usage),
    "kms:keyorigin": _key_attr(lambda key: key.origin),
    "kms:multiregion": _key_attr(lambda key: "true" if key.multi_region else "false"),
    "kms:multiregionkeytype": _key_attr(_mr_type),
    "kms:validto": _key_attr(
        lambda key: str(int(key.valid_to)) if key.valid_to is not None else None
    ),
    "kms:encryptioncontextkeys": _context_keys,
    "kms:grantoperations": _grant_operations,
    "kms:grantconstrainttype": _grant_constraint_type,
    "kms:granteeprincipal": _grant_principal("GranteePrincipal"),
    "kms:retiringprincipal": _grant_principal("RetiringPrincipal"),
    "kms:reencryptonsamekey": _reencrypt_on_same_key,
    "aws:tagkeys": _tag_keys,
}
