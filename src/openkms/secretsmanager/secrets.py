"""CreateSecret, DescribeSecret, UpdateSecret, DeleteSecret and RestoreSecret.

The value of a new version is encrypted (``values.encrypt``: GenerateDataKey on the caller's
behalf) before the transaction that stores it, so the database is never held while the KMS
works; the transaction re-checks what it relies on.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from openkms.context import RequestContext
from openkms.secretsmanager import replication, service_events, values
from openkms.secretsmanager.access import authorize
from openkms.secretsmanager.deps import Params, Result, SecretsDeps
from openkms.secretsmanager.describe import describe
from openkms.secretsmanager.envelope import SecretValue
from openkms.secretsmanager.errors import (
    InvalidParameterException,
    InvalidRequestException,
    NotImplementedHere,
    ResourceExistsException,
)
from openkms.secretsmanager.lookup import DAY, check_name, new_arn, resolve
from openkms.secretsmanager.tags import authorize_tagging, merged_tags, tags_from
from openkms.storage.base import StorageConflict
from openkms.storage.secrets import SecretRecord, SecretVersionRecord

DEFAULT_RECOVERY_DAYS = 30
MIN_RECOVERY_DAYS = 7
MAX_RECOVERY_DAYS = 30
SCHEDULED_NAME = (
    "You can't create this secret because a secret with this name is already scheduled for "
    "deletion."
)


def _exists(name: str) -> ResourceExistsException:
    return ResourceExistsException(
        f"The operation failed because the secret {name} already exists."
    )


def create_secret(deps: SecretsDeps, ctx: RequestContext, req: Params) -> Result:
    name = req["Name"]
    check_name(name)
    value = values.value_of(req)
    tags = merged_tags((), tags_from(req.get("Tags")))
    if req.get("CrossAccountPrimaryARN"):
        raise NotImplementedHere(
            "Cross-account replicas are not supported by this server (replication to other "
            "Regions of the same account is)."
        )
    account, region = ctx.principal.account_id, ctx.region
    arn = new_arn(deps.partition, region, account, name)
    authorize(deps, ctx, "secretsmanager:CreateSecret", arn, None, req)
    if tags:
        authorize_tagging(deps, ctx, arn, req)
    if req.get("AddReplicaRegions"):
        replication.authorize_replica_regions(deps, ctx, arn, req)
    storage = deps.storage
    existing = storage.find_secret(account, region, name)
    if existing is not None:
        return _create_again(deps, ctx, existing, req, value)
    secret = SecretRecord(
        arn=arn,
        account_id=account,
        region=region,
        name=name,
        created_at=ctx.now,
        last_changed_at=ctx.now,
        description=req.get("Description"),
        kms_key_id=req.get("KmsKeyId") or None,
        tags=tags,
        extra={"Type": req["Type"]} if req.get("Type") else {},
    )
    version: SecretVersionRecord | None = None
    if value is not None:
        version = values.encrypt(deps, ctx, secret, values.new_version_id(req), value, ctx.now)
    try:
        with storage.transaction():
            storage.insert_secret(secret)
            if version is not None:
                values.add_version(deps, secret, version, [values.CURRENT], ctx.now)
    except StorageConflict:
        raced = storage.find_secret(account, region, name)
        if raced is None:
            raise
        return _create_again(deps, ctx, raced, req, value)
    ctx.resources.append(arn)
    result: dict[str, Any] = {"ARN": arn, "Name": name}
    if version is not None:
        result["VersionId"] = version.version_id
    if req.get("AddReplicaRegions"):
        saved = replication.add_replicas(deps, ctx, secret, req["AddReplicaRegions"],
                                         bool(req.get("ForceOverwriteReplicaSecret")))  # fmt: skip
        result["ReplicationStatus"] = [dict(r) for r in saved.replicas]
    return result


def _create_again(
    deps: SecretsDeps,
    ctx: RequestContext,
    existing: SecretRecord,
    req: Params,
    value: SecretValue | None,
) -> Result:
    """A CreateSecret for a name that exists: a retry (same ClientRequestToken, same value)
    answers as the first call did; anything else is an error."""
    if existing.deleted_at is not None:
        raise InvalidRequestException(SCHEDULED_NAME)
    token = req.get("ClientRequestToken")
    if value is not None and token:
        same = values.existing_same(deps, ctx, existing, str(token), value)
        if same is not None:
            return {"ARN": existing.arn, "Name": existing.name, "VersionId": same.version_id}
    raise _exists(existing.name)


def describe_secret(deps: SecretsDeps, ctx: RequestContext, req: Params) -> Result:
    secret = resolve(
        deps, ctx, req["SecretId"], "secretsmanager:DescribeSecret", req, allow_deleted=True
    )
    return describe(secret)


def update_secret(deps: SecretsDeps, ctx: RequestContext, req: Params) -> Result:
    storage = deps.storage
    value = values.value_of(req)
    secret = resolve(deps, ctx, req["SecretId"], "secretsmanager:UpdateSecret", req)
    changes: dict[str, Any] = {}
    if "Description" in req:
        changes["Description"] = req["Description"]
    new_key = req.get("KmsKeyId")
    key_changed = new_key is not None and (new_key or None) != secret.kms_key_id
    target = dataclasses.replace(secret, kms_key_id=(new_key or None)) if key_changed else secret
    version: SecretVersionRecord | None = None
    if value is not None:
        version_id = values.new_version_id(req)
        same = values.existing_same(deps, ctx, secret, version_id, value)
        if same is not None:
            return {"ARN": secret.arn, "Name": secret.name, "VersionId": same.version_id}
        version = values.encrypt(deps, ctx, target, version_id, value, ctx.now)
    reencrypted = _reencrypt(deps, ctx, secret, target) if key_changed and value is None else []
    abandoned_rotation = False
    with storage.transaction():
        current = resolve(deps, ctx, req["SecretId"], "secretsmanager:UpdateSecret", req, lock=True)
        updated = dataclasses.replace(
            current,
            description=changes.get("Description", current.description),
            kms_key_id=target.kms_key_id,
            last_changed_at=ctx.now,
        )
        if reencrypted:
            storage.delete_secret_versions(current.arn, [v.version_id for v in reencrypted])
            for fresh in reencrypted:
                storage.insert_secret_version(fresh)
        storage.update_secret(updated)
        if version is not None:
            stored = values.add_version(deps, updated, version, [values.CURRENT], ctx.now)
            if values.abandoned(updated, stored):
                abandoned_rotation = True
    if abandoned_rotation:
        service_events.record(deps, service_events.ROTATION_ABANDONED, secret.arn)
    result: dict[str, Any] = {"ARN": secret.arn, "Name": secret.name}
    if version is not None:
        result["VersionId"] = version.version_id
    return result


def _reencrypt(
    deps: SecretsDeps, ctx: RequestContext, secret: SecretRecord, target: SecretRecord
) -> list[SecretVersionRecord]:
    """A new KMS key without a new value: the labelled versions (AWSCURRENT, AWSPREVIOUS,
    AWSPENDING) are encrypted again under it, as AWS does; the caller needs kms:Decrypt on the
    old key and kms:GenerateDataKey on the new one."""
    fresh: list[SecretVersionRecord] = []
    for label in (values.CURRENT, values.PREVIOUS, values.PENDING):
        version_id = secret.stages.get(label)
        if version_id is None or any(v.version_id == version_id for v in fresh):
            continue
        old = deps.storage.get_secret_version(secret.arn, version_id)
        if old is None:
            continue
        value = values.decrypt(deps, ctx, secret, old)
        again = values.encrypt(deps, ctx, target, version_id, value, old.created_at)
        fresh.append(dataclasses.replace(again, last_accessed_at=old.last_accessed_at))
    return fresh


def delete_secret(deps: SecretsDeps, ctx: RequestContext, req: Params) -> Result:
    force = bool(req.get("ForceDeleteWithoutRecovery"))
    window = req.get("RecoveryWindowInDays")
    days = DEFAULT_RECOVERY_DAYS if window is None else int(window)
    # AWS checks the window's range first, even beside ForceDeleteWithoutRecovery.
    if not MIN_RECOVERY_DAYS <= days <= MAX_RECOVERY_DAYS:
        raise InvalidParameterException(
            "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive)."
        )
    if force and window is not None:
        raise InvalidParameterException(
            "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays."
        )
    storage = deps.storage
    with storage.transaction():
        secret = resolve(
            deps,
            ctx,
            req["SecretId"],
            "secretsmanager:DeleteSecret",
            req,
            lock=True,
            allow_deleted=force,
        )
        if force:
            storage.delete_secret(secret.arn)
            when = ctx.now
        else:
            when = ctx.now + days * DAY
            storage.update_secret(dataclasses.replace(secret, deleted_at=when))
    return {"ARN": secret.arn, "Name": secret.name, "DeletionDate": round(when, 3)}


def restore_secret(deps: SecretsDeps, ctx: RequestContext, req: Params) -> Result:
    storage = deps.storage
    with storage.transaction():
        secret = resolve(
            deps,
            ctx,
            req["SecretId"],
            "secretsmanager:RestoreSecret",
            req,
            lock=True,
            allow_deleted=True,
        )
        if secret.deleted_at is not None:
            storage.update_secret(dataclasses.replace(secret, deleted_at=None))
    return {"ARN": secret.arn, "Name": secret.name}
