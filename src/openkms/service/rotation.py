"""Rotation: EnableKeyRotation, DisableKeyRotation, GetKeyRotationStatus, RotateKeyOnDemand,
ListKeyRotations; and the scheduler's automatic rotations.

A rotation adds a material version under the same key id and ARN; older versions stay for
decryption, new encryptions use the newest. Each rotation is one transaction, so a crash leaves
either the old or the new current material, never half of one."""

from __future__ import annotations

from typing import Any

from openkms.crypto.aead import new_symmetric_material
from openkms.domain.key import KeyRecord, state_error
from openkms.errors import (
    KMSInvalidStateException,
    LimitExceededException,
    NotFoundException,
    UnsupportedOperationException,
)
from openkms.service.common import decode_marker, encode_marker
from openkms.service.context import RequestContext
from openkms.service.keys import DAY, new_material_id
from openkms.service.multi_region import primary_of, propagate_material, require_primary
from openkms.service.runtime import Runtime
from openkms.storage.records import MaterialRecord
from openkms.types import KeySpec, KeyState, OriginType

DEFAULT_ROTATION_PERIOD_DAYS = 365
MAX_ON_DEMAND_ROTATIONS = 25


def _require_rotatable(key: KeyRecord, *, on_demand: bool = False) -> None:
    if key.key_spec != KeySpec.SYMMETRIC_DEFAULT.value:
        raise UnsupportedOperationException(
            f"{key.arn} key spec is {key.key_spec} which is not valid for this operation. "
            "Only symmetric encryption KMS keys support key rotation."
        )
    if key.origin == OriginType.EXTERNAL.value and on_demand:
        return
    if key.origin != OriginType.AWS_KMS.value:
        raise UnsupportedOperationException(
            f"{key.arn} origin is {key.origin} which is not valid for this operation."
        )


def _require_state_for_rotation_change(key: KeyRecord) -> None:
    if key.state != KeyState.ENABLED.value:
        raise state_error(key)


def _fresh(rt: Runtime, arn: str) -> KeyRecord:
    rt.forget_key(arn)
    key = rt.storage.get_key(arn)
    if key is None:
        raise NotFoundException(f"Key '{arn}' does not exist")
    return key


