"""AWS managed keys (``KeyManager: AWS``): the key a service such as Secrets Manager uses when
the caller names none (``alias/aws/secretsmanager``), created in the account and Region on
first use, as AWS does.

Its key policy is AWS's documented one for AWS managed keys: the cryptographic operations and
grants for every principal of the account, but only through the service (``kms:ViaService``)
and only from the account (``kms:CallerAccount``); the account may read the key's metadata.
Nothing else is allowed to anyone, so nobody can change its policy, disable it, schedule its
deletion, tag it or point another alias at it: each such request is refused by the policy
like any other unauthorized request. Its material rotates every year."""

from __future__ import annotations

import json
import uuid

from openkms.crypto.aead import new_symmetric_material
from openkms.domain.key import KeyRecord
from openkms.service.keys import new_material_id
from openkms.service.runtime import Runtime
from openkms.storage.base import StorageConflict
from openkms.storage.records import AliasRecord, MaterialRecord
from openkms.types import KeySpec, KeyState, KeyUsageType, OriginType

ROTATION_DAYS = 365
_DAY = 86_400
_DESCRIPTIONS = {
    "secretsmanager": "Default key that protects my Secrets Manager data when no other key is "
    "defined",
}


def managed_policy(service: str, account_id: str, region: str, partition: str) -> str:
    """AWS's key policy for the AWS managed key of ``service``."""
    via = f"{service}.{region}.amazonaws.com"
    through = (
        f"Allow access through {service} for all principals in the account that are "
        f"authorized to use {service}"
    )
    policy = {
        "Version": "2012-10-17",
        "Id": f"auto-{service}-2",
        "Statement": [
            {
                "Sid": through,
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": [
                    "kms:Encrypt",
                    "kms:Decrypt",
                    "kms:ReEncrypt*",
                    "kms:CreateGrant",
                    "kms:DescribeKey",
                ],
                "Resource": "*",
                "Condition": {
                    "StringEquals": {"kms:CallerAccount": account_id, "kms:ViaService": via}
                },
            },
            {
                "Sid": through,
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": "kms:GenerateDataKey*",
                "Resource": "*",
                "Condition": {
                    "StringEquals": {"kms:CallerAccount": account_id},
                    "StringLike": {"kms:ViaService": via},
                },
            },
            {
                "Sid": "Allow direct access to key metadata to the account",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{partition}:iam::{account_id}:root"},
                "Action": ["kms:Describe*", "kms:Get*", "kms:List*", "kms:RevokeGrant"],
                "Resource": "*",
            },
        ],
    }
    return json.dumps(policy, indent=2)


def ensure_managed_key(rt: Runtime, service: str, account_id: str, region: str, now: float) -> str:
    """The ARN of ``alias/aws/<service>``'s key in the account and Region, created (key,
    material, alias in one transaction) if it does not exist yet. Safe against a concurrent
    creator: the alias is unique, the loser reads the winner's."""
    alias_name = f"alias/aws/{service}"
    key_id = rt.alias_target(account_id, region, alias_name)
    if key_id is not None:
        return rt.key_arn_for(account_id, region, key_id)
    key_id = str(uuid.uuid4())
    arn = rt.key_arn_for(account_id, region, key_id)
    material_id = new_material_id()
    key = KeyRecord(
        arn=arn,
        key_id=key_id,
        account_id=account_id,
        region=region,
        key_spec=KeySpec.SYMMETRIC_DEFAULT.value,
        key_usage=KeyUsageType.ENCRYPT_DECRYPT.value,
        origin=OriginType.AWS_KMS.value,
        key_manager="AWS",
        description=_DESCRIPTIONS.get(service, f"Default key for {service}"),
        state=KeyState.ENABLED.value,
        created_at=now,
        policy=managed_policy(service, account_id, region, rt.partition),
        current_material_id=material_id,
        rotation_enabled=True,
        rotation_period_days=ROTATION_DAYS,
        next_rotation_at=now + ROTATION_DAYS * _DAY,
    )
    material = MaterialRecord(
        key_arn=arn,
        material_id=material_id,
        wrapped=rt.wrap_material(arn, material_id, new_symmetric_material()),
        created_at=now,
        state="CURRENT",
    )
    try:
        with rt.storage.transaction():
            rt.storage.insert_alias(AliasRecord(account_id, region, alias_name, key_id, now, now))
            rt.storage.insert_key(key)
            rt.storage.put_material(material)
    except StorageConflict:
        rt.forget_alias(account_id, region, alias_name)
        winner = rt.alias_target(account_id, region, alias_name)
        if winner is None:
            raise
        return rt.key_arn_for(account_id, region, winner)
    return arn
