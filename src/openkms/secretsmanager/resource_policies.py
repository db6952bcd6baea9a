"""Resource policies (GetResourcePolicy, PutResourcePolicy, DeleteResourcePolicy,
ValidateResourcePolicy, ListResourcePolicies, BlockPublicPolicy): stubs of the skeleton
(sm-access replaces this file). Each answers a clear InvalidRequestException naming itself."""

from __future__ import annotations

from openkms.context import RequestContext
from openkms.secretsmanager.deps import Handler, Params, Result, SecretsDeps
from openkms.secretsmanager.errors import NotImplementedHere


def _stub(name: str) -> Handler:
    def handler(deps: SecretsDeps, ctx: RequestContext, req: Params) -> Result:
        raise NotImplementedHere(f"{name} is not supported by this server yet.")

    return handler


OPERATIONS: dict[str, Handler] = {
    name: _stub(name)
    for name in (
        "GetResourcePolicy",
        "PutResourcePolicy",
        "DeleteResourcePolicy",
        "ValidateResourcePolicy",
        "ListResourcePolicies",
    )
}
