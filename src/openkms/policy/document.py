"""Parsing and validation of policy documents (AWS's access-policy grammar).

``parse_policy(text, kind)`` turns JSON text into an immutable :class:`PolicyDocument` whose
wildcards and condition values are compiled once, so that a document parsed at PutKeyPolicy (or
cached by the caller) is cheap to evaluate on every request. Any violation of the grammar raises
:class:`PolicyError`; the KMS layer answers it as ``MalformedPolicyDocumentException`` and the IAM
layer as ``MalformedPolicyDocument``. Size limits are the caller's.

Kinds:

* ``key`` (KMS key policy) and ``trust`` (role trust policy) are resource-based: every statement
  needs a Principal or NotPrincipal. A key-policy statement without Action or Resource is
  accepted and never applies (kms-rules §5). Trust policies may not have Resource.
* ``identity`` and ``session`` policies may not name a Principal and need Action and Resource.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from openkms.policy.conditions import (
    Condition,
    ConditionValueError,
    UnsupportedOperatorError,
    compile_condition,
)
from openkms.policy.matching import (
    ACCOUNT_ID_RE,
    IAM_ENTITY_RE,
    ROOT_ARN_RE,
    SERVICE_RE,
    STS_SESSION_RE,
    PatternSet,
    PrincipalSpec,
    compile_action_set,
    compile_resource_set,
)
from openkms.policy.principal_ids import UNIQUE_ID_RE
from openkms.policy.variables import parse_template

__all__ = [
    "PolicyDocument",
    "PolicyError",
    "PolicyKind",
    "Statement",
    "parse_policy",
    "parse_policy_cached",
]

PolicyKind = Literal["key", "identity", "trust", "session"]
VERSIONS = ("2012-10-17", "2008-10-17")
_TOP_LEVEL = frozenset({"Version", "Id", "Statement"})
_STATEMENT_ELEMENTS = frozenset(
    {"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource",
     "NotResource", "Condition"}
)  # fmt: skip
_ACTION_RE = re.compile(r"^[A-Za-z0-9*?_-]+:[A-Za-z0-9*?_.-]+$")
_SID_IAM_RE = re.compile(r"^[0-9A-Za-z]*$")
_PRINCIPAL_TYPES = frozenset({"AWS", "Service", "Federated", "CanonicalUser"})

INVALID_PRINCIPALS = "Policy contains a statement with one or more invalid principals."


class PolicyError(ValueError):
    """The document is not a valid policy; ``message`` reads like AWS's."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class Statement:
    sid: str | None
    allow: bool
    principal: PrincipalSpec | None
    not_principal: PrincipalSpec | None
    actions: PatternSet | None
    not_action: bool
    resources: PatternSet | None
    not_resource: bool
    conditions: tuple[Condition, ...]
    effective: bool  # False for a key-policy statement without Action or Resource

    @property
    def effect(self) -> str:
        return "Allow" if self.allow else "Deny"


@dataclass(frozen=True, slots=True)
class PolicyDocument:
    kind: PolicyKind
    version: str | None
    id: str | None
    statements: tuple[Statement, ...]

    @property
    def variables_enabled(self) -> bool:
        return self.version == "2012-10-17"


# --- JSON ----------------------------------------------------------------------------------


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise PolicyError(f"Policy document contains the element {key} more than once.")
        out[key] = value
    return out


def _reject_constant(name: str) -> Any:
    raise PolicyError(f"Policy document is not valid JSON: {name} is not allowed.")


