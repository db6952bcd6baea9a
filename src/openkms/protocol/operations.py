"""The one dispatch table: AWS operation name → service function.

Every operation of the model is here: implemented, or answering an explicit error that names it
(checked against the model by tests/unit/test_dispatch.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from openkms.errors import OperationNotImplementedException, UnknownOperationException
from openkms.protocol.model import operation_names
from openkms.service import (
    aliases,
    custom_key_stores,
    data_key_pairs,
    data_keys,
    encryption,
    grants,
    imports,
    key_agreement,
    key_policies,
    keys,
    macs,
    multi_region,
    random,
    rotation,
    signing,
    tags,
)
from openkms.service.context import RequestContext
from openkms.service.runtime import Runtime

Handler = Callable[[Runtime, RequestContext, dict[str, Any]], dict[str, Any]]

OPERATIONS: dict[str, Handler] = {
    "CancelKeyDeletion": keys.cancel_key_deletion,
    "ConnectCustomKeyStore": custom_key_stores.connect_custom_key_store,
    "CreateCustomKeyStore": custom_key_stores.create_custom_key_store,
    "DeleteCustomKeyStore": custom_key_stores.delete_custom_key_store,
    "DescribeCustomKeyStores": custom_key_stores.describe_custom_key_stores,
    "DisconnectCustomKeyStore": custom_key_stores.disconnect_custom_key_store,
    "UpdateCustomKeyStore": custom_key_stores.update_custom_key_store,
    "CreateAlias": aliases.create_alias,
    "CreateGrant": grants.create_grant,
    "CreateKey": keys.create_key,
    "Decapsulate": key_agreement.decapsulate,
    "Decrypt": encryption.decrypt,
    "DeleteAlias": aliases.delete_alias,
    "DeleteImportedKeyMaterial": imports.delete_imported_key_material,
    "DeriveSharedSecret": key_agreement.derive_shared_secret,
    "DescribeKey": keys.describe_key,
    "DisableKey": keys.disable_key,
    "DisableKeyRotation": rotation.disable_key_rotation,
    "EnableKey": keys.enable_key,
    "EnableKeyRotation": rotation.enable_key_rotation,
    "Encapsulate": key_agreement.encapsulate,
    "Encrypt": encryption.encrypt,
    "GenerateDataKey": data_keys.generate_data_key,
    "GenerateDataKeyPair": data_key_pairs.generate_data_key_pair,
    "GenerateDataKeyPairWithoutPlaintext": data_key_pairs.generate_data_key_pair_without_plaintext,
    "GenerateDataKeyWithoutPlaintext": data_keys.generate_data_key_without_plaintext,
    "GenerateMac": macs.generate_mac,
    "GenerateRandom": random.generate_random,
    "GetKeyLastUsage": keys.get_key_last_usage,
    "GetKeyPolicy": key_policies.get_key_policy,
    "GetKeyRotationStatus": rotation.get_key_rotation_status,
    "GetParametersForImport": imports.get_parameters_for_import,
    "GetPublicKey": signing.get_public_key,
    "ImportKeyMaterial": imports.import_key_material,
    "ListAliases": aliases.list_aliases,
    "ListGrants": grants.list_grants,
    "ListKeyPolicies": key_policies.list_key_policies,
    "ListKeyRotations": rotation.list_key_rotations,
    "ListKeys": keys.list_keys,
    "ListResourceTags": tags.list_resource_tags,
    "ListRetirableGrants": grants.list_retirable_grants,
    "PutKeyPolicy": key_policies.put_key_policy,
    "ReEncrypt": encryption.re_encrypt,
    "ReplicateKey": multi_region.replicate_key,
    "RetireGrant": grants.retire_grant,
    "RevokeGrant": grants.revoke_grant,
    "RotateKeyOnDemand": rotation.rotate_key_on_demand,
    "ScheduleKeyDeletion": keys.schedule_key_deletion,
    "Sign": signing.sign,
    "TagResource": tags.tag_resource,
    "UntagResource": tags.untag_resource,
    "UpdateAlias": aliases.update_alias,
    "UpdateKeyDescription": keys.update_key_description,
    "UpdatePrimaryRegion": multi_region.update_primary_region,
    "Verify": signing.verify,
    "VerifyMac": macs.verify_mac,
}

# Operations that only read: for the audit record's readOnly flag.
READ_ONLY = frozenset(
    {
        "DescribeKey",
        "DescribeCustomKeyStores",
        "GetKeyLastUsage",
        "GetKeyPolicy",
        "GetKeyRotationStatus",
        "GetParametersForImport",
        "GetPublicKey",
        "ListAliases",
        "ListGrants",
        "ListKeyPolicies",
        "ListKeyRotations",
        "ListKeys",
        "ListResourceTags",
        "ListRetirableGrants",
    }
)

_MODEL_OPERATIONS = frozenset(operation_names())


def _not_implemented(name: str) -> Handler:
    def handler(rt: Runtime, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        raise OperationNotImplementedException(
            f"{name} is not implemented by this openkms build yet."
        )

    return handler


def handler_for(name: str) -> Handler:
    handler = OPERATIONS.get(name)
    if handler is not None:
        return handler
    if name in _MODEL_OPERATIONS:
        return _not_implemented(name)
    raise UnknownOperationException("")


def implemented() -> frozenset[str]:
    return frozenset(OPERATIONS)
