"""Multi-Region keys: ReplicateKey, UpdatePrimaryRegion, and the rules that tie a key set
together (same key id and material in every Region; rotation driven by the primary; a primary
with replicas waits in PendingReplicaDeletion).

One deployment serves every Region, so a replica is a second key record with the same key id in
another Region, holding the same material versions (each wrapped for its own ARN)."""

from __future__ import annotations

import uuid
from typing import Any

from openkms.domain.key import KeyRecord, require_usable_for_crypto
from openkms.errors import (
    AlreadyExistsException,
    UnsupportedOperationException,
    ValidationException,
)
from openkms.service import key_policies
from openkms.service.common import check_new_key_tags, tags_from_request
from openkms.service.context import RequestContext
from openkms.service.metadata import PRIMARY, REPLICA, key_metadata, key_type
from openkms.service.runtime import Runtime
from openkms.storage.records import MaterialRecord
from openkms.types import KeyState, OriginType

DAY = 86_400


def new_multi_region_key_id() -> str:
    return "mrk-" + uuid.uuid4().hex


def related(rt: Runtime, key: KeyRecord) -> list[KeyRecord]:
    return rt.storage.list_related_keys(key.account_id, key.key_id) if key.multi_region else []


def primary_of(rt: Runtime, key: KeyRecord) -> KeyRecord:
    """The primary key of a multi-Region key's set (the key itself otherwise)."""
    if not key.multi_region or key_type(key) != REPLICA:
        return key
    return next((k for k in related(rt, key) if key_type(k) == PRIMARY), key)


def require_primary(key: KeyRecord, operation: str) -> None:
    if key.multi_region and key_type(key) == REPLICA:
        raise UnsupportedOperationException(
            f"{key.arn} is a multi-Region replica key; {operation} is configured on the "
            "primary key."
        )


def _copy_material(rt: Runtime, source: KeyRecord, target_arn: str, record: MaterialRecord) -> None:
    plaintext = rt.unwrap_material(record)
    rt.storage.put_material(
        MaterialRecord(
            key_arn=target_arn,
            material_id=record.material_id,
            wrapped=rt.wrap_material(target_arn, record.material_id, plaintext),
            created_at=record.created_at,
            state=record.state,
            rotation_type=record.rotation_type,
            extra=record.extra,
        )
    )


def propagate_material(rt: Runtime, primary: KeyRecord, material_id: str) -> None:
    """Inside the primary's rotation transaction: every replica gets the new version too."""
    record = rt.storage.get_material(primary.arn, material_id)
    if record is None:
        return
    for replica in related(rt, primary):
        if replica.arn == primary.arn:
            continue
        for old in rt.storage.list_materials(replica.arn):
            if old.state == "CURRENT":
                rt.storage.put_material(
                    MaterialRecord(
                        old.key_arn,
                        old.material_id,
                        old.wrapped,
                        old.created_at,
                        "NON_CURRENT",
                        old.rotation_type,
                        old.extra,
                    )
                )
        _copy_material(rt, primary, replica.arn, record)
        rt.storage.update_key(replica.with_changes(current_material_id=material_id))
        rt.forget_key(replica.arn)


