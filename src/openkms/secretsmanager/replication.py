"""Replication of a secret to other Regions of this deployment: ReplicateSecretToRegions,
RemoveRegionsFromReplication, StopReplicationToReplica (and CreateSecret's AddReplicaRegions).

openkms serves every Region of its partition from one deployment (one database), as it does
for multi-Region KMS keys, so replication is real and synchronous: a replica is a secret of its
own in the other Region (the primary's ARN with that Region, the same name, versions, staging
labels, description, tags and resource policy), each version re-encrypted there under the
replica's KMS key (the ``KmsKeyId`` given for the Region, else that Region's
``aws/secretsmanager``) with the replica's ARN in the encryption context, so a replica never
depends on a key of another Region. Every re-encryption runs on the caller's behalf (Decrypt
with the primary's key, GenerateDataKey with the replica's), as AWS's service does.

After each successful write to a primary (``sync_after``, called by the dispatch), its
replicas are brought up to date in the same way; a replica that cannot be (its key disabled,
the caller not allowed to use it) is marked ``Failed`` with the reason, as AWS reports an
asynchronous failure, and the next successful sync sets it ``InSync`` again. A replica is
read-only: the writes AWS refuses on a replica are refused here (``guard``).

Cross-account replicas (AssociateCrossAccountReplica, DisassociateCrossAccountReplica, and
CreateSecret's CrossAccountPrimaryARN) are not performed: they answer InvalidRequestException.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from openkms.context import RequestContext
from openkms.errors import OpenKMSError
from openkms.secretsmanager import envelope, kms_client, values
from openkms.secretsmanager.access import authorize
from openkms.secretsmanager.deps import Handler, Params, Result, SecretsDeps
from openkms.secretsmanager.errors import (
    InvalidParameterException,
    InvalidRequestException,
    NotImplementedHere,
)
from openkms.secretsmanager.lookup import resolve
from openkms.storage.secrets import SecretRecord, SecretVersionRecord

MANAGED_KEY = "alias/aws/secretsmanager"
IN_SYNC = "InSync"
FAILED = "Failed"
SUCCEEDED = "Replication succeeded"
REPLICA_READ_ONLY = (
    "Operation is not permitted on a replica secret. Call must be made on the primary secret."
)
HAS_REPLICAS = (
    "You can't delete secret {} that still has replica regions {}. Remove the replicas first "
    "with RemoveRegionsFromReplication."
)
# Writes AWS refuses on a replica (it changes only through its primary).
PRIMARY_ONLY = frozenset(
    {"PutSecretValue", "UpdateSecret", "UpdateSecretVersionStage", "TagResource",
     "UntagResource", "PutResourcePolicy", "DeleteResourcePolicy", "RotateSecret",
     "CancelRotateSecret", "ReplicateSecretToRegions", "RemoveRegionsFromReplication",
     "DeleteSecret", "RestoreSecret"}
)  # fmt: skip


def replica_arn(primary_arn: str, region: str) -> str:
    parts = primary_arn.split(":", 4)
    parts[3] = region
    return ":".join(parts)


def is_replica(secret: SecretRecord) -> bool:
    return secret.primary_region is not None and secret.primary_region != secret.region


def _status(region: str, kms_key: str | None, status: str, message: str) -> dict[str, Any]:
    return {
        "Region": region,
        "KmsKeyId": kms_key or MANAGED_KEY,
        "Status": status,
        "StatusMessage": message,
    }


def _in_region(ctx: RequestContext, region: str) -> RequestContext:
    return dataclasses.replace(ctx, region=region, resolved={}, resources=[])


def _failure(exc: OpenKMSError) -> str:
    return f"{exc.code}: {exc.message}" if exc.message else exc.code


def _reencrypted(
    deps: SecretsDeps,
    ctx: RequestContext,
    primary: SecretRecord,
    replica: SecretRecord,
) -> tuple[list[SecretVersionRecord], list[str]]:
    """(the primary's versions ``replica`` lacks, re-encrypted under the replica's key; the
    replica's versions the primary no longer has). Runs the KMS calls outside any storage
    transaction, as every write of the service does."""
    storage = deps.storage
    rctx = _in_region(ctx, replica.region)
    have = {v.version_id for v in storage.list_secret_versions(replica.arn)}
    wanted = storage.list_secret_versions(primary.arn)
    fresh: list[SecretVersionRecord] = []
    key: str | None = None
    for version in wanted:
        if version.version_id in have:
            continue
        key = key or values.key_ref(deps, replica, ctx.now)
        value = values.decrypt(deps, ctx, primary, version)
        context = envelope.context_for(replica.arn, version.version_id)
        data_key = kms_client.generate_data_key(deps, rctx, key, context)
        sealed = envelope.seal(value, data_key.plaintext, data_key.blob, replica.arn,
                               version.version_id)  # fmt: skip
        fresh.append(dataclasses.replace(
            version, secret_arn=replica.arn, ciphertext=sealed, kms_key_arn=data_key.key_arn,
            last_accessed_at=None,
        ))  # fmt: skip
    gone = sorted(have - {v.version_id for v in wanted})
    return fresh, gone


def _apply(
    deps: SecretsDeps,
    primary: SecretRecord,
    replica: SecretRecord,
    fresh: list[SecretVersionRecord],
    gone: list[str],
) -> None:
    """Writes what ``_reencrypted`` prepared and the primary's labels and metadata (inside the
    caller's transaction)."""
    storage = deps.storage
    if storage.get_secret(replica.arn, lock=True) is None:
        storage.insert_secret(replica)
    for version in fresh:
        if storage.get_secret_version(replica.arn, version.version_id) is None:
            storage.insert_secret_version(version)
    if gone:
        storage.delete_secret_versions(replica.arn, gone)
    storage.update_secret(dataclasses.replace(
        replica,
        description=primary.description,
        stages=dict(primary.stages),
        tags=primary.tags,
        resource_policy=primary.resource_policy,
        extra={**primary.extra, **{k: v for k, v in replica.extra.items() if k == "Type"}},
        last_changed_at=primary.last_changed_at,
        primary_region=primary.region,
        replicas=(),
    ))  # fmt: skip


def _sync_one(
    deps: SecretsDeps, ctx: RequestContext, primary: SecretRecord, replica: SecretRecord
) -> None:
    fresh, gone = _reencrypted(deps, ctx, primary, replica)
    with deps.storage.transaction():
        _apply(deps, primary, replica, fresh, gone)


def _new_replica(
    primary: SecretRecord, region: str, kms_key: str | None, now: float
) -> SecretRecord:
    return SecretRecord(
        arn=replica_arn(primary.arn, region),
        account_id=primary.account_id,
        region=region,
        name=primary.name,
        created_at=now,
        last_changed_at=primary.last_changed_at,
        kms_key_id=kms_key,
        primary_region=primary.region,
    )


def _replicate_one(
    deps: SecretsDeps,
    ctx: RequestContext,
    primary: SecretRecord,
    region: str,
    kms_key: str | None,
    overwrite: bool,
) -> dict[str, Any]:
    """Creates (or, with ``overwrite``, replaces) the replica in ``region``; its status."""
    storage = deps.storage
    existing = storage.find_secret(primary.account_id, region, primary.name)
    if existing is not None:
        if not overwrite:
            return _status(region, kms_key, FAILED,
                           "Destination secret with the same name already exists.")  # fmt: skip
        storage.delete_secret(existing.arn)
    replica = _new_replica(primary, region, kms_key, ctx.now)
    try:
        _sync_one(deps, ctx, primary, replica)
    except OpenKMSError as exc:
        if exc.server_fault:
            raise
        return _status(region, kms_key, FAILED, _failure(exc))
    return _status(region, kms_key, IN_SYNC, SUCCEEDED)


def add_replicas(
    deps: SecretsDeps,
    ctx: RequestContext,
    primary: SecretRecord,
    regions: Iterable[dict[str, Any]],
    overwrite: bool,
) -> SecretRecord:
    """Replicates ``primary`` to ``regions`` (ReplicaRegionType entries) and saves the primary
    with its replication status; returns it."""
    primary = deps.storage.get_secret(primary.arn) or primary
    statuses = [dict(r) for r in primary.replicas]
    taken = {s["Region"] for s in statuses}
    requested: list[tuple[str, str | None]] = []
    for entry in regions:
        region = str(entry.get("Region") or "")
        if not region:
            raise InvalidParameterException("A replica Region must be specified.")
        if region == primary.region:
            raise InvalidParameterException(
                f"Invalid replica region {region}: it is the primary secret's Region."
            )
        if region in taken or any(r == region for r, _ in requested):
            raise InvalidParameterException(f"The secret is already replicated to {region}.")
        requested.append((region, entry.get("KmsKeyId") or None))
    for region, kms_key in requested:
        statuses.append(_replicate_one(deps, ctx, primary, region, kms_key, overwrite))
    storage = deps.storage
    with storage.transaction():
        fresh = storage.get_secret(primary.arn, lock=True) or primary
        saved = dataclasses.replace(fresh, primary_region=fresh.region, replicas=tuple(statuses))
        storage.update_secret(saved)
    return saved


def _primary(deps: SecretsDeps, ctx: RequestContext, req: Params, action: str) -> SecretRecord:
    secret = resolve(deps, ctx, req["SecretId"], action, req)
    if is_replica(secret):
        raise InvalidRequestException(REPLICA_READ_ONLY)
    return secret


def replicate_secret_to_regions(deps: SecretsDeps, ctx: RequestContext, req: Params) -> Result:
    primary = _primary(deps, ctx, req, "secretsmanager:ReplicateSecretToRegions")
    saved = add_replicas(
        deps, ctx, primary, req["AddReplicaRegions"], bool(req.get("ForceOverwriteReplicaSecret"))
    )
    return {"ARN": saved.arn, "ReplicationStatus": [dict(r) for r in saved.replicas]}


def remove_regions_from_replication(deps: SecretsDeps, ctx: RequestContext, req: Params) -> Result:
    primary = _primary(deps, ctx, req, "secretsmanager:RemoveRegionsFromReplication")
    doomed = set(req["RemoveReplicaRegions"])
    known = {r["Region"] for r in primary.replicas}
    unknown = sorted(doomed - known)
    if unknown:
        raise InvalidParameterException(f"The secret is not replicated to {', '.join(unknown)}.")
    storage = deps.storage
    with storage.transaction():
        fresh = storage.get_secret(primary.arn, lock=True) or primary
        for region in doomed:
            replica = storage.get_secret(replica_arn(primary.arn, region), lock=True)
            if replica is not None and replica.primary_region == primary.region:
                storage.delete_secret(replica.arn)
        remaining = tuple(r for r in fresh.replicas if r["Region"] not in doomed)
        saved = dataclasses.replace(
            fresh, replicas=remaining, primary_region=fresh.region if remaining else None
        )
        storage.update_secret(saved)
    return {"ARN": saved.arn, "ReplicationStatus": [dict(r) for r in saved.replicas]}


def stop_replication_to_replica(deps: SecretsDeps, ctx: RequestContext, req: Params) -> Result:
    """Promotes a replica to a standalone secret of its Region (called on the replica)."""
    replica = resolve(deps, ctx, req["SecretId"], "secretsmanager:StopReplicationToReplica", req)
    if not is_replica(replica):
        raise InvalidRequestException(
            "StopReplicationToReplica can only be called on a replica secret."
        )
    storage = deps.storage
    primary_arn = replica_arn(replica.arn, str(replica.primary_region))
    with storage.transaction():
        primary = storage.get_secret(primary_arn, lock=True)
        if primary is not None:
            remaining = tuple(r for r in primary.replicas if r["Region"] != replica.region)
            storage.update_secret(dataclasses.replace(
                primary, replicas=remaining, primary_region=primary.region if remaining else None,
            ))  # fmt: skip
        fresh = storage.get_secret(replica.arn, lock=True) or replica
        storage.update_secret(dataclasses.replace(fresh, primary_region=None))
    return {"ARN": replica.arn}


def _cross_account(name: str) -> Handler:
    def handler(deps: SecretsDeps, ctx: RequestContext, req: Params) -> Result:
        raise NotImplementedHere(
            f"{name} is not supported by this server: cross-account replicas are not "
            "performed (replication to other Regions of the same account is)."
        )

    return handler


# -- the dispatch's hooks ---------------------------------------------------------------------


def guard(deps: SecretsDeps, ctx: RequestContext, operation: str, req: Params) -> None:
    """Before a write: a replica changes only through its primary, and a primary with replicas
    is not deleted. Authorized first, so a refusal says nothing to a caller without access."""
    if operation not in PRIMARY_ONLY or "SecretId" not in req:
        return
    try:
        secret = resolve(deps, ctx, req["SecretId"], f"secretsmanager:{operation}", req,
                         allow_deleted=True)  # fmt: skip
    except OpenKMSError:
        return  # the handler answers it (AccessDenied, not found ...) as it would anyway
    finally:
        ctx.resources.clear()
    if is_replica(secret) and operation != "StopReplicationToReplica":
        raise InvalidRequestException(REPLICA_READ_ONLY)
    if operation == "DeleteSecret" and secret.replicas:
        regions = ", ".join(sorted(r["Region"] for r in secret.replicas))
        raise InvalidRequestException(HAS_REPLICAS.format(secret.name, f"[{regions}]"))


def sync_after(deps: SecretsDeps, ctx: RequestContext, operation: str) -> None:
    """After a successful write: the replicas of each secret it touched, brought up to date on
    the caller's behalf; a replica that cannot be is marked Failed (never the caller's
    error: the write to the primary has happened)."""
    if operation in ("ReplicateSecretToRegions", "RemoveRegionsFromReplication",
                     "StopReplicationToReplica", "CreateSecret"):  # fmt: skip
        return
    storage = deps.storage
    for arn in dict.fromkeys(ctx.resources):
        primary = storage.get_secret(arn)
        if primary is None or not primary.replicas or is_replica(primary):
            continue
        statuses: list[dict[str, Any]] = []
        for status in primary.replicas:
            region = status["Region"]
            kms_key = None if status.get("KmsKeyId") == MANAGED_KEY else status.get("KmsKeyId")
            try:
                replica = storage.get_secret(replica_arn(arn, region))
                if replica is None:
                    replica = _new_replica(primary, region, kms_key, ctx.now)
                _sync_one(deps, ctx, primary, replica)
                statuses.append(_status(region, kms_key, IN_SYNC, SUCCEEDED))
            except OpenKMSError as exc:
                if exc.server_fault:
                    raise
                statuses.append(_status(region, kms_key, FAILED, _failure(exc)))
        with storage.transaction():
            fresh = storage.get_secret(arn, lock=True)
            if fresh is not None:
                storage.update_secret(dataclasses.replace(fresh, replicas=tuple(statuses)))


OPERATIONS: dict[str, Handler] = {
    "ReplicateSecretToRegions": replicate_secret_to_regions,
    "RemoveRegionsFromReplication": remove_regions_from_replication,
    "StopReplicationToReplica": stop_replication_to_replica,
    "AssociateCrossAccountReplica": _cross_account("AssociateCrossAccountReplica"),
    "DisassociateCrossAccountReplica": _cross_account("DisassociateCrossAccountReplica"),
}


def authorize_replica_regions(
    deps: SecretsDeps, ctx: RequestContext, arn: str, req: Params
) -> None:
    """CreateSecret with AddReplicaRegions also needs secretsmanager:ReplicateSecretToRegions."""
    authorize(deps, ctx, "secretsmanager:ReplicateSecretToRegions", arn, None, req)
