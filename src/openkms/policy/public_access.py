"""Does a resource policy grant broad ("public") access?

AWS answers this with Zelkova, an SMT-based reasoner, for ``BlockPublicPolicy`` and
ValidateResourcePolicy. openkms answers it syntactically, on the safe side, with the rule AWS
documents for S3's Block Public Access and IAM Access Analyzer: an ``Allow`` statement is
broad when its principal can be anyone (``"*"``, ``{"AWS": "*"}``, a wildcard service, or any
``NotPrincipal``) unless one of its conditions pins the caller down with fixed values of a key
that identifies who or where the caller is (an account, an ARN, an organization, a VPC, a
network range narrower than /8). Conditions are ANDed, so one such condition suffices;
``...IfExists`` operators, negated operators and ``ForAllValues:`` do not restrict (they hold
when the key is absent or for anything but the listed values).

Pure and total on any JSON value: the caller has already validated the document's grammar.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Any

__all__ = ["broad_statements"]

# Condition keys (lower-cased) whose fixed values name who, or from where, the caller is.
_ACCOUNT_KEYS = frozenset(
    {"aws:principalaccount", "aws:sourceaccount", "aws:sourceowner", "aws:resourceaccount",
     "aws:principalorgid", "aws:sourcevpc", "aws:sourcevpce", "aws:sourceorgid"}
)  # fmt: skip
_ARN_KEYS = frozenset({"aws:principalarn", "aws:sourcearn"})
_PATH_KEYS = frozenset({"aws:principalorgpaths", "aws:sourceorgpaths"})
_USERID_KEY = "aws:userid"
_IP_KEY = "aws:sourceip"
_NARROWEST_BROAD_PREFIX = 8  # an IPv4 range of /8 or wider is still the Internet's share

# Positive operators that can only hold for the values listed.
_EQUALITY = frozenset(
    {"stringequals", "stringequalsignorecase", "stringlike", "arnequals", "arnlike",
     "ipaddress"}
)  # fmt: skip
_WILDCARD = re.compile(r"[*?]|\$\{")
_ACCOUNT_ID = re.compile(r"^\d{12}$")


def _values(raw: Any) -> list[str] | None:
    items = raw if isinstance(raw, list) else [raw]
    if not items or not all(isinstance(v, str) for v in items):
        return None
    return [str(v) for v in items]


def _fixed(value: str) -> bool:
    return not _WILDCARD.search(value)


def _arn_pins_account(value: str) -> bool:
    """An ARN value names one account: its account field is 12 fixed digits and nothing
    before it is a wildcard (``arn:aws:iam::111122223333:role/*`` pins; ``arn:*`` does not)."""
    parts = value.split(":", 5)
    if len(parts) < 6:
        return False
    return all(_fixed(p) for p in parts[:5]) and bool(_ACCOUNT_ID.match(parts[4]))


def _ip_narrow(value: str) -> bool:
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    if network.version == 4:
        return network.prefixlen > _NARROWEST_BROAD_PREFIX
    return network.prefixlen > 32


def _restricts(key: str, values: list[str]) -> bool:
    if key in _ACCOUNT_KEYS:
        return all(_fixed(v) for v in values)
    if key in _ARN_KEYS:
        return all(_arn_pins_account(v) for v in values)
    if key in _PATH_KEYS:
        # o-abc/r-root/ou-x/* pins the organization: its first segment must be fixed.
        return all(_fixed(v.split("/", 1)[0]) and v.split("/", 1)[0] for v in values)
    if key == _USERID_KEY:
        # "AROAEXAMPLEID:*" pins a role; a leading wildcard pins nothing.
        return all(_fixed(v.split(":", 1)[0]) and v.split(":", 1)[0] for v in values)
    if key == _IP_KEY:
        return all(_ip_narrow(v) for v in values)
    return False


def _condition_restricts(condition: Any) -> bool:
    if not isinstance(condition, dict):
        return False
    for operator, block in condition.items():
        if not isinstance(operator, str) or not isinstance(block, dict):
            continue
        qualifier, _, name = operator.rpartition(":")
        name = name.lower()
        if qualifier.lower() == "forallvalues" or name.endswith("ifexists"):
            continue
        if name not in _EQUALITY:
            continue
        for key, raw in block.items():
            values = _values(raw)
            if values is not None and isinstance(key, str) and _restricts(key.lower(), values):
                return True
    return False


def _anyone(principal: Any) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    for ptype in ("AWS", "Service"):
        raw = principal.get(ptype)
        items = raw if isinstance(raw, list) else [raw]
        if "*" in items:
            return True
    return False


def broad_statements(document: Any) -> list[str]:
    """The statements (by Sid, else by position ``#n``) of ``document`` (parsed JSON) that
    allow broad access; empty when there is none."""
    if not isinstance(document, dict):
        return []
    raw = document.get("Statement")
    statements: Iterable[Any] = [raw] if isinstance(raw, dict) else raw or []
    if not isinstance(statements, list | tuple):
        return []
    out: list[str] = []
    for index, stmt in enumerate(statements):
        if not isinstance(stmt, dict) or stmt.get("Effect") != "Allow":
            continue
        broad = "NotPrincipal" in stmt or _anyone(stmt.get("Principal"))
        if broad and not _condition_restricts(stmt.get("Condition")):
            sid = stmt.get("Sid")
            out.append(sid if isinstance(sid, str) and sid else f"#{index}")
    return out
