"""What an IAM or STS call leaves in the audit log, in CloudTrail's shape.

CloudTrail records IAM calls with ``eventSource`` ``iam.amazonaws.com`` and STS calls with
``sts.amazonaws.com``, request parameters and (for calls that change something) response
elements with lowerCamelCase member names, and never a secret: ``CreateAccessKey``'s
``secretAccessKey`` and ``AssumeRole``'s ``secretAccessKey`` and ``sessionToken`` are not in
the record (``credentials`` keeps ``accessKeyId`` and ``expiration``, which tie later calls made
with the session to the call that made it).

What is left out, at any depth: every member whose shape the IAM or STS model marks
``sensitive`` (``SecretAccessKey``, ``Password``, ``PrivateKey``, ``SAMLAssertion``,
``WebIdentityToken``, ``Base32StringSeed``, ``QRCodePNG`` ...), every member whose name holds
``Secret``, ``Password``, ``Token`` or ``PrivateKey`` (``SessionToken``, ``TokenCode``), and
every value that is not text, a number, a boolean, a time, a list or a structure (default deny).
Times are written as CloudTrail writes them (``Aug 10, 2022, 10:38:27 PM``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from importlib import resources
from typing import Any, Final

from openkms.audit.redaction import camel, cloudtrail_date

__all__ = ["EVENT_SOURCES", "iam_read_only", "redact_query"]

EVENT_SOURCES: Final = {
    "iam": "iam.amazonaws.com",
    "sts": "sts.amazonaws.com",
    # Only the records of requests refused before dispatch (openkms.secretsmanager.audit
    # writes the others).
    "secretsmanager": "secretsmanager.amazonaws.com",
}
_FRAGMENTS: Final = ("Secret", "Password", "Token", "PrivateKey")
_MODEL_FILES: Final = {"iam": "iam-2010-05-08.json", "sts": "sts-2011-06-15.json"}
_CREDENTIALS_KEPT: Final = ("AccessKeyId", "Expiration")
_READ_ONLY_PREFIXES: Final = ("Get", "List", "Simulate", "Generate", "Decode")


@lru_cache(maxsize=2)
def _sensitive_members(service: str) -> frozenset[str]:
    """Names of the members whose shape the model marks sensitive."""
    text = resources.files("openkms.iam").joinpath("data", _MODEL_FILES[service]).read_text("utf-8")
    shapes: dict[str, Any] = json.loads(text)["shapes"]
    sensitive = {name for name, shape in shapes.items() if shape.get("sensitive")}
    members: set[str] = set()
    for shape in shapes.values():
        for member, spec in shape.get("members", {}).items():
            if spec.get("shape") in sensitive:
                members.add(member)
    return frozenset(members)


def _dropped(name: str, sensitive: frozenset[str]) -> bool:
    return name in sensitive or any(fragment in name for fragment in _FRAGMENTS)


def _value(value: object, sensitive: frozenset[str]) -> tuple[bool, Any]:
    if value is None or isinstance(value, str | int | float | bool):
        return True, value
    if isinstance(value, datetime):
        return True, cloudtrail_date(value.timestamp())
    if isinstance(value, Mapping):
        return True, _structure(value, sensitive)
    if isinstance(value, list | tuple):
        out = []
        for item in value:
            keep, logged = _value(item, sensitive)
            if keep:
                out.append(logged)
        return True, out
    return False, None  # bytes and anything unknown: not logged


def _structure(params: Mapping[Any, Any], sensitive: frozenset[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in params.items():
        if not isinstance(name, str) or _dropped(name, sensitive):
            continue
        if name == "Credentials" and isinstance(value, Mapping):
            value = {k: value[k] for k in _CREDENTIALS_KEPT if k in value}
        keep, logged = _value(value, sensitive)
        if keep:
            out[camel(name)] = logged
    return out


def redact_query(service: str, params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The loggable part of an IAM or STS request or result; None when nothing is left."""
    if not params or service not in _MODEL_FILES:
        return None
    return _structure(params, _sensitive_members(service)) or None


def iam_read_only(action: str) -> bool:
    """CloudTrail's ``readOnly`` for an IAM or STS action (GetUser, ListRoles,
    SimulatePrincipalPolicy, GetCallerIdentity ...)."""
    return action.startswith(_READ_ONLY_PREFIXES)
