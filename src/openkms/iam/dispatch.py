"""The IAM and STS endpoints: one dispatch table per service, Query in, XML out.

``handle_query`` never raises: every outcome, including a storage outage or a bug, becomes an
XML answer botocore can parse. ``render_error`` turns the authentication errors the HTTP app
raises before dispatch (``OpenKMSError``: unknown key, bad signature, expired token ...) into
the codes IAM and STS answer for them (``InvalidClientTokenId``, ``SignatureDoesNotMatch``,
``ExpiredToken`` ...).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from openkms.errors import OpenKMSError
from openkms.iam import (
    IamError,
    InvalidAction,
    NotImplementedOperation,
    ServiceFailure,
    access_keys,
    groups,
    policies,
    roles,
    sts,
    users,
)
from openkms.iam.handler import Handler, IamDeps
from openkms.iam.query import error_xml, load_model, parse_form, parse_input, result_xml
from openkms.service.context import RequestContext
from openkms.storage.base import StorageError

log = logging.getLogger("openkms.iam")


HANDLERS: Mapping[str, Mapping[str, Handler]] = {
    "iam": {
        **users.OPERATIONS,
        **access_keys.OPERATIONS,
        **groups.OPERATIONS,
        **roles.OPERATIONS,
        **policies.OPERATIONS,
    },
    "sts": dict(sts.OPERATIONS),
}

# What the HTTP app's authentication errors are called by IAM and STS: (code, HTTP status).
_AUTH_ERRORS: Mapping[str, tuple[str, int]] = {
    "UnrecognizedClientException": ("InvalidClientTokenId", 403),
    "InvalidClientTokenId": ("InvalidClientTokenId", 403),
    "InvalidSignatureException": ("SignatureDoesNotMatch", 403),
    "IncompleteSignatureException": ("IncompleteSignature", 400),
    "MissingAuthenticationTokenException": ("MissingAuthenticationToken", 403),
    "ExpiredTokenException": ("ExpiredToken", 403),
    "AccessDeniedException": ("AccessDenied", 403),
    "ValidationException": ("ValidationError", 400),
    "ThrottlingException": ("Throttling", 400),
}


def _server_code(service: str) -> str:
    return "ServiceFailure" if service == "iam" else "InternalFailure"


def render_error(service: str, exc: OpenKMSError, request_id: str) -> tuple[int, bytes, str]:
    """(status, XML body, code) for an OpenKMSError raised before or during an IAM/STS call."""
    model = load_model(service if service in ("iam", "sts") else "iam")
    if exc.server_fault:
        code, status = _server_code(service), exc.status
    else:
        code, status = _AUTH_ERRORS.get(exc.code, (exc.code, exc.status))
    body = error_xml(model, code, exc.message, request_id, sender_fault=not exc.server_fault)
    return status, body, code


def _iam_error(service: str, exc: IamError, request_id: str) -> tuple[int, bytes, str]:
    code = exc.code
    if isinstance(exc, ServiceFailure):
        code = _server_code(service)
    body = error_xml(
        load_model(service), code, exc.message, request_id, sender_fault=exc.sender_fault
    )
    return exc.status, body, code


def handle_query(
    deps: IamDeps,
    service: str,
    ctx: RequestContext,
    body: bytes,
    query: str,
    trace: dict[str, Any] | None = None,
) -> tuple[int, bytes, str | None]:
    """(status, XML body, error code or None) for one IAM or STS request.

    ``trace``, when given, receives what the audit record needs: ``action``, the validated
    ``params`` and the handler's ``result`` (each once known), and ``message`` of an error."""
    if trace is None:
        trace = {}
    try:
        model = load_model(service)
    except KeyError:
        model = load_model("iam")
        return 400, error_xml(model, "InvalidAction", "", ctx.request_id), "InvalidAction"
    try:
        form = parse_form(body, query)
        action = form.get("Action", "")
        trace["action"] = action
        handler = HANDLERS[service].get(action)
        if handler is None:
            if action in model.operations:
                raise NotImplementedOperation(f"{action} is not supported by this server.")
            raise InvalidAction(
                f"Could not find operation {action} for version {model.api_version}"
            )
        ctx.operation = action
        params = parse_input(model, action, form)
        trace["params"] = params
        result = handler(deps, ctx, params)
        trace["result"] = result
        return 200, result_xml(model, action, result, ctx.request_id), None
    except IamError as exc:
        trace["message"] = exc.message
        return _iam_error(service, exc, ctx.request_id)
    except OpenKMSError as exc:
        trace["message"] = exc.message
        return render_error(service, exc, ctx.request_id)
    except StorageError:
        log.exception("storage failure (request %s)", ctx.request_id)
        failure = ServiceFailure("The service could not reach its storage; retry.")
        return _iam_error(service, failure, ctx.request_id)
    except Exception:
        log.exception("unexpected failure (request %s)", ctx.request_id)
        return _iam_error(service, ServiceFailure(""), ctx.request_id)
