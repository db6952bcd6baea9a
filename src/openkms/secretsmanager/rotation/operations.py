"""RotateSecret and CancelRotateSecret: stubs of the skeleton (sm-rotation replaces this
file). Each answers a clear InvalidRequestException naming itself, never a 500."""

from __future__ import annotations

from openkms.context import RequestContext
from openkms.secretsmanager.deps import Handler, Params, Result, SecretsDeps
from openkms.secretsmanager.errors import NotImplementedHere


def rotate_secret(deps: SecretsDeps, ctx: RequestContext, req: Params) -> Result:
    raise NotImplementedHere("RotateSecret is not supported by this server yet.")


def cancel_rotate_secret(deps: SecretsDeps, ctx: RequestContext, req: Params) -> Result:
    raise NotImplementedHere("CancelRotateSecret is not supported by this server yet.")


OPERATIONS: dict[str, Handler] = {
    "RotateSecret": rotate_secret,
    "CancelRotateSecret": cancel_rotate_secret,
}
