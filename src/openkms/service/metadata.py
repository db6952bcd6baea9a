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
        meta.update(custom_key_store_fields(key))
    if key.multi_region:
        meta["MultiRegionConfiguration"] = configuration(key, related or [key])
    return meta


# --- members of keys in custom key stores and of multi-Region keys ----------------------------
def custom_key_store_fields(key: KeyRecord) -> dict[str, Any]:
    """KeyMetadata members of a key in a custom key store."""
    out: dict[str, Any] = {}
    cluster = key.extra.get("cloudhsm_cluster_id")
    if cluster:
        out["CloudHsmClusterId"] = cluster
    xks_key_id = key.extra.get("xks_key_id")
    if xks_key_id:
        out["XksKeyConfiguration"] = {"Id": xks_key_id}
    return out


PRIMARY = "PRIMARY"
REPLICA = "REPLICA"


def key_type(key: KeyRecord) -> str | None:
    value = key.extra.get("mr_type")
    return None if value is None else str(value)


def configuration(key: KeyRecord, keys: list[KeyRecord]) -> dict[str, Any]:
    primary = next((k for k in keys if key_type(k) == PRIMARY), key)
    return {
        "MultiRegionKeyType": key_type(key) or PRIMARY,
        "PrimaryKey": {"Arn": primary.arn, "Region": primary.region},
        "ReplicaKeys": [{"Arn": k.arn, "Region": k.region} for k in keys if key_type(k) == REPLICA],
    }
