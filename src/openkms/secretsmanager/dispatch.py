"""The Secrets Manager endpoint: the one dispatch table, JSON 1.1 in and out.

``handle`` never raises: every outcome, a storage outage or a bug included, becomes an answer
botocore parses. ``error_body`` is the one place where an error becomes Secrets Manager's
``{"__type", "Message"}`` body; ``render_error`` answers the authentication errors the HTTP
app raises before dispatch (bad signature, unknown key ...) in the same shape.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from openkms.context import RequestContext
from openkms.errors import KMSInternalException, OpenKMSError, UnknownOperationException
from openkms.protocol import codec
from openkms.protocol.validation import ModelValidator
from openkms.secretsmanager import operations, replication, resource_policies
from openkms.secretsmanager.deps import Handler, Params, SecretsDeps
from openkms.secretsmanager.errors import InternalServiceError, NotImplementedHere, SecretsError
from openkms.secretsmanager.model import READ_ONLY, TARGET_PREFIX, load_model, operation_names
from openkms.secretsmanager.rotation import operations as rotation_operations
from openkms.storage.base import StorageError

log = logging.getLogger("openkms.secretsmanager")

_TARGET = TARGET_PREFIX + "."

HANDLERS: Mapping[str, Handler] = {
    **operations.OPERATIONS,
    **rotation_operations.OPERATIONS,
    **resource_policies.OPERATIONS,
    **replication.OPERATIONS,
}

_validator = ModelValidator(load_model())
_MODEL_OPERATIONS = frozenset(operation_names())


def _not_implemented(name: str) -> Handler:
    def handler(deps: SecretsDeps, ctx: RequestContext, req: Params) -> dict[str, Any]:
        raise NotImplementedHere(f"{name} is not supported by this server yet.")

    return handler


def handler_for(operation: str) -> Handler:
    handler = HANDLERS.get(operation)
    if handler is not None:
        return handler
    if operation in _MODEL_OPERATIONS:
        return _not_implemented(operation)
    raise UnknownOperationException("")


def operation_of(target: str) -> str:
    """The operation an ``X-Amz-Target`` header names ("" unless it is Secrets Manager's)."""
    return target[len(_TARGET) :] if target.startswith(_TARGET) else ""


def runs_off_loop(target: str) -> bool:
    """Whether the HTTP app runs this request on its thread beside the event loop: everything
    but the reads."""
    return operation_of(target) not in READ_ONLY


def error_body(exc: OpenKMSError) -> bytes:
    """Secrets Manager's error body: its modelled errors carry ``Message``, the protocol and
    authentication errors ``message``; an empty message is left out."""
    if not exc.message:
        return orjson.dumps({"__type": exc.code})
    member = "Message" if isinstance(exc, SecretsError | InternalServiceError) else "message"
    return orjson.dumps({"__type": exc.code, member: exc.message})


def as_secrets_error(exc: OpenKMSError) -> OpenKMSError:
    """An error raised below (a KMS server fault) as Secrets Manager names it."""
    if isinstance(exc, KMSInternalException) or (
        exc.server_fault and not isinstance(exc, InternalServiceError)
    ):
        return InternalServiceError(exc.message)
    return exc


def render_error(exc: OpenKMSError) -> tuple[int, bytes, str]:
    """(status, body, code) of an error raised before or during a Secrets Manager call."""
    exc = as_secrets_error(exc)
    return exc.status, error_body(exc), exc.code


@dataclass(slots=True)
class Outcome:
    """What one call produced, for the answer and the audit record."""

    status: int = 200
    payload: bytes = b""
    error: OpenKMSError | None = None
    params: Params | None = None
    result: dict[str, Any] | None = None


def handle(deps: SecretsDeps, ctx: RequestContext, target: str, body: bytes) -> Outcome:
    """One Secrets Manager request (already authenticated: ``ctx``)."""
    outcome = Outcome()
    try:
        operation = operation_of(target)
        if not operation:
            raise UnknownOperationException("")
        handler = handler_for(operation)
        ctx.operation = operation
        params = _validator.validate(operation, codec.decode_body(body))
        outcome.params = params
        replication.guard(deps, ctx, operation, params)
        if operation not in READ_ONLY and deps.read_cache is not None:
            deps.read_cache.invalidate()  # before and after: no read overlaps the write unseen
        try:
            result = handler(deps, ctx, params)
            if operation not in READ_ONLY:
                replication.sync_after(deps, ctx, operation)
        finally:
            if operation not in READ_ONLY and deps.read_cache is not None:
                deps.read_cache.invalidate()
        outcome.result = result
        outcome.payload = codec.encode(result)
        return outcome
    except OpenKMSError as exc:
        outcome.error = as_secrets_error(exc)
    except StorageError:
        log.exception("storage failure (request %s)", ctx.request_id)
        outcome.error = InternalServiceError("The service could not reach its storage; retry.")
    except Exception:
        log.exception("unexpected failure (request %s)", ctx.request_id)
        outcome.error = InternalServiceError("An internal error occurred.")
    outcome.result = None
    outcome.status = outcome.error.status
    outcome.payload = error_body(outcome.error)
    return outcome
