"""The Condition element: operators, the IfExists suffix and the ForAllValues / ForAnyValue
set qualifiers, with AWS's semantics.

One :class:`Condition` is one (operator, key) pair of a statement; a statement's conditions are
ANDed, the values listed for one key are ORed.

Per AWS's "Condition operators" and "Single-valued vs. multivalued context keys" pages:

* A missing key makes a positive operator false and a negated one (``StringNotEquals``,
  ``NotIpAddress``, ``ArnNotLike``...) true. ``...IfExists`` makes a missing key true for every
  operator. ``Null`` tests presence: ``true`` means the key is absent (an empty list counts as
  absent).
* A negated operator with several policy values is true when the request value matches none of
  them (it is the complement of the positive operator).
* ``ForAllValues:`` is true when every request value satisfies the operator -- and when the key
  is missing or empty. ``ForAnyValue:`` is true when at least one value does, false when the key
  is missing or empty. With a negated operator "satisfies" means "matches none of the policy
  values", so ``ForAllValues:StringNotLike`` is true when no request value is like any policy
  value, ``ForAnyValue:StringNotEquals`` when some request value equals none of them.
* Without a qualifier a multivalued request key is true for a positive operator when any value
  matches, and a negated operator is its exact complement.
* Key names are case-insensitive (stored lower-cased); values are case-sensitive except for the
  ``IgnoreCase`` operators and ``Bool``.
* Policy variables are substituted in String, Bool and ARN operator values only (as AWS lists);
  Numeric, Date, Binary and IP values are parsed and validated when the policy is parsed.
"""

from __future__ import annotations

import base64
import binascii
import functools
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Literal

from openkms.policy.matching import Glob, wildcard_glob
from openkms.policy.variables import Template, Text, parse_template, resolve_pieces, resolve_text

__all__ = [
    "OPERATORS",
    "Condition",
    "ConditionValueError",
    "OperatorSpec",
    "UnsupportedOperatorError",
    "compile_condition",
    "condition_matches",
    "conditions_match",
    "parse_date",
    "parse_operator",
]

Kind = Literal["string", "string_ic", "string_like", "numeric", "date", "bool", "binary", "ip",
               "arn", "null"]  # fmt: skip
Cmp = Literal["eq", "lt", "le", "gt", "ge"]
Qualifier = Literal["", "ForAllValues", "ForAnyValue"]


@dataclass(frozen=True, slots=True)
class OperatorSpec:
    name: str
    kind: Kind
    cmp: Cmp
    negated: bool

    @property
    def variables(self) -> bool:
        return self.kind in ("string", "string_ic", "string_like", "bool", "arn")


def _ops() -> dict[str, OperatorSpec]:
    table: list[OperatorSpec] = [
        OperatorSpec("StringEquals", "string", "eq", False),
        OperatorSpec("StringNotEquals", "string", "eq", True),
        OperatorSpec("StringEqualsIgnoreCase", "string_ic", "eq", False),
        OperatorSpec("StringNotEqualsIgnoreCase", "string_ic", "eq", True),
        OperatorSpec("StringLike", "string_like", "eq", False),
        OperatorSpec("StringNotLike", "string_like", "eq", True),
        OperatorSpec("Bool", "bool", "eq", False),
        OperatorSpec("BinaryEquals", "binary", "eq", False),
        OperatorSpec("IpAddress", "ip", "eq", False),
        OperatorSpec("NotIpAddress", "ip", "eq", True),
        OperatorSpec("ArnEquals", "arn", "eq", False),
        OperatorSpec("ArnLike", "arn", "eq", False),
        OperatorSpec("ArnNotEquals", "arn", "eq", True),
        OperatorSpec("ArnNotLike", "arn", "eq", True),
        OperatorSpec("Null", "null", "eq", False),
    ]
    for prefix, kind in (("Numeric", "numeric"), ("Date", "date")):
        table += [
            OperatorSpec(f"{prefix}Equals", kind, "eq", False),  # type: ignore[arg-type]
            OperatorSpec(f"{prefix}NotEquals", kind, "eq", True),  # type: ignore[arg-type]
            OperatorSpec(f"{prefix}LessThan", kind, "lt", False),  # type: ignore[arg-type]
            OperatorSpec(f"{prefix}LessThanEquals", kind, "le", False),  # type: ignore[arg-type]
            OperatorSpec(f"{prefix}GreaterThan", kind, "gt", False),  # type: ignore[arg-type]
            OperatorSpec(f"{prefix}GreaterThanEquals", kind, "ge", False),  # type: ignore[arg-type]
        ]
    return {op.name.lower(): op for op in table}


OPERATORS: dict[str, OperatorSpec] = _ops()


class UnsupportedOperatorError(ValueError):
    """The operator name is not one AWS defines (document.py turns it into a PolicyError)."""


class ConditionValueError(ValueError):
    """A condition value cannot be used with its operator (e.g. a non-numeric NumericEquals)."""