def enable_key_rotation(rt: Runtime, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    key = rt.resolve_key(ctx, req["KeyId"], allow_alias=False)
    rt.access.authorize_key(ctx, "kms:EnableKeyRotation", key, req)
    period = req.get("RotationPeriodInDays") or DEFAULT_ROTATION_PERIOD_DAYS
    with rt.storage.transaction():
        key = _fresh(rt, key.arn)
        _require_rotatable(key)
        require_primary(key, "EnableKeyRotation")
        _require_state_for_rotation_change(key)
        # The schedule counts from the last automatic rotation, or from now on first enable.
        start = ctx.now
        if key.rotation_enabled and key.extra.get("last_automatic_rotation_at"):
            start = float(key.extra["last_automatic_rotation_at"])
        next_at = start + period * DAY
        if next_at <= ctx.now:
            next_at = ctx.now
        rt.storage.update_key(
            key.with_changes(
                rotation_enabled=True, rotation_period_days=period, next_rotation_at=next_at
            )
        )
    rt.forget_key(key.arn)
    return {}


def disable_key_rotation(rt: Runtime, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    key = rt.resolve_key(ctx, req["KeyId"], allow_alias=False)
    rt.access.authorize_key(ctx, "kms:DisableKeyRotation", key, req)
    with rt.storage.transaction():
        key = _fresh(rt, key.arn)
        _require_rotatable(key)
        require_primary(key, "DisableKeyRotation")
        _require_state_for_rotation_change(key)
        rt.storage.update_key(key.with_changes(rotation_enabled=False, next_rotation_at=None))
    rt.forget_key(key.arn)
    return {}


def get_key_rotation_status(
    rt: Runtime, ctx: RequestContext, req: dict[str, Any]
) -> dict[str, Any]:
    key = rt.resolve_key(ctx, req["KeyId"], allow_alias=False)
    rt.access.authorize_key(ctx, "kms:GetKeyRotationStatus", key, req)
    _require_rotatable(key)
    # A multi-Region key set shares the rotation settings of its primary.
    source = primary_of(rt, key)
    enabled = source.rotation_enabled and key.state not in (
        # AWS reports rotation as off while a key waits for deletion (it returns on cancel).
        KeyState.PENDING_DELETION.value,
        KeyState.PENDING_REPLICA_DELETION.value,
    )
    result: dict[str, Any] = {"KeyId": key.arn, "KeyRotationEnabled": enabled}
    if enabled:
        result["RotationPeriodInDays"] = source.rotation_period_days
        result["NextRotationDate"] = source.next_rotation_at
    return result


def _rotate(rt: Runtime, key: KeyRecord, now: float, rotation_type: str) -> KeyRecord:
    """Inside a transaction: new current material, the old one kept as NON_CURRENT. A key with
    imported material rotates to the material imported for it as PENDING_ROTATION."""
    if key.origin == OriginType.EXTERNAL.value:
        pending = [m for m in rt.storage.list_materials(key.arn) if m.state == "PENDING_ROTATION"]
        if not pending:
            raise KMSInvalidStateException(
                f"No available key material pending rotation for the key: {key.arn}."
            )
        new = pending[-1]
        material_id = new.material_id
        rt.storage.put_material(
            MaterialRecord(
                new.key_arn, material_id, new.wrapped, now, "CURRENT", rotation_type, new.extra
            )
        )
    else:
        material_id = new_material_id()
        rt.storage.put_material(
            MaterialRecord(
                key_arn=key.arn,
                material_id=material_id,
                wrapped=rt.wrap_material(key.arn, material_id, new_symmetric_material()),
                created_at=now,
                state="CURRENT",
                rotation_type=rotation_type,
            )
        )
    if key.current_material_id is not None:
        old = rt.storage.get_material(key.arn, key.current_material_id)
        if old is not None:
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
    changes: dict[str, Any] = {"current_material_id": material_id}
    if rotation_type == "ON_DEMAND":
        changes["on_demand_rotations"] = key.on_demand_rotations + 1
    else:
        period = key.rotation_period_days or DEFAULT_ROTATION_PERIOD_DAYS
        changes["next_rotation_at"] = now + period * DAY
        changes["extra"] = {**key.extra, "last_automatic_rotation_at": now}
    rotated = key.with_changes(**changes)
    rt.storage.update_key(rotated)
    if key.multi_region:
        propagate_material(rt, rotated, material_id)
    return rotated


def rotate_key_on_demand(rt: Runtime, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    key = rt.resolve_key(ctx, req["KeyId"], allow_alias=False)
    rt.access.authorize_key(ctx, "kms:RotateKeyOnDemand", key, req)
    with rt.storage.transaction():
        key = _fresh(rt, key.arn)
        # The key state first: a disabled RSA key is DisabledException, as in AWS.
        _require_state_for_rotation_change(key)
        if key.key_spec != KeySpec.SYMMETRIC_DEFAULT.value:
            # AWS answers this one without a message.
            raise UnsupportedOperationException()
        _require_rotatable(key, on_demand=True)
        require_primary(key, "RotateKeyOnDemand")
        if key.on_demand_rotations >= MAX_ON_DEMAND_ROTATIONS:
            raise LimitExceededException(
                "The on-demand rotations limit has been reached for the given keyId. "
                f"No more on-demand rotations can be performed for this key: {key.arn}"
            )
        _rotate(rt, key, ctx.now, "ON_DEMAND")
    rt.forget_key(key.arn)
    return {"KeyId": key.arn}


def list_key_rotations(rt: Runtime, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    key = rt.resolve_key(ctx, req["KeyId"], allow_alias=False)
    rt.access.authorize_key(ctx, "kms:ListKeyRotations", key, req)
    _require_rotatable(key, on_demand=True)
    include_all = req.get("IncludeKeyMaterial") == "ALL_KEY_MATERIAL"
    limit = req.get("Limit") or 100
    after = decode_marker(req.get("Marker"))
    materials = [
        m for m in rt.storage.list_materials(key.arn) if include_all or m.rotation_type is not None
    ]
    ordered = [f"{m.created_at:020.6f}:{m.material_id}" for m in materials]
    start = 0 if after is None else next((i + 1 for i, o in enumerate(ordered) if o == after), 0)
    window = materials[start : start + limit]
    result: dict[str, Any] = {
        "Rotations": [
            {
                "KeyId": key.arn,
                "KeyMaterialId": m.material_id,
                "KeyMaterialState": m.state,
                "RotationDate": m.created_at,
                **({"RotationType": m.rotation_type} if m.rotation_type else {}),
                **_import_fields(m),
            }
            for m in window
        ],
        "Truncated": start + limit < len(materials),
    }
    if result["Truncated"]:
        result["NextMarker"] = encode_marker(ordered[start + limit - 1])
    return result


def _import_fields(material: MaterialRecord) -> dict[str, Any]:
    if not material.extra.get("imported"):
        return {}
    fields: dict[str, Any] = {
        "ImportState": "IMPORTED",
        "ExpirationModel": material.extra.get("expiration_model"),
    }
    if material.extra.get("valid_to") is not None:
        fields["ValidTo"] = material.extra["valid_to"]
    if material.extra.get("description"):
        fields["KeyMaterialDescription"] = material.extra["description"]
    return fields


def run_due_rotations(rt: Runtime, now: float) -> list[str]:
    """The scheduler's job; safe to run in several processes at once (each rotation re-checks
    the key inside its own transaction, so a key due once rotates once)."""
    rotated = []
    for arn in rt.storage.keys_due_for_rotation(now):
        with rt.storage.transaction():
            key = rt.storage.get_key(arn)
            if key is None or not key.rotation_enabled or key.next_rotation_at is None:
                continue
            if key.next_rotation_at > now or key.state != KeyState.ENABLED.value:
                continue
            _rotate(rt, key, now, "AUTOMATIC")
        rt.forget_key(arn)
        rotated.append(arn)
    return rotated
