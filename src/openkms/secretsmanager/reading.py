"""GetSecretValue and BatchGetSecretValue: the value of one version, decrypted with Decrypt on
the caller's behalf (a caller without kms:Decrypt on the key gets AccessDeniedException, not
the value). LastAccessedDate is kept to the day, so reading costs a write at most once a day
per secret."""

from __future__ import annotations

import dataclasses
from typing import Any

from openkms.context import RequestContext
from openkms.errors import AccessDeniedException, OpenKMSError
from openkms.secretsmanager import read_cache
from openkms.secretsmanager.access import ANY, authorize
from openkms.secretsmanager.deps import Params, Result, SecretsDeps
from openkms.secretsmanager.describe import when
from openkms.secretsmanager.errors import InvalidParameterException
from openkms.secretsmanager.listing import matching_page
from openkms.secretsmanager.lookup import day_of, resolve
from openkms.storage.secrets import SecretRecord, SecretVersionRecord


def _touch(
    deps: SecretsDeps, secret: SecretRecord, version: SecretVersionRecord, now: float
) -> None:
    today = day_of(now)
    storage = deps.storage
    if secret.last_accessed_at != today:
        with storage.transaction():
            fresh = storage.get_secret(secret.arn, lock=True)
            if fresh is not None and fresh.last_accessed_at != today:
                storage.update_secret(dataclasses.replace(fresh, last_accessed_at=today))
    if version.last_accessed_at != today:
        storage.update_secret_version(dataclasses.replace(version, last_accessed_at=today))


def value_entry(
    deps: SecretsDeps,
    ctx: RequestContext,
    secret: SecretRecord,
    version_id: str | None,
    stage: str | None,
) -> dict[str, Any]:
    version, value = read_cache.version_and_value(deps, ctx, secret, version_id, stage)
    _touch(deps, secret, version, ctx.now)
    out: dict[str, Any] = {"ARN": secret.arn, "Name": secret.name, "VersionId": version.version_id}
    if value.string is not None:
        out["SecretString"] = value.string
    else:
        out["SecretBinary"] = value.binary
    out["VersionStages"] = secret.version_stages(version.version_id)
    out["CreatedDate"] = when(version.created_at)
    return out


def get_secret_value(deps: SecretsDeps, ctx: RequestContext, req: Params) -> Result:
    secret = read_cache.resolve_for_read(
        deps, ctx, req["SecretId"], "secretsmanager:GetSecretValue", req
    )
    return value_entry(deps, ctx, secret, req.get("VersionId"), req.get("VersionStage"))


def batch_get_secret_value(deps: SecretsDeps, ctx: RequestContext, req: Params) -> Result:
    ids = req.get("SecretIdList")
    filters = req.get("Filters")
    if (ids is None) == (filters is None):
        raise InvalidParameterException("Either 'SecretIdList' or 'Filters' must be provided.")
    if ids is not None and (req.get("MaxResults") is not None or req.get("NextToken")):
        raise InvalidParameterException(
            "'MaxResults' and 'NextToken' can only be used with 'Filters'."
        )
    authorize(deps, ctx, "secretsmanager:BatchGetSecretValue", ANY, None, req)
    result: dict[str, Any] = {}
    if ids is None:
        authorize(deps, ctx, "secretsmanager:ListSecrets", ANY, None, req)
        secrets, token = matching_page(deps, ctx, filters or [], req, default_page=20)
        refs = [s.arn for s in secrets]
        if token is not None:
            result["NextToken"] = token
    else:
        refs = list(dict.fromkeys(ids))
    found: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for ref in refs:
        try:
            secret = resolve(deps, ctx, ref, "secretsmanager:GetSecretValue", {"SecretId": ref})
            found.append(value_entry(deps, ctx, secret, None, None))
        except (AccessDeniedException, OpenKMSError) as exc:
            if exc.server_fault:
                raise
            errors.append({"SecretId": ref, "ErrorCode": exc.code, "Message": exc.message})
    result["SecretValues"] = found
    result["Errors"] = errors
    return result
