"""The core operations of the dispatch table (secrets, values, versions, listing, tags,
passwords), gathered from their modules. Rotation, resource policies and replication have
their own tables (``rotation.operations``, ``resource_policies``, ``replication``)."""

from __future__ import annotations

from openkms.context import RequestContext
from openkms.secretsmanager.deps import Handler, Params, Result, SecretsDeps
from openkms.secretsmanager.errors import NotImplementedHere

CORE = (
    "BatchGetSecretValue",
    "CreateSecret",
    "DeleteSecret",
    "DescribeSecret",
    "GetRandomPassword",
    "GetSecretValue",
    "ListSecretVersionIds",
    "ListSecrets",
    "PutSecretValue",
    "RestoreSecret",
    "TagResource",
    "UntagResource",
    "UpdateSecret",
    "UpdateSecretVersionStage",
)


def _pending(name: str) -> Handler:
    def handler(deps: SecretsDeps, ctx: RequestContext, req: Params) -> Result:
        raise NotImplementedHere(f"{name} is not supported by this server yet.")

    return handler


OPERATIONS: dict[str, Handler] = {name: _pending(name) for name in CORE}