def _load(text: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except PolicyError:
        raise
    except ValueError as exc:
        # JSONDecodeError, and Python's refusal of an integer of more than 4,300 digits
        # (CVE-2020-10735's limit), which is not a JSONDecodeError.
        raise PolicyError("Policy document is not valid JSON.") from exc
    except RecursionError as too_deep:
        raise PolicyError("Policy document is nested too deeply.") from too_deep


# --- elements ------------------------------------------------------------------------------


def _string_list(value: Any, element: str) -> tuple[str, ...]:
    """A string or a non-empty list of strings."""
    if isinstance(value, str):
        items: list[Any] = [value]
    elif isinstance(value, list) and value:
        items = value
    else:
        raise PolicyError(f"Policy contains a statement with an invalid {element} element.")
    for item in items:
        if not isinstance(item, str) or not item:
            raise PolicyError(f"Policy contains a statement with an invalid {element} element.")
    return tuple(items)


def _condition_values(value: Any) -> tuple[str, ...]:
    """Condition values: scalars or a list of scalars; booleans and numbers become strings."""
    items = value if isinstance(value, list) else [value]
    out: list[str] = []
    for item in items:
        if isinstance(item, bool):
            out.append("true" if item else "false")
        elif isinstance(item, str):
            out.append(item)
        elif isinstance(item, int | float):
            out.append(repr(item) if isinstance(item, float) else str(item))
        else:
            raise PolicyError("Policy contains a statement with an invalid condition value.")
    return tuple(out)


def _parse_principal(value: Any) -> PrincipalSpec:
    if value == "*":
        return PrincipalSpec(wildcard=True)
    if not isinstance(value, dict) or not value:
        raise PolicyError(INVALID_PRINCIPALS)
    wildcard = False
    accounts: set[str] = set()
    entities: set[str] = set()
    sessions: set[str] = set()
    services: set[str] = set()
    federated: set[str] = set()
    canonical: set[str] = set()
    ids: set[str] = set()
    for ptype, raw in value.items():
        if ptype not in _PRINCIPAL_TYPES:
            raise PolicyError(INVALID_PRINCIPALS)
        if isinstance(raw, str):
            items: list[Any] = [raw]
        elif isinstance(raw, list) and raw:
            items = raw
        else:
            raise PolicyError(INVALID_PRINCIPALS)
        for item in items:
            if not isinstance(item, str) or not item:
                raise PolicyError(INVALID_PRINCIPALS)
            if ptype == "AWS":
                if item == "*":
                    wildcard = True
                elif ACCOUNT_ID_RE.match(item):
                    accounts.add(item)
                elif m := ROOT_ARN_RE.match(item):
                    accounts.add(m.group(1))
                elif IAM_ENTITY_RE.match(item):
                    entities.add(item.lower())
                elif STS_SESSION_RE.match(item):
                    sessions.add(item)
                elif UNIQUE_ID_RE.match(item):
                    ids.add(item)
                else:
                    raise PolicyError(INVALID_PRINCIPALS)
            elif ptype == "Service":
                if item == "*":
                    wildcard = True
                elif SERVICE_RE.match(item):
                    services.add(item)
                else:
                    raise PolicyError(INVALID_PRINCIPALS)
            elif ptype == "Federated":
                if "*" in item or any(ch.isspace() for ch in item):
                    raise PolicyError(INVALID_PRINCIPALS)
                federated.add(item)
            else:
                if "*" in item:
                    raise PolicyError(INVALID_PRINCIPALS)
                canonical.add(item)
    return PrincipalSpec(
        wildcard,
        frozenset(accounts),
        frozenset(entities),
        frozenset(sessions),
        frozenset(services),
        frozenset(federated),
        frozenset(canonical),
        frozenset(ids),
    )


def _parse_actions(value: Any, element: str) -> PatternSet:
    actions = _string_list(value, element)
    for action in actions:
        if action != "*" and not _ACTION_RE.match(action):
            raise PolicyError(
                f"Policy contains a statement with an invalid action {action}: actions must be "
                '"*" or prefixed by a service, e.g. kms:Decrypt.'
            )
    return compile_action_set(parse_template(a, variables=False) for a in actions)


def _parse_resources(value: Any, element: str, *, variables: bool) -> PatternSet:
    resources = _string_list(value, element)
    for resource in resources:
        if resource != "*" and not resource.startswith("arn:") and "${" not in resource:
            raise PolicyError(
                f"Policy contains a statement with an invalid resource {resource}: resources "
                'must be "*" or an ARN.'
            )
    return compile_resource_set(parse_template(r, variables=variables) for r in resources)


def _parse_conditions(value: Any, *, variables: bool) -> tuple[Condition, ...]:
    if not isinstance(value, dict):
        raise PolicyError("Policy contains a statement with an invalid Condition element.")
    out: list[Condition] = []
    for operator, block in value.items():
        if not isinstance(block, dict):
            raise PolicyError(
                f"Policy contains a statement with an invalid Condition block for {operator}."
            )
        for key, raw in block.items():
            if ":" not in key or key.startswith(":") or key.endswith(":"):
                raise PolicyError(
                    f"Policy contains a statement with an invalid condition key {key}: "
                    "condition keys must be prefixed by a service, e.g. kms:CallerAccount."
                )
            values = _condition_values(raw)
            try:
                out.append(compile_condition(operator, key, values, variables=variables))
            except UnsupportedOperatorError as exc:
                raise PolicyError(
                    "Policy contains a statement with an unsupported condition operator "
                    f"{operator}."
                ) from exc
            except ConditionValueError as invalid:
                raise PolicyError(
                    f"Policy contains a statement with an invalid condition value: {invalid}."
                ) from invalid
    return tuple(out)


def _parse_statement(raw: Any, kind: PolicyKind, *, variables: bool) -> Statement:
    if not isinstance(raw, dict):
        raise PolicyError("Policy contains a statement that is not a JSON object.")
    for element in raw:
        if element not in _STATEMENT_ELEMENTS:
            raise PolicyError(f"Policy contains a statement with an unknown element {element}.")
    sid = raw.get("Sid")
    if sid is not None:
        if not isinstance(sid, str):
            raise PolicyError("Policy contains a statement with an invalid Sid.")
        if kind != "key" and not _SID_IAM_RE.match(sid):
            raise PolicyError("Statement IDs (SID) must be alpha-numeric.")
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise PolicyError(
            "Policy contains a statement with an invalid Effect: it must be Allow or Deny."
        )
    has_principal = "Principal" in raw
    has_not_principal = "NotPrincipal" in raw
    if has_principal and has_not_principal:
        raise PolicyError("Policy contains a statement with both Principal and NotPrincipal.")
    if kind in ("key", "trust"):
        if not (has_principal or has_not_principal):
            raise PolicyError("Policy contains a statement with no Principal.")
    elif has_principal or has_not_principal:
        raise PolicyError(
            f"Policy contains a statement with a prohibited element "
            f"{'Principal' if has_principal else 'NotPrincipal'}: {kind} policies name no "
            "principal."
        )
    principal = _parse_principal(raw["Principal"]) if has_principal else None
    not_principal = _parse_principal(raw["NotPrincipal"]) if has_not_principal else None

    if "Action" in raw and "NotAction" in raw:
        raise PolicyError("Policy contains a statement with both Action and NotAction.")
    actions: PatternSet | None = None
    not_action = "NotAction" in raw
    if "Action" in raw or not_action:
        element = "NotAction" if not_action else "Action"
        actions = _parse_actions(raw[element], element)
    elif kind != "key":
        raise PolicyError("Policy contains a statement with no Action.")

    if "Resource" in raw and "NotResource" in raw:
        raise PolicyError("Policy contains a statement with both Resource and NotResource.")
    resources: PatternSet | None = None
    not_resource = "NotResource" in raw
    if "Resource" in raw or not_resource:
        element = "NotResource" if not_resource else "Resource"
        if kind == "trust":
            raise PolicyError(
                f"Policy contains a statement with a prohibited element {element}: trust "
                "policies name no resource."
            )
        resources = _parse_resources(raw[element], element, variables=variables)
    elif kind in ("identity", "session"):
        raise PolicyError("Policy contains a statement with no Resource.")

    conditions: tuple[Condition, ...] = ()
    if "Condition" in raw:
        conditions = _parse_conditions(raw["Condition"], variables=variables)

    if kind == "trust":
        effective = actions is not None
    else:
        effective = actions is not None and resources is not None
    return Statement(
        sid=sid,
        allow=effect == "Allow",
        principal=principal,
        not_principal=not_principal,
        actions=actions,
        not_action=not_action,
        resources=resources,
        not_resource=not_resource,
        conditions=conditions,
        effective=effective,
    )


def parse_policy(text: str, kind: PolicyKind) -> PolicyDocument:
    """Parse and validate ``text`` as a policy of ``kind``; raises :class:`PolicyError`."""
    if kind not in ("key", "identity", "trust", "session"):
        raise ValueError(f"unknown policy kind {kind!r}")
    doc = _load(text)
    if not isinstance(doc, dict):
        raise PolicyError("Policy document must be a JSON object.")
    for element in doc:
        if element not in _TOP_LEVEL:
            raise PolicyError(f"Policy document contains an unknown element {element}.")
    version = doc.get("Version")
    if version is not None and version not in VERSIONS:
        raise PolicyError(
            f"Policy document has an invalid Version {version!r}: it must be 2012-10-17 or "
            "2008-10-17."
        )
    policy_id = doc.get("Id")
    if policy_id is not None and not isinstance(policy_id, str):
        raise PolicyError("Policy document has an invalid Id.")
    if "Statement" not in doc:
        raise PolicyError("Policy document has no Statement.")
    raw_statements = doc["Statement"]
    if isinstance(raw_statements, dict):
        raw_statements = [raw_statements]
    if not isinstance(raw_statements, list):
        raise PolicyError("Policy document has an invalid Statement element.")
    variables = version == "2012-10-17"
    statements = tuple(_parse_statement(s, kind, variables=variables) for s in raw_statements)
    if kind != "key":
        sids = [s.sid for s in statements if s.sid]
        if len(sids) != len(set(sids)):
            raise PolicyError("Statement IDs (SID) in a single policy must be unique.")
    return PolicyDocument(kind, version, policy_id, statements)


parse_policy_cached: Callable[[str, PolicyKind], PolicyDocument] = functools.lru_cache(
    maxsize=2048
)(parse_policy)
"""``parse_policy`` memoized on (text, kind): documents are immutable, so sharing is safe."""
