"""Rotation and the scheduler, driven by a fixed clock: years of schedule in milliseconds."""

from __future__ import annotations

import pytest

from openkms import scheduler
from openkms.errors import (
    DisabledException,
    KMSInvalidStateException,
    LimitExceededException,
    NotFoundException,
)
from openkms.service import aliases, encryption, keys, rotation, tags
from tests.unit.service_helpers import Harness

DAY = 86_400


def _new_key(h: Harness) -> str:
    key_id: str = h.call(keys.create_key, {})["KeyMetadata"]["KeyId"]
    return key_id


def test_automatic_rotation_over_years_keeps_every_version_decrypting() -> None:
    h = Harness()
    key_id = _new_key(h)
    h.call(rotation.enable_key_rotation, {"KeyId": key_id, "RotationPeriodInDays": 90})
    blobs = []
    for year in range(3):
        for _ in range(4):
            blob = h.call(encryption.encrypt, {"KeyId": key_id, "Plaintext": b"p%d" % year})
            blobs.append((blob["CiphertextBlob"], b"p%d" % year))
            h.clock.advance(91 * DAY)
            report = scheduler.run_once(h.rt, h.clock.now())
            assert len(report.rotated) == 1
            # A second run at the same time finds nothing due: each job runs once.
            assert scheduler.run_once(h.rt, h.clock.now()).rotated == []
    rotations = h.call(rotation.list_key_rotations, {"KeyId": key_id})["Rotations"]
    assert len(rotations) == 12
    assert {r["RotationType"] for r in rotations} == {"AUTOMATIC"}
    for blob, plaintext in blobs:
        assert h.call(encryption.decrypt, {"CiphertextBlob": blob})["Plaintext"] == plaintext
    materials = {
        h.call(encryption.decrypt, {"CiphertextBlob": b})["KeyMaterialId"] for b, _ in blobs
    }
    assert len(materials) == 12


def test_on_demand_rotation_limit_and_schedule_unchanged() -> None:
    h = Harness()
    key_id = _new_key(h)
    h.call(rotation.enable_key_rotation, {"KeyId": key_id})
    before = h.call(rotation.get_key_rotation_status, {"KeyId": key_id})
    assert before["RotationPeriodInDays"] == 365
    assert before["NextRotationDate"] == h.clock.now() + 365 * DAY
    for _ in range(25):
        h.call(rotation.rotate_key_on_demand, {"KeyId": key_id})
    with pytest.raises(LimitExceededException):
        h.call(rotation.rotate_key_on_demand, {"KeyId": key_id})
    after = h.call(rotation.get_key_rotation_status, {"KeyId": key_id})
    assert after["NextRotationDate"] == before["NextRotationDate"]
    listed = h.call(
        rotation.list_key_rotations, {"KeyId": key_id, "IncludeKeyMaterial": "ALL_KEY_MATERIAL"}
    )
    assert len(listed["Rotations"]) == 26
    states = [r["KeyMaterialState"] for r in listed["Rotations"]]
    assert states.count("CURRENT") == 1 and states[-1] == "CURRENT"


def test_list_key_rotations_pages() -> None:
    h = Harness()
    key_id = _new_key(h)
    for _ in range(5):
        h.clock.advance(1)
        h.call(rotation.rotate_key_on_demand, {"KeyId": key_id})
    seen = []
    marker = None
    while True:
        req = {"KeyId": key_id, "Limit": 2}
        if marker:
            req["Marker"] = marker
        page = h.call(rotation.list_key_rotations, req)
        seen += [r["KeyMaterialId"] for r in page["Rotations"]]
        if not page["Truncated"]:
            break
        marker = page["NextMarker"]
    assert len(seen) == 5 and len(set(seen)) == 5


def test_rotation_state_rules() -> None:
    h = Harness()
    key_id = _new_key(h)
    h.call(keys.disable_key, {"KeyId": key_id})
    with pytest.raises(DisabledException):
        h.call(rotation.enable_key_rotation, {"KeyId": key_id})
    with pytest.raises(DisabledException):
        h.call(rotation.rotate_key_on_demand, {"KeyId": key_id})
    h.call(keys.schedule_key_deletion, {"KeyId": key_id, "PendingWindowInDays": 7})
    with pytest.raises(KMSInvalidStateException):
        h.call(rotation.enable_key_rotation, {"KeyId": key_id})


def test_disabled_rotation_is_not_scheduled() -> None:
    h = Harness()
    key_id = _new_key(h)
    h.call(rotation.enable_key_rotation, {"KeyId": key_id, "RotationPeriodInDays": 90})
    h.call(rotation.disable_key_rotation, {"KeyId": key_id})
    h.clock.advance(1000 * DAY)
    assert scheduler.run_once(h.rt, h.clock.now()).rotated == []
    status = h.call(rotation.get_key_rotation_status, {"KeyId": key_id})
    assert status == {"KeyId": status["KeyId"], "KeyRotationEnabled": False}


def test_deletion_window_is_exact() -> None:
    h = Harness()
    key_id = _new_key(h)
    h.call(aliases.create_alias, {"AliasName": "alias/doomed", "TargetKeyId": key_id})
    h.call(tags.tag_resource, {"KeyId": key_id, "Tags": [{"TagKey": "a", "TagValue": "b"}]})
    out = h.call(keys.schedule_key_deletion, {"KeyId": key_id, "PendingWindowInDays": 7})
    deletion = out["DeletionDate"]
    h.clock.set(deletion - 1)
    assert scheduler.run_once(h.rt, h.clock.now()).deleted == []
    h.clock.set(deletion)
    assert len(scheduler.run_once(h.rt, h.clock.now()).deleted) == 1
    with pytest.raises(NotFoundException):
        h.call(keys.describe_key, {"KeyId": key_id})
    with pytest.raises(NotFoundException):
        h.call(keys.describe_key, {"KeyId": "alias/doomed"})
    assert h.storage.list_aliases("111122223333", "us-east-1", None, None, 10) == []


def test_cancelled_deletion_is_not_purged() -> None:
    h = Harness()
    key_id = _new_key(h)
    h.call(keys.schedule_key_deletion, {"KeyId": key_id, "PendingWindowInDays": 7})
    h.call(keys.cancel_key_deletion, {"KeyId": key_id})
    h.clock.advance(30 * DAY)
    assert scheduler.run_once(h.rt, h.clock.now()).deleted == []
    meta = h.call(keys.describe_key, {"KeyId": key_id})["KeyMetadata"]
    assert meta["KeyState"] == "Disabled" and "DeletionDate" not in meta
