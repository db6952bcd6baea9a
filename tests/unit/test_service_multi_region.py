"""Multi-Region keys at the service layer: one deployment, several Regions."""

from __future__ import annotations

import pytest

from openkms import scheduler
from openkms.errors import AlreadyExistsException, UnsupportedOperationException
from openkms.service import encryption, keys, multi_region, rotation
from tests.unit.service_helpers import Harness

DAY = 86_400


def test_replica_decrypts_primary_ciphertext_and_follows_rotation() -> None:
    h = Harness()
    meta = h.call(keys.create_key, {"MultiRegion": True})["KeyMetadata"]
    key_id = meta["KeyId"]
    assert key_id.startswith("mrk-") and len(key_id) == 36
    assert meta["MultiRegionConfiguration"]["MultiRegionKeyType"] == "PRIMARY"
    blob = h.call(encryption.encrypt, {"KeyId": key_id, "Plaintext": b"x"})["CiphertextBlob"]
    out = h.call(multi_region.replicate_key, {"KeyId": key_id, "ReplicaRegion": "eu-west-1"})
    replica = out["ReplicaKeyMetadata"]
    assert replica["Arn"].startswith("arn:aws:kms:eu-west-1:")
    assert replica["MultiRegionConfiguration"]["MultiRegionKeyType"] == "REPLICA"
    eu = h.ctx(region="eu-west-1")
    assert encryption.decrypt(h.rt, eu, {"CiphertextBlob": blob})["Plaintext"] == b"x"
    eu_blob = encryption.encrypt(h.rt, eu, {"KeyId": key_id, "Plaintext": b"y"})["CiphertextBlob"]
    assert h.call(encryption.decrypt, {"CiphertextBlob": eu_blob})["Plaintext"] == b"y"
    # Rotation is driven from the primary and reaches the replica.
    with pytest.raises(UnsupportedOperationException):
        rotation.rotate_key_on_demand(h.rt, h.ctx(region="eu-west-1"), {"KeyId": key_id})
    h.call(rotation.rotate_key_on_demand, {"KeyId": key_id})
    new_blob = h.call(encryption.encrypt, {"KeyId": key_id, "Plaintext": b"z"})["CiphertextBlob"]
    assert encryption.decrypt(h.rt, eu, {"CiphertextBlob": new_blob})["Plaintext"] == b"z"
    described = h.call(keys.describe_key, {"KeyId": key_id})["KeyMetadata"]
    assert [r["Region"] for r in described["MultiRegionConfiguration"]["ReplicaKeys"]] == [
        "eu-west-1"
    ]
    with pytest.raises(AlreadyExistsException):
        h.call(multi_region.replicate_key, {"KeyId": key_id, "ReplicaRegion": "eu-west-1"})


def test_primary_waits_for_replicas_before_its_window() -> None:
    h = Harness()
    key_id = h.call(keys.create_key, {"MultiRegion": True})["KeyMetadata"]["KeyId"]
    h.call(multi_region.replicate_key, {"KeyId": key_id, "ReplicaRegion": "eu-west-1"})
    out = h.call(keys.schedule_key_deletion, {"KeyId": key_id, "PendingWindowInDays": 7})
    assert out["KeyState"] == "PendingReplicaDeletion" and "DeletionDate" not in out
    keys.schedule_key_deletion(
        h.rt, h.ctx(region="eu-west-1"), {"KeyId": key_id, "PendingWindowInDays": 7}
    )
    h.clock.advance(7 * DAY)
    report = scheduler.run_once(h.rt, h.clock.now())
    assert len(report.deleted) == 1
    primary = h.call(keys.describe_key, {"KeyId": key_id})["KeyMetadata"]
    assert primary["KeyState"] == "PendingDeletion"
    h.clock.advance(7 * DAY)
    assert len(scheduler.run_once(h.rt, h.clock.now()).deleted) == 1


def test_update_primary_region_moves_rotation() -> None:
    h = Harness()
    key_id = h.call(keys.create_key, {"MultiRegion": True})["KeyMetadata"]["KeyId"]
    h.call(rotation.enable_key_rotation, {"KeyId": key_id})
    h.call(multi_region.replicate_key, {"KeyId": key_id, "ReplicaRegion": "eu-west-1"})
    h.call(multi_region.update_primary_region, {"KeyId": key_id, "PrimaryRegion": "eu-west-1"})
    eu = h.ctx(region="eu-west-1")
    meta = keys.describe_key(h.rt, eu, {"KeyId": key_id})["KeyMetadata"]
    assert meta["MultiRegionConfiguration"]["MultiRegionKeyType"] == "PRIMARY"
    status = rotation.get_key_rotation_status(h.rt, eu, {"KeyId": key_id})
    assert status["KeyRotationEnabled"] is True
    with pytest.raises(UnsupportedOperationException):
        h.call(rotation.rotate_key_on_demand, {"KeyId": key_id})


def test_single_region_keys_cannot_be_replicated() -> None:
    h = Harness()
    key_id = h.call(keys.create_key, {})["KeyMetadata"]["KeyId"]
    with pytest.raises(UnsupportedOperationException):
        h.call(multi_region.replicate_key, {"KeyId": key_id, "ReplicaRegion": "eu-west-1"})
