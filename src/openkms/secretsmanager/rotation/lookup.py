"""Finding the secret a ``SecretId`` names (a name, a full ARN, or an ARN without its six-character
suffix), in the caller's account and Region."""

from __future__ import annotations

from openkms.context import RequestContext
from openkms.secretsmanager.deps import SecretsDeps
from openkms.secretsmanager.errors import ResourceNotFoundException
from openkms.storage.secrets import SecretRecord


def find_secret(deps: SecretsDeps, ctx: RequestContext, secret_id: str) -> SecretRecord:
    storage = deps.storage
    if secret_id.startswith("arn:"):
        secret = storage.get_secret(secret_id)
        if secret is None:
            parts = secret_id.split(":", 6)
            if len(parts) == 7 and parts[5] == "secret":
                secret = storage.find_secret(parts[4], parts[3], parts[6])
    else:
        secret = storage.find_secret(ctx.principal.account_id, ctx.region, secret_id)
    if secret is None:
        raise ResourceNotFoundException()
    return secret
