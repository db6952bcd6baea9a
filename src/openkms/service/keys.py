"""Key management operations: CreateKey, DescribeKey, ListKeys, UpdateKeyDescription,
EnableKey, DisableKey, ScheduleKeyDeletion, CancelKeyDeletion, GetKeyLastUsage; and the purge of
keys whose deletion window has passed."""

from __future__ import annotations

import os
import uuid
from typing import Any

from openkms.crypto.aead import new_symmetric_material
from openkms.domain.key import (
    KeyRecord,
    require_enable_disable_allowed,
    require_not_pending_deletion,
    state_message,
)
from openkms.errors import (
    KMSInvalidStateException,
    NotFoundException,
    UnsupportedOperationException,
    ValidationException,
)
from openkms.service import asymmetric_keys, key_policies, key_store_keys, multi_region
from openkms.service.common import check_new_key_tags, decode_marker, page, tags_from_request
from openkms.service.context import RequestContext
from openkms.service.metadata import PRIMARY, key_metadata, key_type
from openkms.service.multi_region import new_multi_region_key_id as multi_region_key_id
from openkms.service.runtime import Runtime
from openkms.storage.records import MaterialRecord
from openkms.types import KeySpec, KeyState, KeyUsageType, OriginType

DAY = 86_400
DEFAULT_PENDING_WINDOW_DAYS = 30
MIN_PENDING_WINDOW_DAYS = 7
MAX_PENDING_WINDOW_DAYS = 30


def new_material_id() -> str:
    """KeyMaterialId: 64 hex digits, as AWS's look."""
    return os.urandom(32).hex()


def _resolve_spec(req: dict[str, Any]) -> tuple[str, str]:
    spec = req.get("KeySpec")
    legacy = req.get("CustomerMasterKeySpec")
    if spec is not None and legacy is not None:
        raise ValidationException(
            "You cannot specify KeySpec and CustomerMasterKeySpec in the same request. "
            "CustomerMasterKeySpec is deprecated."
        )
    spec = spec or legacy or KeySpec.SYMMETRIC_DEFAULT.value
    usage = req.get("KeyUsage")
    if spec == KeySpec.SYMMETRIC_DEFAULT.value:
        usage = usage or KeyUsageType.ENCRYPT_DECRYPT.value
        if usage != KeyUsageType.ENCRYPT_DECRYPT.value:
            raise ValidationException(f"KeyUsage {usage} is not compatible with KeySpec {spec}")
    return spec, usage or ""


def _new_material(spec: str) -> bytes:
    if spec == KeySpec.SYMMETRIC_DEFAULT.value:
        return new_symmetric_material()
    return asymmetric_keys.generate_material(spec)


