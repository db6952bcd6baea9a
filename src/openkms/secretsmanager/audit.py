"""What a Secrets Manager call leaves in the audit log, in CloudTrail's shape: eventSource
``secretsmanager.amazonaws.com``, request parameters with lowerCamelCase names, response
elements for calls that change something, and never a secret value.

Left out at any depth: every member whose shape the model marks sensitive (``SecretString``,
``SecretBinary``, ``RandomPassword`` ...), any member whose name holds ``SecretString``,
``SecretBinary`` or ``Password``, and every value that is not text, a number, a boolean, a
list or a structure (``bytes`` above all: default deny)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from openkms.audit.events import build_record
from openkms.audit.redaction import camel
from openkms.context import RequestContext
from openkms.secretsmanager.model import EVENT_SOURCE, READ_ONLY, sensitive_members

_FRAGMENTS: Final = ("SecretString", "SecretBinary", "Password")


def is_read_only(operation: str) -> bool:
    return operation in READ_ONLY


def _denied(name: str) -> bool:
    return name in sensitive_members() or any(f in name for f in _FRAGMENTS)


def redact(value: Any) -> Any:
    """A copy of ``value`` fit for the audit log (None for what may not be logged)."""
    kind = type(value)
    # The exact built-in types first: isinstance against the Mapping ABC costs thousands of
    # instructions even for a str, and validated requests hold only these.
    if kind is str or kind is int or kind is bool or kind is float:
        return value
    if kind is dict or isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for name, item in value.items():
            key = str(name)
            if _denied(key):
                continue
            kept = redact(item)
            if kept is not None:
                out[camel(key)] = kept
        return out
    if isinstance(value, list | tuple):
        return [kept for kept in (redact(item) for item in value) if kept is not None]
    if isinstance(value, str | int | float | bool):
        return value
    return None


def secrets_record(
    ctx: RequestContext,
    params: Mapping[str, Any] | None,
    result: Mapping[str, Any] | None,
    error_code: str | None,
    error_message: str | None,
) -> dict[str, Any]:
    """The record of one authenticated Secrets Manager call."""
    operation = ctx.operation or "Unknown"
    read_only = is_read_only(operation)
    record = build_record(
        ctx=ctx,
        operation=operation,
        request_params=None,
        response=None,
        error_code=error_code,
        error_message=error_message,
        request_id=ctx.request_id,
        event_time=ctx.now,
        region=ctx.region,
        source_ip=ctx.source_ip,
        user_agent=ctx.user_agent,
        read_only=read_only,
        resources=ctx.resources,
        account_id=ctx.principal.account_id,
        event_source=EVENT_SOURCE,
    )
    record["requestParameters"] = redact(params) if params is not None else None
    keep_response = error_code is None and not read_only and result is not None
    record["responseElements"] = redact(result) if keep_response else None
    return record