def parse_operator(name: str) -> tuple[OperatorSpec, Qualifier, bool]:
    """``"ForAnyValue:StringLikeIfExists"`` -> (StringLike, "ForAnyValue", True).

    Operator and qualifier names are matched case-insensitively."""
    qualifier: Qualifier = ""
    base = name
    if ":" in name:
        prefix, _, base = name.partition(":")
        if prefix.lower() == "forallvalues":
            qualifier = "ForAllValues"
        elif prefix.lower() == "foranyvalue":
            qualifier = "ForAnyValue"
        else:
            raise UnsupportedOperatorError(name)
    lowered = base.lower()
    op = OPERATORS.get(lowered)
    if op is not None:
        return op, qualifier, False
    if lowered.endswith("ifexists"):
        op = OPERATORS.get(lowered[: -len("ifexists")])
        if op is not None and op.kind != "null":
            return op, qualifier, True
    raise UnsupportedOperatorError(name)


# --- value parsing -------------------------------------------------------------------------

_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_EPOCH = re.compile(r"^-?\d+(?:\.\d+)?$")


def parse_date(value: str) -> float | None:
    """ISO 8601 (date, or date and time, 'Z' or offset; naive means UTC) or epoch seconds."""
    text = value.strip()
    if not text:
        return None
    if _EPOCH.match(text):
        try:
            return float(text)
        except ValueError:
            return None
    try:
        if _DATE_ONLY.match(text):
            dt = datetime.strptime(text, "%Y-%m-%d")
        else:
            dt = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1] in "Zz" else text)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def _parse_numeric(value: str) -> Decimal | None:
    try:
        number = Decimal(value.strip())
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _parse_binary(value: str) -> bytes | None:
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class IpRange:
    """A CIDR block as integers: ``address & mask == network`` within one IP version."""

    version: int
    network: int
    mask: int


def _parse_network(value: str) -> IpRange | None:
    try:
        net = ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        return None
    return IpRange(net.version, int(net.network_address), int(net.netmask))


@functools.lru_cache(maxsize=1024)
def _parse_ip(value: str) -> tuple[int, int] | None:
    """(version, address) of a request IP address; cached, as the same callers recur."""
    try:
        addr = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    return addr.version, int(addr)


def _parse_bool(value: str) -> bool | None:
    lowered = value.strip().lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    return None


# --- compiled conditions -------------------------------------------------------------------

Parsed = str | Decimal | float | bool | bytes | IpRange | Glob


@dataclass(frozen=True, slots=True)
class CondValue:
    """One policy value: ``parsed`` when fixed at parse time, else ``template`` to resolve."""

    parsed: Parsed | None
    template: Template | None


_EQUALITY_KINDS = frozenset({"string", "string_ic", "bool", "binary"})


@dataclass(frozen=True, slots=True)
class Condition:
    operator: str  # as written in the policy
    op: OperatorSpec
    qualifier: Qualifier
    if_exists: bool
    key: str  # lower-cased
    values: tuple[CondValue, ...]
    # Precomputed when no value holds a variable: the parsed values, and for the equality
    # kinds (string, string_ic, bool, binary) the same as a set for O(1) membership.
    static: tuple[Parsed, ...] | None = None
    static_set: frozenset[Parsed] | None = None


def _compile_text(op: OperatorSpec, pieces: tuple[Text, ...]) -> Parsed | None:
    text = "".join(p.text for p in pieces)
    if op.kind == "string":
        return text
    if op.kind == "string_ic":
        return text.lower()
    if op.kind == "string_like":
        return wildcard_glob(pieces, "plain", ignore_case=False)
    if op.kind == "arn":
        if text.count(":") >= 5:
            return wildcard_glob(pieces, "arn", ignore_case=False)
        return wildcard_glob(pieces, "plain", ignore_case=False)
    if op.kind == "bool":
        return _parse_bool(text)
    raise AssertionError(op.kind)  # pragma: no cover


def compile_value(op: OperatorSpec, raw: str, *, variables: bool) -> CondValue:
    """Compile one policy value; raises ConditionValueError for a value the operator rejects."""
    kind = op.kind
    if kind == "null":
        flag = _parse_bool(raw)
        if flag is None:
            raise ConditionValueError(f"Null condition values must be true or false, not {raw!r}")
        return CondValue(flag, None)
    if op.variables:
        template = parse_template(raw, variables=variables)
        if template.has_variables:
            return CondValue(None, template)
        pieces = tuple(p for p in template.pieces if isinstance(p, Text))
        parsed = _compile_text(op, pieces)
        if kind == "bool" and parsed is None:
            raise ConditionValueError(f"Bool condition values must be true or false, not {raw!r}")
        return CondValue(parsed, None)
    result: Parsed | None
    if kind == "numeric":
        result = _parse_numeric(raw)
    elif kind == "date":
        result = parse_date(raw)
    elif kind == "binary":
        result = _parse_binary(raw)
    else:
        result = _parse_network(raw)
    if result is None:
        raise ConditionValueError(f"{raw!r} is not a valid value for the {op.name} operator")
    return CondValue(result, None)