def create_key(rt: Runtime, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    spec, usage = _resolve_spec(req)
    origin = req.get("Origin") or OriginType.AWS_KMS.value
    if spec != KeySpec.SYMMETRIC_DEFAULT.value:
        usage = asymmetric_keys.check_spec_and_usage(spec, usage)
    if origin not in {o.value for o in OriginType}:
        raise UnsupportedOperationException(f"Origin {origin} is not supported.")
    external = origin == OriginType.EXTERNAL.value
    if (req.get("CustomKeyStoreId") or req.get("XksKeyId")) and origin in (
        OriginType.AWS_KMS.value,
        OriginType.EXTERNAL.value,
    ):
        raise UnsupportedOperationException(
            "CustomKeyStoreId and XksKeyId need Origin AWS_CLOUDHSM or EXTERNAL_KEY_STORE."
        )
    tags = tags_from_request(req.get("Tags"))
    check_new_key_tags(tags)
    rt.access.authorize_account(ctx, "kms:CreateKey", "*", req)
    if tags:
        # AWS: "To use the Tags parameter, kms:TagResource (IAM policy)". Tags decide ABAC
        # policies (aws:ResourceTag), so whoever may not tag must not tag by creating a key, and
        # a condition on aws:RequestTag or aws:TagKeys of kms:TagResource holds here too.
        rt.access.authorize_account(ctx, "kms:TagResource", "*", req)
    account = ctx.principal.account_id
    is_multi_region = bool(req.get("MultiRegion"))
    key_id = multi_region_key_id() if is_multi_region else str(uuid.uuid4())
    arn = rt.key_arn_for(account, ctx.region, key_id)
    policy = req.get("Policy")
    bindings: dict[str, str] = {}
    if policy is None:
        policy = key_policies.default_policy(rt.partition, account)
    else:
        bindings = key_policies.check_policy(
            rt, ctx, policy, arn, account, bypass=bool(req.get("BypassPolicyLockoutSafetyCheck"))
        )
    store_plan = key_store_keys.plan_store_key(
        rt, ctx, req, origin=origin, spec=spec, usage=usage, key_id=key_id, arn=arn
    )
    key = KeyRecord(
        arn=arn,
        key_id=key_id,
        account_id=account,
        region=ctx.region,
        key_spec=spec,
        key_usage=usage,
        origin=origin,
        key_manager="CUSTOMER",
        description=req.get("Description") or "",
        state=KeyState.PENDING_IMPORT.value if external else KeyState.ENABLED.value,
        created_at=ctx.now,
        policy=policy,
        policy_principals=bindings,
        multi_region=is_multi_region,
        extra={"mr_type": "PRIMARY"} if is_multi_region else {},
    )
    material = None
    if store_plan is not None:
        key = key.with_changes(
            custom_key_store_id=store_plan.store_id, extra=dict(store_plan.extra)
        )
        if not store_plan.needs_material:
            # The material is in the store's token: only its id is recorded here.
            key = key.with_changes(current_material_id=new_material_id())
            external = True
    if not external:
        material_id = new_material_id()
        key = key.with_changes(current_material_id=material_id)
        material = MaterialRecord(
            key_arn=arn,
            material_id=material_id,
            wrapped=rt.wrap_material(arn, material_id, _new_material(spec)),
            created_at=ctx.now,
            state="CURRENT",
        )
    with rt.storage.transaction():
        rt.storage.insert_key(key)
        if material is not None:
            rt.storage.put_material(material)
        if tags:
            rt.storage.put_tags(arn, tags)
    ctx.resources.append(arn)
    return {"KeyMetadata": key_metadata(key)}


def describe_key(rt: Runtime, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    key = rt.resolve_key(ctx, req["KeyId"])
    rt.access.authorize_key(ctx, "kms:DescribeKey", key, req)
    return {"KeyMetadata": key_metadata(key, multi_region.related(rt, key))}


def list_keys(rt: Runtime, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    rt.access.authorize_account(ctx, "kms:ListKeys", "*", req)
    limit = req.get("Limit") or 100
    after = decode_marker(req.get("Marker"))
    keys = rt.storage.list_keys(ctx.principal.account_id, ctx.region, after, limit + 1)
    result: dict[str, Any] = {
        "Keys": [{"KeyId": k.key_id, "KeyArn": k.arn} for k in keys[:limit]],
    }
    result.update(page(keys, limit, lambda k: k.key_id))
    return result


def _save(rt: Runtime, key: KeyRecord) -> None:
    rt.storage.update_key(key)
    rt.forget_key(key.arn)


def _reload(rt: Runtime, key: KeyRecord) -> KeyRecord:
    """The authoritative record for a write: never act on a cached copy."""
    rt.forget_key(key.arn)
    fresh = rt.storage.get_key(key.arn)
    if fresh is None:
        raise NotFoundException(f"Key '{key.arn}' does not exist")
    return fresh


def update_key_description(rt: Runtime, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    key = rt.resolve_key(ctx, req["KeyId"], allow_alias=False)
    rt.access.authorize_key(ctx, "kms:UpdateKeyDescription", key, req)
    with rt.storage.transaction():
        key = _reload(rt, key)
        require_not_pending_deletion(key)
        _save(rt, key.with_changes(description=req["Description"]))
    return {}


def _with_state(key: KeyRecord, state: str) -> KeyRecord:
    """A key whose custom key store is disconnected stays Unavailable: the new state applies
    once the store is connected again (AWS's key-state table)."""
    if key.state == KeyState.UNAVAILABLE.value:
        return key.with_changes(extra={**key.extra, "state_when_available": state})
    return key.with_changes(state=state)


def enable_key(rt: Runtime, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    key = rt.resolve_key(ctx, req["KeyId"], allow_alias=False)
    rt.access.authorize_key(ctx, "kms:EnableKey", key, req)
    with rt.storage.transaction():
        key = _reload(rt, key)
        require_enable_disable_allowed(key)
        _save(rt, _with_state(key, KeyState.ENABLED.value))
    return {}


def disable_key(rt: Runtime, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    key = rt.resolve_key(ctx, req["KeyId"], allow_alias=False)
    rt.access.authorize_key(ctx, "kms:DisableKey", key, req)
    with rt.storage.transaction():
        key = _reload(rt, key)
        require_enable_disable_allowed(key)
        _save(rt, _with_state(key, KeyState.DISABLED.value))
    return {}


def schedule_key_deletion(rt: Runtime, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    key = rt.resolve_key(ctx, req["KeyId"], allow_alias=False)
    rt.access.authorize_key(ctx, "kms:ScheduleKeyDeletion", key, req)
    days = req.get("PendingWindowInDays") or DEFAULT_PENDING_WINDOW_DAYS
    if not MIN_PENDING_WINDOW_DAYS <= days <= MAX_PENDING_WINDOW_DAYS:
        bound, word = (
            (MIN_PENDING_WINDOW_DAYS, "greater")
            if days < MIN_PENDING_WINDOW_DAYS
            else (MAX_PENDING_WINDOW_DAYS, "less")
        )
        raise ValidationException(
            f"1 validation error detected: Value '{days}' at 'pendingWindowInDays' failed to "
            f"satisfy constraint: Member must have value {word} than or equal to {bound}"
        )
    with rt.storage.transaction():
        key = _reload(rt, key)
        if key.state in (
            KeyState.PENDING_DELETION.value,
            KeyState.PENDING_REPLICA_DELETION.value,
            KeyState.UPDATING.value,
        ):
            raise KMSInvalidStateException(state_message(key))
        replicas = [
            k
            for k in multi_region.related(rt, key)
            if k.arn != key.arn and key_type(key) == PRIMARY
        ]
        if replicas:
            # The window starts only when the last replica is gone.
            key = key.with_changes(
                state=KeyState.PENDING_REPLICA_DELETION.value,
                deletion_at=None,
                pending_window_days=days,
            )
            _save(rt, key)
            return {"KeyId": key.arn, "KeyState": key.state, "PendingWindowInDays": days}
        deletion_at = float(int(ctx.now) + days * DAY)
        key = key.with_changes(
            state=KeyState.PENDING_DELETION.value,
            deletion_at=deletion_at,
            pending_window_days=days,
        )
        _save(rt, key)
    return {
        "KeyId": key.arn,
        "DeletionDate": deletion_at,
        "KeyState": key.state,
        "PendingWindowInDays": days,
    }


def cancel_key_deletion(rt: Runtime, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    key = rt.resolve_key(ctx, req["KeyId"], allow_alias=False)
    rt.access.authorize_key(ctx, "kms:CancelKeyDeletion", key, req)
    with rt.storage.transaction():
        key = _reload(rt, key)
        if key.state not in (
            KeyState.PENDING_DELETION.value,
            KeyState.PENDING_REPLICA_DELETION.value,
        ):
            raise KMSInvalidStateException(f"{key.arn} is not pending deletion.")
        _save(
            rt,
            key.with_changes(
                state=KeyState.DISABLED.value, deletion_at=None, pending_window_days=None
            ),
        )
    return {"KeyId": key.arn}


def get_key_last_usage(rt: Runtime, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    key = rt.resolve_key(ctx, req["KeyId"])
    rt.access.authorize_key(ctx, "kms:GetKeyLastUsage", key, req)
    result: dict[str, Any] = {
        "KeyId": key.arn,
        "KeyCreationDate": key.created_at,
        "TrackingStartDate": key.created_at,
    }
    pending = rt.pending_usage(key.arn)
    stored = rt.storage.get_key(key.arn) or key
    if pending is not None and (stored.last_used_at or 0) <= pending.at:
        result["KeyLastUsage"] = {
            "Timestamp": pending.at,
            "Operation": pending.operation,
            "KmsRequestId": pending.request_id,
        }
    elif stored.last_used_at is not None:
        result["KeyLastUsage"] = {
            "Timestamp": stored.last_used_at,
            "Operation": stored.last_used_operation,
            "KmsRequestId": stored.last_used_request_id,
        }
    return result


def purge_due_keys(rt: Runtime, now: float) -> list[str]:
    """Deletes keys whose waiting period has ended: key, material, aliases and tags together."""
    purged = []
    for arn in rt.storage.keys_due_for_deletion(now):
        with rt.storage.transaction():
            key = rt.storage.get_key(arn)
            if key is None or key.state != KeyState.PENDING_DELETION.value:
                continue
            if key.deletion_at is None or key.deletion_at > now:
                continue
            rt.storage.delete_key(arn)
            multi_region.after_replica_deleted(rt, key, now)
        if key.custom_key_store_id is not None:
            key_store_keys.delete_store_key_material(rt, key)
        rt.forget_key(arn)
        rt.alias_cache.clear()
        purged.append(arn)
    return purged