def replicate_key(rt: Runtime, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    source = rt.resolve_key(ctx, req["KeyId"], allow_alias=False)
    rt.access.authorize_key(ctx, "kms:ReplicateKey", source, req)
    if not source.multi_region:
        raise UnsupportedOperationException(
            f"{source.arn} is not a multi-Region key. Only multi-Region keys can be replicated."
        )
    if key_type(source) != PRIMARY:
        raise UnsupportedOperationException(f"{source.arn} is not a multi-region primary key.")
    if source.state != KeyState.PENDING_IMPORT.value:
        require_usable_for_crypto(source)
    region = req["ReplicaRegion"]
    if region == source.region:
        raise ValidationException(
            f"The replica Region {region} must differ from the Region of the primary key."
        )
    rt.access.authorize_account(ctx, "kms:CreateKey", "*", req)
    tags = tags_from_request(req.get("Tags"))
    check_new_key_tags(tags)
    if tags:  # as CreateKey: AWS requires kms:TagResource (IAM policy) for the Tags parameter
        rt.access.authorize_account(ctx, "kms:TagResource", "*", req)
    arn = rt.key_arn_for(source.account_id, region, source.key_id)
    policy = req.get("Policy")
    bindings: dict[str, str] = {}
    if policy is None:
        policy = key_policies.default_policy(rt.partition, source.account_id)
    else:
        bindings = key_policies.check_policy(
            rt,
            ctx,
            policy,
            arn,
            source.account_id,
            bypass=bool(req.get("BypassPolicyLockoutSafetyCheck")),
        )
    external = source.origin == OriginType.EXTERNAL.value
    replica = source.with_changes(
        arn=arn,
        region=region,
        # Not a shared property: a replica's description is its own, empty unless given.
        description=req.get("Description") or "",
        policy=policy,
        policy_principals=bindings,
        created_at=ctx.now,
        state=KeyState.PENDING_IMPORT.value if external else KeyState.ENABLED.value,
        current_material_id=None if external else source.current_material_id,
        deletion_at=None,
        pending_window_days=None,
        rotation_enabled=False,
        next_rotation_at=None,
        valid_to=None,
        expiration_model=None,
        last_used_at=None,
        last_used_operation=None,
        last_used_request_id=None,
        extra={"mr_type": REPLICA},
    )
    with rt.storage.transaction():
        if rt.storage.get_key(arn) is not None:
            raise AlreadyExistsException(
                f"Multi-Region key {source.key_id} already has a replica in {region}."
            )
        rt.storage.insert_key(replica)
        if not external:
            for record in rt.storage.list_materials(source.arn):
                _copy_material(rt, source, arn, record)
        if tags:
            rt.storage.put_tags(arn, tags)
    ctx.resources.append(arn)
    keys = related(rt, replica)
    metadata = key_metadata(replica, keys)
    # AWS's answer describes the replica as it is being created: no current material yet.
    metadata.pop("CurrentKeyMaterialId", None)
    result: dict[str, Any] = {"ReplicaKeyMetadata": metadata, "ReplicaPolicy": policy}
    if tags:
        result["ReplicaTags"] = [{"TagKey": k, "TagValue": v} for k, v in tags.items()]
    return result


def update_primary_region(rt: Runtime, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    key = rt.resolve_key(ctx, req["KeyId"], allow_alias=False)
    rt.access.authorize_key(ctx, "kms:UpdatePrimaryRegion", key, req)
    if not key.multi_region:
        raise UnsupportedOperationException(f"{key.arn} is not a multi-Region key.")
    if key_type(key) != PRIMARY:
        raise UnsupportedOperationException(
            f"{key.arn} is not the primary key; call UpdatePrimaryRegion on the primary key."
        )
    require_usable_for_crypto(key)
    target_region = req["PrimaryRegion"]
    # AWS requires kms:UpdatePrimaryRegion on the replica too, from its own key policy: the swap
    # makes it the key that may be replicated and rotated, so its owners must allow it as well.
    for replica in related(rt, key):
        if replica.region == target_region and replica.arn != key.arn:
            rt.access.authorize_key(ctx, "kms:UpdatePrimaryRegion", replica, req)
    with rt.storage.transaction():
        keys = related(rt, key)
        target = next((k for k in keys if k.region == target_region), None)
        if target is None:
            raise ValidationException(
                f"The multi-Region key {key.key_id} has no replica in {target_region}."
            )
        if target.arn == key.arn:
            return {}
        # Both keys of the swap must be usable when it starts.
        require_usable_for_crypto(target)
        # Rotation settings belong to the primary; they move with it.
        rt.storage.update_key(
            target.with_changes(
                extra={**target.extra, "mr_type": PRIMARY},
                rotation_enabled=key.rotation_enabled,
                rotation_period_days=key.rotation_period_days,
                next_rotation_at=key.next_rotation_at,
                on_demand_rotations=key.on_demand_rotations,
            )
        )
        rt.storage.update_key(
            key.with_changes(
                extra={**key.extra, "mr_type": REPLICA},
                rotation_enabled=False,
                next_rotation_at=None,
            )
        )
    rt.forget_key(key.arn)
    rt.forget_key(target.arn)
    return {}


def after_replica_deleted(rt: Runtime, replica: KeyRecord, now: float) -> None:
    """Inside the purge: a primary waiting for its replicas starts its own window once the last
    one is gone."""
    for key in related(rt, replica):
        if key.arn == replica.arn or key_type(key) != PRIMARY:
            continue
        if key.state != KeyState.PENDING_REPLICA_DELETION.value:
            continue
        others = [k for k in related(rt, key) if k.arn not in (key.arn, replica.arn)]
        if not others:
            days = key.pending_window_days or 30
            rt.storage.update_key(
                key.with_changes(
                    state=KeyState.PENDING_DELETION.value,
                    deletion_at=float(int(now) + days * DAY),
                )
            )
            rt.forget_key(key.arn)
