"""KeyMetadata as DescribeKey, CreateKey and friends return it."""

from __future__ import annotations

from typing import Any

from openkms.crypto import keyspecs
from openkms.domain.key import KeyRecord
from openkms.types import KeySpec, KeyState, KeyUsageType


def algorithm_lists(key_spec: str, key_usage: str) -> dict[str, list[str]]:
    """The algorithm members AWS reports for a key spec and usage."""
    return (
        keyspecs.spec_info(KeySpec(key_spec))
        .algorithms_for(KeyUsageType(key_usage))
        .metadata_fields()
    )


def key_metadata(key: KeyRecord, related: list[KeyRecord] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "AWSAccountId": key.account_id,
        "KeyId": key.key_id,
        "Arn": key.arn,
        "CreationDate": key.created_at,
        "Enabled": key.state == KeyState.ENABLED.value,
        "Description": key.description,
        "KeyUsage": key.key_usage,
        "KeyState": key.state,
        "Origin": key.origin,
        "KeyManager": key.key_manager,
        "KeySpec": key.key_spec,
        "MultiRegion": key.multi_region,
    }
    legacy = keyspecs.spec_info(KeySpec(key.key_spec)).customer_master_key_spec
    if legacy is not None:
        meta["CustomerMasterKeySpec"] = legacy.value
    meta.update(algorithm_lists(key.key_spec, key.key_usage))
    if key.deletion_at is not None:
        meta["DeletionDate"] = key.deletion_at
    if key.pending_window_days is not None and key.state == KeyState.PENDING_DELETION.value:
        meta["PendingDeletionWindowInDays"] = key.pending_window_days
    if key.current_material_id is not None and key.key_spec == KeySpec.SYMMETRIC_DEFAULT.value:
        meta["CurrentKeyMaterialId"] = key.current_material_id
    if key.valid_to is not None:
        meta["ValidTo"] = key.valid_to
    if key.expiration_model is not None:
        meta["ExpirationModel"] = key.expiration_model
    if key.custom_key_store_id is not None:
        meta["CustomKeyStoreId"] = key.custom_key_store_id
        from openkms.service.custom_key_stores import metadata_fields

        meta.update(metadata_fields(key))
    if key.multi_region:
        from openkms.service.multi_region import configuration

        meta["MultiRegionConfiguration"] = configuration(key, related or [key])
    return meta
