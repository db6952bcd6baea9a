"""Imported key material (BYOK): GetParametersForImport, ImportKeyMaterial,
DeleteImportedKeyMaterial; and the scheduler's expiry of material past its ValidTo.

The wrapping private key and the one-use token live in the document store (``kms-import``,
scope key ARN, name token id), the private key wrapped by the root of trust. The id of imported
symmetric material is derived from the material and the key id, so re-importing the same
material after a deletion restores the same KeyMaterialId and old ciphertexts decrypt again."""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import Any

import orjson

from openkms.crypto import wrapping
from openkms.domain.key import KeyRecord, state_message
from openkms.errors import (
    ExpiredImportTokenException,
    IncorrectKeyMaterialException,
    InvalidImportTokenException,
    KMSInvalidStateException,
    UnsupportedOperationException,
    ValidationException,
)
from openkms.rootoftrust.aad import IMPORT_TOKEN_KIND, import_token_aad
from openkms.service import asymmetric_keys, multi_region
from openkms.service.context import RequestContext
from openkms.service.metadata import REPLICA, key_type
from openkms.service.runtime import Runtime
from openkms.storage.records import MaterialRecord
from openkms.types import KeySpec, KeyState, OriginType

KIND = IMPORT_TOKEN_KIND
TOKEN_PREFIX = b"okit1"
PARAMETERS_VALID_SECONDS = 24 * 3600
MAX_VALID_TO_SECONDS = 365 * 86_400

# Imported HMAC key material sizes (bytes), per AWS's key spec reference.
_HMAC_SIZES = {
    "HMAC_224": (28, 64),
    "HMAC_256": (32, 64),
    "HMAC_384": (48, 128),
    "HMAC_512": (64, 128),
}


def imported_material_id(key_id: str, material: bytes) -> str:
    # Keyed by the material itself: the id reveals nothing about it, and is stable across
    # re-imports and across the Regions of a multi-Region key.
    label = b"openkms:imported-material-id:" + key_id.encode()
    return hmac.new(material, label, hashlib.sha256).hexdigest()


def _require_external(key: KeyRecord) -> None:
    if key.origin != OriginType.EXTERNAL.value:
        raise UnsupportedOperationException(
            f"{key.arn} origin is {key.origin} which is not valid for this operation."
        )


def _require_not_deleting(key: KeyRecord) -> None:
    if key.state in (KeyState.PENDING_DELETION.value, KeyState.PENDING_REPLICA_DELETION.value):
        raise KMSInvalidStateException(state_message(key))


def get_parameters_for_import(
    rt: Runtime, ctx: RequestContext, req: dict[str, Any]
) -> dict[str, Any]:
    key = rt.resolve_key(ctx, req["KeyId"], allow_alias=False)
    rt.access.authorize_key(ctx, "kms:GetParametersForImport", key, req)
    _require_external(key)
    _require_not_deleting(key)
    algorithm = req["WrappingAlgorithm"]
    spec = req["WrappingKeySpec"]
    if algorithm not in wrapping.SUPPORTED_ALGORITHMS:
        raise ValidationException(f"Wrapping algorithm {algorithm} is not supported.")
    if spec not in wrapping.SUPPORTED_KEY_SPECS:
        raise ValidationException(f"Wrapping key spec {spec} is not supported.")
    private, public = wrapping.new_wrapping_key(spec)
    token_id = os.urandom(32).hex()
    valid_to = ctx.now + PARAMETERS_VALID_SECONDS
    doc = {
        "wrapped_private": rt.root.wrap(private, import_token_aad(key.arn, token_id)).hex(),
        "algorithm": algorithm,
        "valid_to": valid_to,
    }
    rt.storage.put_document(KIND, key.arn, token_id, orjson.dumps(doc).decode(), ctx.now)
    return {
        "KeyId": key.arn,
        "ImportToken": TOKEN_PREFIX + bytes.fromhex(token_id),
        "PublicKey": public,
        "ParametersValidTo": valid_to,
    }