def compile_condition(
    operator: str, key: str, raw_values: tuple[str, ...], *, variables: bool
) -> Condition:
    op, qualifier, if_exists = parse_operator(operator)
    values = tuple(compile_value(op, raw, variables=variables) for raw in raw_values)
    static: tuple[Parsed, ...] | None = None
    static_set: frozenset[Parsed] | None = None
    if all(v.template is None for v in values):
        static = tuple(v.parsed for v in values if v.parsed is not None)
        if op.kind in _EQUALITY_KINDS:
            static_set = frozenset(static)
    return Condition(operator, op, qualifier, if_exists, key.lower(), values, static, static_set)


# --- evaluation ----------------------------------------------------------------------------


def _resolve(
    cond: Condition, context: Mapping[str, tuple[str, ...]]
) -> tuple[Parsed, ...] | frozenset[Parsed]:
    if cond.static_set is not None:
        return cond.static_set
    if cond.static is not None:
        return cond.static
    out: list[Parsed] = []
    for value in cond.values:
        if value.template is None:
            if value.parsed is not None:
                out.append(value.parsed)
            continue
        if cond.op.kind in ("string", "string_ic", "bool"):
            text = resolve_text(value.template, context)
            if text is None:
                continue  # unresolved: null matches nothing
            if cond.op.kind == "string":
                out.append(text)
            elif cond.op.kind == "string_ic":
                out.append(text.lower())
            else:
                flag = _parse_bool(text)
                if flag is not None:
                    out.append(flag)
            continue
        pieces = resolve_pieces(value.template, context)
        if pieces is None:
            continue
        compiled = _compile_text(cond.op, pieces)
        if compiled is not None:
            out.append(compiled)
    if cond.op.kind in _EQUALITY_KINDS:
        return frozenset(out)
    return tuple(out)


def _request_value(kind: Kind, value: str) -> object | None:
    """The request value in the operator's type; None if it has no such reading."""
    if kind in ("string", "string_like", "arn"):
        return value
    if kind == "string_ic":
        return value.lower()
    if kind == "numeric":
        return _parse_numeric(value)
    if kind == "date":
        return parse_date(value)
    if kind == "bool":
        return _parse_bool(value)
    if kind == "binary":
        decoded = _parse_binary(value)
        return decoded if decoded is not None else value.encode("utf-8")
    if kind == "ip":
        return _parse_ip(value)
    return None  # pragma: no cover


def _compare(cmp: Cmp, left: Decimal | float, right: Decimal | float) -> bool:
    if cmp == "eq":
        return left == right
    if cmp == "lt":
        return left < right
    if cmp == "le":
        return left <= right
    if cmp == "gt":
        return left > right
    return left >= right


def _positive(
    op: OperatorSpec, request: object, policy_values: tuple[Parsed, ...] | frozenset[Parsed]
) -> bool:
    """Whether one request value matches any policy value under the positive operator."""
    kind = op.kind
    if kind in ("string_like", "arn"):
        assert isinstance(request, str)
        return any(isinstance(p, Glob) and p.fullmatch(request) for p in policy_values)
    if kind in ("numeric", "date"):
        assert isinstance(request, Decimal | float)
        return any(
            _compare(op.cmp, request, p)  # type: ignore[arg-type]
            for p in policy_values
        )
    if kind == "ip":
        assert isinstance(request, tuple)
        version, address = request
        return any(
            isinstance(p, IpRange) and p.version == version and address & p.mask == p.network
            for p in policy_values
        )
    return request in policy_values  # string, string_ic, bool, binary: a frozenset


def condition_matches(cond: Condition, context: Mapping[str, tuple[str, ...]]) -> bool:
    values = context.get(cond.key)
    op = cond.op
    if op.kind == "null":
        absent = not values
        return any(v.parsed is absent for v in cond.values)
    if not values:
        if cond.if_exists or cond.qualifier == "ForAllValues":
            return True
        if cond.qualifier == "ForAnyValue":
            return False
        return op.negated
    policy_values = _resolve(cond, context)
    negated = op.negated
    if cond.qualifier == "ForAllValues":
        for raw in values:
            request = _request_value(op.kind, raw)
            hit = request is not None and _positive(op, request, policy_values)
            if hit == negated:
                return False
        return True
    if cond.qualifier == "ForAnyValue":
        for raw in values:
            request = _request_value(op.kind, raw)
            hit = request is not None and _positive(op, request, policy_values)
            if hit != negated:
                return True
        return False
    for raw in values:
        request = _request_value(op.kind, raw)
        if request is not None and _positive(op, request, policy_values):
            return not negated
    return negated


def conditions_match(
    conditions: tuple[Condition, ...], context: Mapping[str, tuple[str, ...]]
) -> bool:
    return all(condition_matches(cond, context) for cond in conditions)
