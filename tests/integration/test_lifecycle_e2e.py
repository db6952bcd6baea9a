"""Issue 5 acceptance, key lifecycle: rotation (on demand, automatic through the operator's
``scheduler run-once --now``), deletion through the scheduler, and everything across a restart.

Tests that move time run the scheduler against a server of their own (``server_factory``, own
data directory), never against the shared session server.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.client import BaseClient

from tests.conformance import expect_error, unique_alias
from tests.integration.test_import_e2e import (
    DAY,
    external_key,
    import_material,
    needs_openssl,
    now_utc,
    random_material,
    run_scheduler,
)

TOLERANCE = datetime.timedelta(minutes=2)
GRACEFUL_EXITS = {0, -15}


def close_to(actual: datetime.datetime, expected: datetime.datetime) -> bool:
    return abs(actual - expected) < TOLERANCE


def current_material(kms: BaseClient, key_id: str) -> str:
    material: str = kms.describe_key(KeyId=key_id)["KeyMetadata"]["CurrentKeyMaterialId"]
    return material


# --- EnableKeyRotation / DisableKeyRotation / GetKeyRotationStatus ------------------------------
def test_rotation_periods(kms: BaseClient, kms_unvalidated: BaseClient) -> None:
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    arn = kms.describe_key(KeyId=key_id)["KeyMetadata"]["Arn"]
    status = kms.get_key_rotation_status(KeyId=key_id)
    assert status["KeyRotationEnabled"] is False
    assert status["KeyId"] == arn
    assert "RotationPeriodInDays" not in status
    assert "NextRotationDate" not in status

    kms.enable_key_rotation(KeyId=key_id)
    status = kms.get_key_rotation_status(KeyId=key_id)
    assert status["KeyRotationEnabled"] is True
    assert status["RotationPeriodInDays"] == 365
    assert close_to(status["NextRotationDate"], now_utc() + 365 * DAY)

    for days in (90, 2560, 730):
        kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=days)
        status = kms.get_key_rotation_status(KeyId=key_id)
        assert status["RotationPeriodInDays"] == days
        assert close_to(status["NextRotationDate"], now_utc() + days * DAY)

    for days in (89, 2561, 0, -1):
        expect_error(
            "ValidationException",
            kms_unvalidated.enable_key_rotation,
            KeyId=key_id,
            RotationPeriodInDays=days,
        )
    assert kms.get_key_rotation_status(KeyId=key_id)["RotationPeriodInDays"] == 730

    kms.disable_key_rotation(KeyId=key_id)
    status = kms.get_key_rotation_status(KeyId=key_id)
    assert status["KeyRotationEnabled"] is False
    assert "RotationPeriodInDays" not in status
    assert "NextRotationDate" not in status
    # Enabling again without a period means the default.
    kms.enable_key_rotation(KeyId=key_id)
    assert kms.get_key_rotation_status(KeyId=key_id)["RotationPeriodInDays"] == 365
    # The key ARN names the key as well as its id.
    kms.enable_key_rotation(KeyId=arn, RotationPeriodInDays=91)
    assert kms.get_key_rotation_status(KeyId=arn)["RotationPeriodInDays"] == 91


def test_rotation_and_key_state(kms: BaseClient) -> None:
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.enable_key_rotation(KeyId=key_id)
    kms.disable_key(KeyId=key_id)
    expect_error("DisabledException", kms.enable_key_rotation, KeyId=key_id)
    expect_error("DisabledException", kms.disable_key_rotation, KeyId=key_id)
    expect_error("DisabledException", kms.rotate_key_on_demand, KeyId=key_id)
    # The status of a disabled key does not change.
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is True
    kms.enable_key(KeyId=key_id)
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    expect_error("KMSInvalidStateException", kms.enable_key_rotation, KeyId=key_id)
    expect_error("KMSInvalidStateException", kms.rotate_key_on_demand, KeyId=key_id)


def test_rotation_status_while_pending_deletion(kms: BaseClient) -> None:
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.enable_key_rotation(KeyId=key_id)
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is False
    kms.cancel_key_deletion(KeyId=key_id)
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is True


@pytest.mark.parametrize(
    ("spec", "usage"),
    [
        ("RSA_2048", "ENCRYPT_DECRYPT"),
        ("ECC_NIST_P256", "SIGN_VERIFY"),
        ("HMAC_256", "GENERATE_VERIFY_MAC"),
        ("ML_KEM_768", "ENCAPSULATE_DECAPSULATE"),
    ],
    ids=lambda v: str(v),
)
def test_only_symmetric_encryption_keys_rotate(kms: BaseClient, spec: str, usage: str) -> None:
    key_id = kms.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]["KeyId"]
    for call in (
        kms.enable_key_rotation,
        kms.disable_key_rotation,
        kms.get_key_rotation_status,
        kms.rotate_key_on_demand,
        kms.list_key_rotations,
    ):
        expect_error("UnsupportedOperationException", call, KeyId=key_id)


def test_external_keys_do_not_rotate_automatically(kms: BaseClient) -> None:
    key_id = external_key(kms)["KeyId"]
    expect_error("UnsupportedOperationException", kms.enable_key_rotation, KeyId=key_id)


# --- RotateKeyOnDemand / ListKeyRotations ----------------------------------------------------
def test_on_demand_rotations(kms: BaseClient) -> None:
    meta = kms.create_key(Description="rotates on demand")["KeyMetadata"]
    key_id, arn = meta["KeyId"], meta["Arn"]
    assert kms.list_key_rotations(KeyId=key_id)["Rotations"] == []
    kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=180)
    next_date = kms.get_key_rotation_status(KeyId=key_id)["NextRotationDate"]

    materials = [meta["CurrentKeyMaterialId"]]
    blobs = []
    for i in range(25):
        context = {"generation": str(i)}
        blobs.append(
            kms.encrypt(KeyId=key_id, Plaintext=f"secret {i}".encode(), EncryptionContext=context)[
                "CiphertextBlob"
            ]
        )
        assert kms.rotate_key_on_demand(KeyId=key_id)["KeyId"] == arn
        materials.append(current_material(kms, key_id))
        assert materials[-1] != materials[-2]
    assert len(set(materials)) == 26
    expect_error("LimitExceededException", kms.rotate_key_on_demand, KeyId=key_id)

    # On-demand rotations do not move the automatic schedule.
    status = kms.get_key_rotation_status(KeyId=key_id)
    assert status["NextRotationDate"] == next_date
    assert status["RotationPeriodInDays"] == 180

    # Every ciphertext decrypts, under the material that was current when it was made.
    for i, blob in enumerate(blobs):
        opened = kms.decrypt(CiphertextBlob=blob, EncryptionContext={"generation": str(i)})
        assert opened["Plaintext"] == f"secret {i}".encode()
        assert opened["KeyMaterialId"] == materials[i]
    # New encryptions use the newest.
    latest = kms.encrypt(KeyId=key_id, Plaintext=b"latest")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=latest)["KeyMaterialId"] == materials[-1]
    assert (
        kms.generate_data_key(KeyId=key_id, KeySpec="AES_128")["KeyMaterialId"] == (materials[-1])
    )
    assert (
        kms.generate_data_key_without_plaintext(KeyId=key_id, KeySpec="AES_256")["KeyMaterialId"]
        == materials[-1]
    )
    re_encrypted = kms.re_encrypt(
        CiphertextBlob=blobs[0],
        SourceEncryptionContext={"generation": "0"},
        DestinationKeyId=key_id,
    )
    assert re_encrypted["SourceKeyMaterialId"] == materials[0]
    assert re_encrypted["DestinationKeyMaterialId"] == materials[-1]
    assert kms.decrypt(CiphertextBlob=re_encrypted["CiphertextBlob"])["Plaintext"] == b"secret 0"

    # ListKeyRotations: the rotations, oldest first; the newest is current.
    listed = kms.list_key_rotations(KeyId=key_id)
    assert listed["Truncated"] is False
    rotations = listed["Rotations"]
    assert [r["KeyMaterialId"] for r in rotations] == materials[1:]
    assert {r["RotationType"] for r in rotations} == {"ON_DEMAND"}
    assert {r["KeyId"] for r in rotations} == {arn}
    assert [r["KeyMaterialState"] for r in rotations] == ["NON_CURRENT"] * 24 + ["CURRENT"]
    dates = [r["RotationDate"] for r in rotations]
    assert dates == sorted(dates)
    assert all(close_to(d, now_utc()) for d in dates)
    assert all("ImportState" not in r for r in rotations)

    # IncludeKeyMaterial=ALL_KEY_MATERIAL adds the first material.
    everything = kms.list_key_rotations(KeyId=key_id, IncludeKeyMaterial="ALL_KEY_MATERIAL")
    assert [r["KeyMaterialId"] for r in everything["Rotations"]] == materials
    first = everything["Rotations"][0]
    assert first["KeyMaterialState"] == "NON_CURRENT"
    assert "RotationType" not in first
    rotations_only = kms.list_key_rotations(KeyId=key_id, IncludeKeyMaterial="ROTATIONS_ONLY")
    assert rotations_only["Rotations"] == rotations

    # Pagination: Limit, Truncated, NextMarker, and the boto3 paginator.
    pages, marker = [], None
    while True:
        kwargs: dict[str, Any] = {"KeyId": key_id, "Limit": 7}
        if marker:
            kwargs["Marker"] = marker
        page = kms.list_key_rotations(**kwargs)
        pages.append([r["KeyMaterialId"] for r in page["Rotations"]])
        if not page["Truncated"]:
            assert "NextMarker" not in page
            break
        marker = page["NextMarker"]
    assert [len(p) for p in pages] == [7, 7, 7, 4]
    assert [m for p in pages for m in p] == materials[1:]
    paginated = [
        r["KeyMaterialId"]
        for page in kms.get_paginator("list_key_rotations").paginate(
            KeyId=key_id,
            IncludeKeyMaterial="ALL_KEY_MATERIAL",
            PaginationConfig={"PageSize": 5},
        )
        for r in page["Rotations"]
    ]
    assert paginated == materials
    expect_error(
        "InvalidMarkerException", kms.list_key_rotations, KeyId=key_id, Marker="not-a-marker"
    )


# --- the scheduler: automatic rotation and deletion -------------------------------------------
def test_automatic_rotation_and_deletion_through_the_scheduler(server_factory: Any) -> None:
    managed = server_factory.start()
    kms = managed.client()
    data_dir = managed.server.data_dir
    start = now_utc()

    yearly = kms.create_key(Description="yearly")["KeyMetadata"]
    kms.enable_key_rotation(KeyId=yearly["KeyId"])
    quarterly = kms.create_key(Description="quarterly")["KeyMetadata"]
    kms.enable_key_rotation(KeyId=quarterly["KeyId"], RotationPeriodInDays=90)
    disabled = kms.create_key(Description="disabled")["KeyMetadata"]
    kms.enable_key_rotation(KeyId=disabled["KeyId"])
    kms.disable_key(KeyId=disabled["KeyId"])
    still = kms.create_key(Description="no rotation")["KeyMetadata"]
    doomed = kms.create_key(Description="doomed")["KeyMetadata"]
    alias = unique_alias("doomed")
    kms.create_alias(AliasName=alias, TargetKeyId=doomed["KeyId"])
    kms.tag_resource(KeyId=doomed["KeyId"], Tags=[{"TagKey": "t", "TagValue": "v"}])
    deletion = kms.schedule_key_deletion(KeyId=doomed["KeyId"], PendingWindowInDays=7)
    assert close_to(deletion["DeletionDate"], start + 7 * DAY)
    # A deletion canceled in time never happens.
    saved = kms.create_key(Description="saved")["KeyMetadata"]
    kms.schedule_key_deletion(KeyId=saved["KeyId"], PendingWindowInDays=7)
    kms.cancel_key_deletion(KeyId=saved["KeyId"])
    blob = kms.encrypt(KeyId=yearly["KeyId"], Plaintext=b"year one", EncryptionContext={"y": "1"})[
        "CiphertextBlob"
    ]

    # A hundred days later: the 90-day key rotates, the doomed key is gone with its alias.
    report = run_scheduler(data_dir, start + 100 * DAY)
    assert report["Deleted"] == [doomed["Arn"]]
    assert report["Rotated"] == [quarterly["Arn"]]
    expect_error("NotFoundException", kms.describe_key, KeyId=doomed["KeyId"])
    expect_error("NotFoundException", kms.encrypt, KeyId=alias, Plaintext=b"x")
    assert alias not in {a["AliasName"] for a in kms.list_aliases()["Aliases"]}
    assert doomed["KeyId"] not in {k["KeyId"] for k in kms.list_keys()["Keys"]}
    assert kms.describe_key(KeyId=saved["KeyId"])["KeyMetadata"]["KeyState"] == "Disabled"
    assert current_material(kms, quarterly["KeyId"]) != quarterly["CurrentKeyMaterialId"]
    assert current_material(kms, yearly["KeyId"]) == yearly["CurrentKeyMaterialId"]

    # A year and a day later: the yearly key rotates (the 90-day one again), not the disabled one.
    year_later = start + 366 * DAY
    report = run_scheduler(data_dir, year_later)
    assert sorted(report["Rotated"]) == sorted([yearly["Arn"], quarterly["Arn"]])
    assert report["Deleted"] == []
    new_material = current_material(kms, yearly["KeyId"])
    assert new_material != yearly["CurrentKeyMaterialId"]
    assert current_material(kms, disabled["KeyId"]) == disabled["CurrentKeyMaterialId"]
    assert current_material(kms, still["KeyId"]) == still["CurrentKeyMaterialId"]

    opened = kms.decrypt(CiphertextBlob=blob, EncryptionContext={"y": "1"})
    assert opened["Plaintext"] == b"year one"
    assert opened["KeyMaterialId"] == yearly["CurrentKeyMaterialId"]
    fresh = kms.encrypt(KeyId=yearly["KeyId"], Plaintext=b"year two")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=fresh)["KeyMaterialId"] == new_material

    rotations = kms.list_key_rotations(KeyId=yearly["KeyId"])["Rotations"]
    assert len(rotations) == 1
    assert rotations[0]["RotationType"] == "AUTOMATIC"
    assert rotations[0]["KeyMaterialId"] == new_material
    assert rotations[0]["KeyMaterialState"] == "CURRENT"
    assert close_to(rotations[0]["RotationDate"], year_later)
    status = kms.get_key_rotation_status(KeyId=yearly["KeyId"])
    assert close_to(status["NextRotationDate"], year_later + 365 * DAY)
    # On-demand rotation after an automatic one leaves the schedule alone.
    kms.rotate_key_on_demand(KeyId=yearly["KeyId"])
    assert (
        kms.get_key_rotation_status(KeyId=yearly["KeyId"])["NextRotationDate"]
        == (status["NextRotationDate"])
    )

    # Running again at the same moment finds nothing to do.
    report = run_scheduler(data_dir, year_later)
    assert report["Rotated"] == [] and report["Deleted"] == []


# --- across a restart ----------------------------------------------------------------------------
@needs_openssl
def test_rotated_imported_and_multi_region_keys_survive_a_restart(
    server_factory: Any, tmp_path: Path
) -> None:
    first = server_factory.start()
    kms = first.client()
    west = first.client(region="us-west-2")

    rotated = kms.create_key(Description="rotated")["KeyMetadata"]
    kms.enable_key_rotation(KeyId=rotated["KeyId"], RotationPeriodInDays=100)
    rotated_blobs = []
    for i in range(3):
        rotated_blobs.append(
            (
                current_material(kms, rotated["KeyId"]),
                kms.encrypt(KeyId=rotated["KeyId"], Plaintext=f"gen {i}".encode())[
                    "CiphertextBlob"
                ],
            )
        )
        kms.rotate_key_on_demand(KeyId=rotated["KeyId"])
    rotated_status = kms.get_key_rotation_status(KeyId=rotated["KeyId"])
    rotated_current = current_material(kms, rotated["KeyId"])

    imported = external_key(kms)
    material = random_material(tmp_path, 32)
    valid_to = (now_utc() + 40 * DAY).replace(microsecond=0)
    imported_id = import_material(kms, imported["KeyId"], material, tmp_path, valid_to=valid_to)[
        "KeyMaterialId"
    ]
    imported_blob = kms.encrypt(KeyId=imported["KeyId"], Plaintext=b"imported")["CiphertextBlob"]
    hmac_key = external_key(kms, "HMAC_256", "GENERATE_VERIFY_MAC")
    import_material(kms, hmac_key["KeyId"], random_material(tmp_path, 32, "H.bin"), tmp_path)
    mac = kms.generate_mac(KeyId=hmac_key["KeyId"], Message=b"m", MacAlgorithm="HMAC_SHA_256")[
        "Mac"
    ]

    primary = kms.create_key(MultiRegion=True, Description="mrk")["KeyMetadata"]
    kms.replicate_key(KeyId=primary["KeyId"], ReplicaRegion="us-west-2")
    east_blob = kms.encrypt(KeyId=primary["KeyId"], Plaintext=b"east")["CiphertextBlob"]
    west_blob = west.encrypt(KeyId=primary["KeyId"], Plaintext=b"west")["CiphertextBlob"]
    signer = kms.create_key(MultiRegion=True, KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")[
        "KeyMetadata"
    ]
    kms.replicate_key(KeyId=signer["KeyId"], ReplicaRegion="us-west-2")
    signer_public = kms.get_public_key(KeyId=signer["KeyId"])["PublicKey"]

    assert first.stop() in GRACEFUL_EXITS
    second = server_factory.start(first.server.data_dir, account=first.account)
    kms = second.client()
    west = second.client(region="us-west-2")

    # The rotated key: every version still decrypts, the schedule is unchanged.
    for i, (material_id, blob) in enumerate(rotated_blobs):
        opened = kms.decrypt(CiphertextBlob=blob)
        assert opened["Plaintext"] == f"gen {i}".encode()
        assert opened["KeyMaterialId"] == material_id
    assert current_material(kms, rotated["KeyId"]) == rotated_current
    status = kms.get_key_rotation_status(KeyId=rotated["KeyId"])
    assert status["NextRotationDate"] == rotated_status["NextRotationDate"]
    assert status["RotationPeriodInDays"] == 100
    assert len(kms.list_key_rotations(KeyId=rotated["KeyId"])["Rotations"]) == 3
    kms.rotate_key_on_demand(KeyId=rotated["KeyId"])
    assert len(kms.list_key_rotations(KeyId=rotated["KeyId"])["Rotations"]) == 4

    # The imported keys.
    described = kms.describe_key(KeyId=imported["KeyId"])["KeyMetadata"]
    assert described["KeyState"] == "Enabled"
    assert described["ValidTo"] == valid_to
    assert described["CurrentKeyMaterialId"] == imported_id
    assert kms.decrypt(CiphertextBlob=imported_blob)["Plaintext"] == b"imported"
    assert kms.verify_mac(
        KeyId=hmac_key["KeyId"], Message=b"m", Mac=mac, MacAlgorithm="HMAC_SHA_256"
    )["MacValid"]
    kms.delete_imported_key_material(KeyId=imported["KeyId"])
    expect_error("KMSInvalidStateException", kms.decrypt, CiphertextBlob=imported_blob)
    assert import_material(kms, imported["KeyId"], material, tmp_path)["KeyMaterialId"] == (
        imported_id
    )
    assert kms.decrypt(CiphertextBlob=imported_blob)["Plaintext"] == b"imported"

    # The multi-Region keys: each Region decrypts the other's ciphertexts.
    assert west.decrypt(CiphertextBlob=east_blob)["Plaintext"] == b"east"
    assert kms.decrypt(CiphertextBlob=west_blob)["Plaintext"] == b"west"
    replica = west.describe_key(KeyId=primary["KeyId"])["KeyMetadata"]
    assert replica["MultiRegionConfiguration"]["MultiRegionKeyType"] == "REPLICA"
    assert replica["KeyState"] == "Enabled"
    kms.rotate_key_on_demand(KeyId=primary["KeyId"])
    assert current_material(kms, primary["KeyId"]) == current_material(west, primary["KeyId"])
    assert west.get_public_key(KeyId=signer["KeyId"])["PublicKey"] == signer_public
    signature = west.sign(KeyId=signer["KeyId"], Message=b"m", SigningAlgorithm="ECDSA_SHA_256")[
        "Signature"
    ]
    assert kms.verify(
        KeyId=signer["KeyId"], Message=b"m", Signature=signature, SigningAlgorithm="ECDSA_SHA_256"
    )["SignatureValid"]
