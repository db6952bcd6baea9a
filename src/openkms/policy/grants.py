"""Grants as the evaluator sees them: who they name, what they allow, under which constraints.

Rules (kms-rules §5, AWS "Grants in AWS KMS" and the ``GrantConstraints`` API reference):

* A grant only allows; it never denies. It names one grantee principal.
* ``EncryptionContextEquals`` matches when the request's encryption context is exactly the
  constraint's pairs (any order); ``EncryptionContextSubset`` when the request includes every pair
  of the constraint (more pairs are fine). Inside a constraint keys compare case-insensitively and
  values case-sensitively. When both are present, both must hold.
* A request encryption context with two keys that differ only in case (``Tenant`` and
  ``tenant``) satisfies no constraint: which pair a case-insensitive constraint would read is
  undefined, and taking the first or the last would let the caller choose by ordering the pairs.
* Constraints are ignored for ``DescribeKey`` and ``RetireGrant``. For ``CreateGrant`` the
  constraint is checked on the grant being created (:func:`is_subset_grant`), not on a request
  encryption context.
* A grant holding ``CreateGrant`` may delegate only a subset of its operations, with
  constraints that are equally strict or stricter.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from openkms.policy.facts import RequestFacts
from openkms.policy.matching import ROOT_ARN_RE, MatchKind
from openkms.types import GrantOperation, KeySpec, KeyUsageType

__all__ = [
    "GrantConstraints",
    "GrantFacts",
    "case_collision",
    "constraints_allow",
    "grant_allows",
    "grantee_match",
    "is_subset_grant",
    "operations_valid_for_key",
]

_CONSTRAINT_FREE = frozenset({"DescribeKey", "RetireGrant", "CreateGrant"})


@dataclass(frozen=True, slots=True)
class GrantConstraints:
    encryption_context_equals: Mapping[str, str] | None = None
    encryption_context_subset: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class GrantFacts:
    grantee_principal: str
    operations: frozenset[str]  # GrantOperation values: "Decrypt", "CreateGrant", ...
    constraints: GrantConstraints | None = None
    retiring_principal: str | None = None
    # The unique id the grantee (an IAM user or role) had when the grant was created: the
    # grant then names that principal only, not a later one created under the same name.
    grantee_id: str | None = None


def _fold(pairs: Mapping[str, str]) -> dict[str, str]:
    """Constraint keys compare case-insensitively: fold them once."""
    return {k.lower(): v for k, v in pairs.items()}


def case_collision(pairs: Mapping[str, str] | None) -> str | None:
    """The lower-cased key that two keys of ``pairs`` share when case is ignored, or None."""
    seen: set[str] = set()
    for key in pairs or ():
        folded = key.lower()
        if folded in seen:
            return folded
        seen.add(folded)
    return None


def _operation_name(operation: str) -> str:
    return operation[4:] if operation[:4].lower() == "kms:" else operation


def constraints_allow(
    constraints: GrantConstraints | None, encryption_context: Mapping[str, str] | None
) -> bool:
    """Whether a request encryption context satisfies the constraints."""
    if constraints is None:
        return True
    if case_collision(encryption_context) is not None:
        return False
    context = _fold(encryption_context or {})
    equals = constraints.encryption_context_equals
    if equals is not None and _fold(equals) != context:
        return False
    subset = constraints.encryption_context_subset
    if subset is not None:
        for key, value in _fold(subset).items():
            if context.get(key) != value:
                return False
    return True


def grantee_match(grant: GrantFacts, facts: RequestFacts) -> MatchKind:
    """How the grant's grantee names the caller.

    SESSION for the exact session ARN, ENTITY for the user, the role of a role session or a
    service, ACCOUNT when the grantee is the caller's account (``:root`` or a bare id) -- then
    the caller's identity policies must also allow, as with a key policy naming the account.
    A grantee bound to a unique id matches only the principal with that id.
    """
    if grant.grantee_id is not None:
        if facts.principal_id == grant.grantee_id:
            return MatchKind.ENTITY
        return MatchKind.NONE
    grantee = grant.grantee_principal
    arn = facts.principal_arn
    if grantee == arn:
        if facts.principal_type in ("AssumedRole", "FederatedUser"):
            return MatchKind.SESSION
        if facts.principal_type != "Account":
            return MatchKind.ENTITY
    lowered = grantee.lower()
    if facts.principal_type == "User" and lowered == arn.lower():
        return MatchKind.ENTITY
    role = facts.principal_role_arn
    if role is not None and lowered == role.lower():
        return MatchKind.ENTITY
    m = ROOT_ARN_RE.match(grantee)
    account = m.group(1) if m else (grantee if grantee.isdigit() and len(grantee) == 12 else None)
    if account is not None and account == facts.principal_account:
        return MatchKind.ACCOUNT
    return MatchKind.NONE


def grant_allows(
    grant: GrantFacts,
    operation: str,
    facts: RequestFacts,
    encryption_context: Mapping[str, str] | None,
) -> bool:
    """Whether ``grant`` lets the caller do ``operation`` ("Decrypt" or "kms:Decrypt").

    True when the grantee names the caller (including as its account -- see
    :func:`grantee_match`), the operation is listed, and the constraints are satisfied.
    """
    name = _operation_name(operation)
    if name not in grant.operations:
        return False
    if grantee_match(grant, facts) is MatchKind.NONE:
        return False
    if name in _CONSTRAINT_FREE:
        return True
    return constraints_allow(grant.constraints, encryption_context)


def _folded(pairs: Mapping[str, str] | None) -> dict[str, str] | None:
    return _fold(pairs) if pairs is not None else None


def _allowed_contexts_subset(
    child: GrantConstraints | None, parent: GrantConstraints | None
) -> bool:
    """Whether every encryption context the child allows is one the parent allows."""
    if parent is None:
        return True
    p_equals = _folded(parent.encryption_context_equals)
    p_subset = _folded(parent.encryption_context_subset)
    if p_equals is None and p_subset is None:
        return True
    c_equals = _folded(child.encryption_context_equals) if child is not None else None
    c_subset = _folded(child.encryption_context_subset) if child is not None else None
    if c_equals is not None:
        if c_subset is not None and any(c_equals.get(k) != v for k, v in c_subset.items()):
            return True  # the child allows no context at all
        # the child allows exactly one context, c_equals
        return constraints_allow(GrantConstraints(p_equals, p_subset), c_equals)
    # the child allows every context that includes c_subset (every context if None)
    if p_equals is not None or c_subset is None:
        return False
    assert p_subset is not None
    return all(c_subset.get(k) == v for k, v in p_subset.items())


def is_subset_grant(parent: GrantFacts, child: GrantFacts) -> bool:
    """Whether a grantee holding ``parent`` may create ``child`` through it: the parent holds
    CreateGrant, the child's operations are among the parent's, and the child's constraints
    allow no encryption context the parent's do not."""
    if GrantOperation.CREATE_GRANT.value not in parent.operations:
        return False
    if not child.operations <= parent.operations:
        return False
    return _allowed_contexts_subset(child.constraints, parent.constraints)