def _validate_material(key: KeyRecord, material: bytes) -> None:
    if key.key_spec == KeySpec.SYMMETRIC_DEFAULT.value:
        if len(material) != 32:
            raise IncorrectKeyMaterialException(
                "Symmetric key material must be 256 bits (32 bytes)."
            )
    elif key.key_spec in _HMAC_SIZES:
        low, high = _HMAC_SIZES[key.key_spec]
        if not low <= len(material) <= high:
            raise IncorrectKeyMaterialException(
                f"{key.key_spec} key material must be {low} to {high} bytes."
            )
    else:
        asymmetric_keys.validate_imported_material(key.key_spec, material)


def import_key_material(rt: Runtime, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    key = rt.resolve_key(ctx, req["KeyId"], allow_alias=False)
    rt.access.authorize_key(ctx, "kms:ImportKeyMaterial", key, req)
    _require_external(key)
    _require_not_deleting(key)
    model = req.get("ExpirationModel") or "KEY_MATERIAL_EXPIRES"
    valid_to = req.get("ValidTo")
    if model == "KEY_MATERIAL_EXPIRES":
        if valid_to is None:
            raise ValidationException(
                "A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES"
            )
        if valid_to <= ctx.now or valid_to > ctx.now + MAX_VALID_TO_SECONDS:
            raise ValidationException(
                "ValidTo must be in the future and at most 365 days from the request date."
            )
    elif valid_to is not None:
        raise ValidationException(
            "ValidTo must not be set if the ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE"
        )
    token = req["ImportToken"]
    if not token.startswith(TOKEN_PREFIX) or len(token) != len(TOKEN_PREFIX) + 32:
        raise InvalidImportTokenException("The import token is not valid.")
    token_id = token[len(TOKEN_PREFIX) :].hex()
    raw = rt.storage.get_document(KIND, key.arn, token_id)
    if raw is None:
        raise InvalidImportTokenException(
            "The import token is not valid for this KMS key, or was already used."
        )
    doc = orjson.loads(raw)
    if doc["valid_to"] < ctx.now:
        raise ExpiredImportTokenException("The import token has expired.")
    private = rt.root.unwrap(
        bytes.fromhex(doc["wrapped_private"]), import_token_aad(key.arn, token_id)
    )
    material = wrapping.unwrap_key_material(private, doc["algorithm"], req["EncryptedKeyMaterial"])
    _validate_material(key, material)
    symmetric = key.key_spec == KeySpec.SYMMETRIC_DEFAULT.value
    material_id = imported_material_id(key.key_id, material)
    if req.get("KeyMaterialId") is not None and req["KeyMaterialId"] != material_id:
        raise IncorrectKeyMaterialException(
            "The key material does not match the specified KeyMaterialId."
        )
    with rt.storage.transaction():
        fresh = rt.storage.get_key(key.arn)
        assert fresh is not None
        key = fresh
        known = key.extra.get("imported_material_ids", [])
        fingerprint = material_id
        if key.multi_region and key_type(key) == REPLICA and not known:
            # A replica accepts only the material of its key set, which it imports as existing
            # material of that set.
            known = [
                m
                for k in multi_region.related(rt, key)
                for m in k.extra.get("imported_material_ids", [])
            ]
            if fingerprint not in known:
                raise IncorrectKeyMaterialException(
                    "The key material must be the same as that of the primary key."
                )
            known = []
        default_type = "EXISTING_KEY_MATERIAL" if known else "NEW_KEY_MATERIAL"
        import_type = req.get("ImportType") or default_type
        if import_type == "EXISTING_KEY_MATERIAL" and known and fingerprint not in known:
            raise IncorrectKeyMaterialException(
                "The key material in the request is different from key material that was "
                "previously imported into this KMS key."
            )
        if import_type == "NEW_KEY_MATERIAL" and fingerprint in known:
            raise IncorrectKeyMaterialException(
                "This key material was already imported into this KMS key."
            )
        pending_rotation = import_type == "NEW_KEY_MATERIAL" and bool(known)
        if pending_rotation and not symmetric:
            raise UnsupportedOperationException(
                "Only symmetric encryption keys can rotate to new imported key material."
            )
        if pending_rotation:
            waiting = next(
                (
                    m.material_id
                    for m in rt.storage.list_materials(key.arn)
                    if m.state == "PENDING_ROTATION"
                ),
                None,
            )
            if waiting is not None:
                raise KMSInvalidStateException(
                    f"New key material (id: {material_id}) cannot be imported into KMS key "
                    f"{key.key_id}, because another key material (id: {waiting}) is pending "
                    "rotation."
                )
        rt.storage.put_material(
            MaterialRecord(
                key_arn=key.arn,
                material_id=material_id,
                wrapped=rt.wrap_material(key.arn, material_id, material),
                created_at=ctx.now,
                state="PENDING_ROTATION" if pending_rotation else "CURRENT",
                rotation_type=None,
                extra={
                    "imported": True,
                    "expiration_model": model,
                    "valid_to": valid_to,
                    "description": req.get("KeyMaterialDescription"),
                },
            )
        )
        changes: dict[str, Any] = {
            "extra": {**key.extra, "imported_material_ids": sorted({*known, fingerprint})}
        }
        if not pending_rotation:
            changes.update(
                current_material_id=material_id,
                expiration_model=model,
                valid_to=valid_to,
            )
            if key.state == KeyState.PENDING_IMPORT.value:
                changes["state"] = KeyState.ENABLED.value
        rt.storage.update_key(key.with_changes(**changes))
        rt.storage.delete_document(KIND, key.arn, token_id)
    rt.forget_key(key.arn)
    rt.material_cache.pop((key.arn, material_id))
    return {"KeyId": key.arn, "KeyMaterialId": material_id}


def _drop_material(rt: Runtime, key: KeyRecord, material_id: str | None) -> KeyRecord:
    """Inside a transaction: delete imported material; without a current one the key waits for
    an import again."""
    materials = rt.storage.list_materials(key.arn)
    for m in materials:
        if material_id is None or m.material_id == material_id:
            rt.storage.delete_material(key.arn, m.material_id)
            rt.material_cache.pop((key.arn, m.material_id))
    changes: dict[str, Any] = {}
    if material_id is None or material_id == key.current_material_id:
        # The key keeps naming its current material (DescribeKey still shows
        # CurrentKeyMaterialId, as AWS does); re-importing it makes the key usable again.
        changes = {"valid_to": None, "expiration_model": None}
        if key.state != KeyState.PENDING_DELETION.value:
            changes["state"] = KeyState.PENDING_IMPORT.value
    updated = key.with_changes(**changes)
    rt.storage.update_key(updated)
    return updated


def delete_imported_key_material(
    rt: Runtime, ctx: RequestContext, req: dict[str, Any]
) -> dict[str, Any]:
    key = rt.resolve_key(ctx, req["KeyId"], allow_alias=False)
    rt.access.authorize_key(ctx, "kms:DeleteImportedKeyMaterial", key, req)
    _require_external(key)
    material_id = req.get("KeyMaterialId")
    with rt.storage.transaction():
        fresh = rt.storage.get_key(key.arn)
        assert fresh is not None
        deleted = material_id or fresh.current_material_id
        _drop_material(rt, fresh, material_id)
    rt.forget_key(key.arn)
    result: dict[str, Any] = {"KeyId": key.arn}
    if deleted:
        result["KeyMaterialId"] = deleted
    return result


def expire_material(rt: Runtime, now: float) -> list[str]:
    """The scheduler's job: material whose ValidTo has passed is deleted."""
    expired = []
    for arn in rt.storage.keys_with_expiring_material(now):
        with rt.storage.transaction():
            key = rt.storage.get_key(arn)
            if key is None or key.valid_to is None or key.valid_to > now:
                continue
            _drop_material(rt, key, None)
        rt.forget_key(arn)
        expired.append(arn)
    return expired