# --- grant operations by key type (AWS "Grant operations" / "Key type reference") ----------

_G = GrantOperation
_COMMON = frozenset({_G.CREATE_GRANT, _G.DESCRIBE_KEY, _G.RETIRE_GRANT})
_SYMMETRIC = _COMMON | {
    _G.DECRYPT,
    _G.ENCRYPT,
    _G.GENERATE_DATA_KEY,
    _G.GENERATE_DATA_KEY_WITHOUT_PLAINTEXT,
    _G.GENERATE_DATA_KEY_PAIR,
    _G.GENERATE_DATA_KEY_PAIR_WITHOUT_PLAINTEXT,
    _G.RE_ENCRYPT_FROM,
    _G.RE_ENCRYPT_TO,
}
_HMAC = _COMMON | {_G.GENERATE_MAC, _G.VERIFY_MAC}
_ASYM_ENCRYPT = _COMMON | {
    _G.DECRYPT,
    _G.ENCRYPT,
    _G.GET_PUBLIC_KEY,
    _G.RE_ENCRYPT_FROM,
    _G.RE_ENCRYPT_TO,
}
_SIGN = _COMMON | {_G.GET_PUBLIC_KEY, _G.SIGN, _G.VERIFY}
_AGREEMENT = _COMMON | {_G.GET_PUBLIC_KEY, _G.DERIVE_SHARED_SECRET}
_KEM = _COMMON | {_G.GET_PUBLIC_KEY, _G.ENCAPSULATE, _G.DECAPSULATE}


def _valid_operations(key_spec: str, key_usage: str) -> frozenset[GrantOperation]:
    if key_usage == KeyUsageType.ENCRYPT_DECRYPT:
        return _SYMMETRIC if key_spec == KeySpec.SYMMETRIC_DEFAULT else _ASYM_ENCRYPT
    if key_usage == KeyUsageType.GENERATE_VERIFY_MAC:
        return _HMAC
    if key_usage == KeyUsageType.SIGN_VERIFY:
        return _SIGN
    if key_usage == KeyUsageType.KEY_AGREEMENT:
        return _AGREEMENT
    if key_usage == KeyUsageType.ENCAPSULATE_DECAPSULATE:
        return _KEM
    return _COMMON


def operations_valid_for_key(
    operations: Iterable[str], key_spec: str, key_usage: str
) -> str | None:
    """None when every grant operation suits the key; otherwise a ValidationException message
    naming the first one that does not (e.g. Sign on a symmetric encryption key)."""
    valid = {op.value for op in _valid_operations(key_spec, key_usage)}
    for operation in operations:
        if operation not in valid:
            return (
                f"Grant operation {operation} is not supported for a KMS key with KeySpec "
                f"{key_spec} and KeyUsage {key_usage}."
            )
    return None
