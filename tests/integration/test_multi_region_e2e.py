"""Issue 5 acceptance, multi-Region keys, through boto3 clients of two (or three) Regions of one
server: CreateKey MultiRegion=true, ReplicateKey, cross-Region decryption, DescribeKey's
MultiRegionConfiguration, UpdatePrimaryRegion, PendingReplicaDeletion, rotation driven from the
primary, and imported material in a key set."""

from __future__ import annotations

import datetime
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from tests.conformance import expect_error, unique_alias
from tests.integration.test_import_e2e import (
    DAY,
    import_material,
    needs_openssl,
    now_utc,
    random_material,
    run_scheduler,
)

EAST, WEST, THIRD = "us-east-1", "us-west-2", "eu-central-1"
SETTLE_SECONDS = 5.0


@pytest.fixture(scope="module")
def west(server: Any) -> BaseClient:
    client: BaseClient = server.client(region=WEST)
    return client


@pytest.fixture(scope="module")
def third(server: Any) -> BaseClient:
    client: BaseClient = server.client(region=THIRD)
    return client


def describe(client: BaseClient, key_id: str) -> dict[str, Any]:
    meta: dict[str, Any] = client.describe_key(KeyId=key_id)["KeyMetadata"]
    return meta


def wait_for(client: BaseClient, key_id: str, **expected: Any) -> dict[str, Any]:
    """DescribeKey until the members (KeyState, or MultiRegionKeyType via ``key_type``) settle:
    AWS passes through transient Creating/Updating states."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        meta = describe(client, key_id)
        got = {
            "KeyState": meta["KeyState"],
            "key_type": meta.get("MultiRegionConfiguration", {}).get("MultiRegionKeyType"),
        }
        if all(got[k] == v for k, v in expected.items()):
            return meta
        if time.monotonic() > deadline:
            raise AssertionError(f"{key_id} did not reach {expected}: {got}")
        time.sleep(0.1)


def multi_region_key(
    kms: BaseClient, west: BaseClient, **create: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(primary KeyMetadata in us-east-1, replica KeyMetadata in us-west-2), both Enabled."""
    primary: dict[str, Any] = kms.create_key(MultiRegion=True, **create)["KeyMetadata"]
    kms.replicate_key(KeyId=primary["KeyId"], ReplicaRegion=WEST)
    replica = wait_for(west, primary["KeyId"], KeyState=primary["KeyState"])
    return primary, replica


# --- CreateKey, ReplicateKey, DescribeKey ----------------------------------------------------
def test_create_and_replicate(
    kms: BaseClient, west: BaseClient, third: BaseClient, server: Any
) -> None:
    primary = kms.create_key(MultiRegion=True, Description="primary")["KeyMetadata"]
    key_id = primary["KeyId"]
    assert re.fullmatch(r"mrk-[0-9a-f]{32}", key_id), key_id
    assert primary["MultiRegion"] is True
    assert primary["Arn"] == server.key_arn(key_id, EAST)
    assert primary["MultiRegionConfiguration"] == {
        "MultiRegionKeyType": "PRIMARY",
        "PrimaryKey": {"Arn": primary["Arn"], "Region": EAST},
        "ReplicaKeys": [],
    }
    single = kms.create_key()["KeyMetadata"]
    assert single["MultiRegion"] is False
    assert "MultiRegionConfiguration" not in single
    assert not single["KeyId"].startswith("mrk-")

    replicated = kms.replicate_key(
        KeyId=primary["Arn"],
        ReplicaRegion=WEST,
        Description="replica",
        Tags=[{"TagKey": "region", "TagValue": "west"}],
    )
    replica = replicated["ReplicaKeyMetadata"]
    west_arn = server.key_arn(key_id, WEST)
    assert replica["KeyId"] == key_id
    assert replica["Arn"] == west_arn
    assert replica["Description"] == "replica"
    assert replica["KeyState"] in ("Creating", "Enabled")
    assert replica["MultiRegionConfiguration"]["MultiRegionKeyType"] == "REPLICA"
    assert replica["MultiRegionConfiguration"]["PrimaryKey"] == {
        "Arn": primary["Arn"],
        "Region": EAST,
    }
    assert json.loads(replicated["ReplicaPolicy"])["Statement"]
    assert replicated["ReplicaTags"] == [{"TagKey": "region", "TagValue": "west"}]

    replica = wait_for(west, key_id, KeyState="Enabled")
    for member in ("KeySpec", "KeyUsage", "Origin", "MultiRegion", "EncryptionAlgorithms"):
        assert replica[member] == primary[member], member
    assert replica["CurrentKeyMaterialId"] == primary["CurrentKeyMaterialId"]
    config = describe(kms, key_id)["MultiRegionConfiguration"]
    assert config["MultiRegionKeyType"] == "PRIMARY"
    assert config["ReplicaKeys"] == [{"Arn": west_arn, "Region": WEST}]
    assert describe(west, key_id)["MultiRegionConfiguration"]["ReplicaKeys"] == [
        {"Arn": west_arn, "Region": WEST}
    ]

    # Tags and aliases belong to each Region's key.
    assert west.list_resource_tags(KeyId=key_id)["Tags"] == replicated["ReplicaTags"]
    assert kms.list_resource_tags(KeyId=key_id)["Tags"] == []
    alias = unique_alias("replica")
    west.create_alias(AliasName=alias, TargetKeyId=key_id)
    assert describe(west, alias)["Arn"] == west_arn
    expect_error("NotFoundException", kms.describe_key, KeyId=alias)
    assert key_id in {k["KeyId"] for k in west.list_keys(Limit=1000)["Keys"]}

    # A ciphertext from each Region decrypts in the other, under the same material.
    context = {"dataset": "orders"}
    east_blob = kms.encrypt(KeyId=key_id, Plaintext=b"from east", EncryptionContext=context)
    west_blob = west.encrypt(KeyId=alias, Plaintext=b"from west", EncryptionContext=context)
    assert west_blob["KeyId"] == west_arn
    in_west = west.decrypt(CiphertextBlob=east_blob["CiphertextBlob"], EncryptionContext=context)
    assert in_west["Plaintext"] == b"from east"
    assert in_west["KeyId"] == west_arn
    assert in_west["KeyMaterialId"] == primary["CurrentKeyMaterialId"]
    in_east = kms.decrypt(CiphertextBlob=west_blob["CiphertextBlob"], EncryptionContext=context)
    assert in_east["Plaintext"] == b"from west"
    assert in_east["KeyId"] == primary["Arn"]
    expect_error(
        "InvalidCiphertextException", west.decrypt, CiphertextBlob=east_blob["CiphertextBlob"]
    )
    data_key = west.generate_data_key(KeyId=key_id, KeySpec="AES_256")
    assert (
        kms.decrypt(CiphertextBlob=data_key["CiphertextBlob"])["Plaintext"]
        == (data_key["Plaintext"])
    )
    re_encrypted = west.re_encrypt(
        CiphertextBlob=east_blob["CiphertextBlob"],
        SourceEncryptionContext=context,
        DestinationKeyId=key_id,
    )
    assert re_encrypted["SourceKeyId"] == west_arn
    assert kms.decrypt(CiphertextBlob=re_encrypted["CiphertextBlob"])["Plaintext"] == b"from east"

    # A third Region.
    kms.replicate_key(KeyId=key_id, ReplicaRegion=THIRD)
    wait_for(third, key_id, KeyState="Enabled")
    assert (
        third.decrypt(CiphertextBlob=west_blob["CiphertextBlob"], EncryptionContext=context)[
            "Plaintext"
        ]
        == b"from west"
    )
    replicas = describe(kms, key_id)["MultiRegionConfiguration"]["ReplicaKeys"]
    assert sorted(r["Region"] for r in replicas) == [THIRD, WEST]

    # What ReplicateKey refuses.
    expect_error("AlreadyExistsException", kms.replicate_key, KeyId=key_id, ReplicaRegion=WEST)
    expect_error("ValidationException", kms.replicate_key, KeyId=key_id, ReplicaRegion=EAST)
    expect_error(
        "UnsupportedOperationException", west.replicate_key, KeyId=key_id, ReplicaRegion=THIRD
    )
    expect_error(
        "UnsupportedOperationException",
        kms.replicate_key,
        KeyId=single["KeyId"],
        ReplicaRegion=WEST,
    )
    disabled = kms.create_key(MultiRegion=True)["KeyMetadata"]["KeyId"]
    kms.disable_key(KeyId=disabled)
    expect_error("DisabledException", kms.replicate_key, KeyId=disabled, ReplicaRegion=WEST)


def test_asymmetric_and_hmac_multi_region_keys(kms: BaseClient, west: BaseClient) -> None:
    signer, _ = multi_region_key(kms, west, KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
    key_id = signer["KeyId"]
    assert (
        west.get_public_key(KeyId=key_id)["PublicKey"]
        == (kms.get_public_key(KeyId=key_id)["PublicKey"])
    )
    for signing, verifying in ((kms, west), (west, kms)):
        signature = signing.sign(KeyId=key_id, Message=b"m", SigningAlgorithm="ECDSA_SHA_256")[
            "Signature"
        ]
        assert verifying.verify(
            KeyId=key_id, Message=b"m", Signature=signature, SigningAlgorithm="ECDSA_SHA_256"
        )["SignatureValid"]

    mac_key, _ = multi_region_key(kms, west, KeySpec="HMAC_384", KeyUsage="GENERATE_VERIFY_MAC")
    east_mac = kms.generate_mac(KeyId=mac_key["KeyId"], Message=b"m", MacAlgorithm="HMAC_SHA_384")
    west_mac = west.generate_mac(KeyId=mac_key["KeyId"], Message=b"m", MacAlgorithm="HMAC_SHA_384")
    assert east_mac["Mac"] == west_mac["Mac"]

    rsa_key, _ = multi_region_key(kms, west, KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")
    blob = kms.encrypt(
        KeyId=rsa_key["KeyId"], Plaintext=b"rsa", EncryptionAlgorithm="RSAES_OAEP_SHA_256"
    )["CiphertextBlob"]
    assert (
        west.decrypt(
            KeyId=rsa_key["KeyId"], CiphertextBlob=blob, EncryptionAlgorithm="RSAES_OAEP_SHA_256"
        )["Plaintext"]
        == b"rsa"
    )


# --- rotation -------------------------------------------------------------------------------------
def test_rotation_is_driven_from_the_primary(
    kms: BaseClient, west: BaseClient, third: BaseClient
) -> None:
    primary, _ = multi_region_key(kms, west)
    key_id = primary["KeyId"]
    for call in (west.enable_key_rotation, west.disable_key_rotation, west.rotate_key_on_demand):
        expect_error("UnsupportedOperationException", call, KeyId=key_id)

    first_material = primary["CurrentKeyMaterialId"]
    west_before = west.encrypt(KeyId=key_id, Plaintext=b"before")["CiphertextBlob"]
    kms.rotate_key_on_demand(KeyId=key_id)
    new_material = describe(kms, key_id)["CurrentKeyMaterialId"]
    assert new_material != first_material
    assert describe(west, key_id)["CurrentKeyMaterialId"] == new_material

    west_after = west.encrypt(KeyId=key_id, Plaintext=b"after")["CiphertextBlob"]
    for client in (kms, west):
        before = client.decrypt(CiphertextBlob=west_before)
        assert (before["Plaintext"], before["KeyMaterialId"]) == (b"before", first_material)
        after = client.decrypt(CiphertextBlob=west_after)
        assert (after["Plaintext"], after["KeyMaterialId"]) == (b"after", new_material)
    west_rotations = west.list_key_rotations(KeyId=key_id)["Rotations"]
    assert [r["KeyMaterialId"] for r in west_rotations] == [new_material]
    assert west_rotations[0]["KeyMaterialState"] == "CURRENT"

    # A replica made after the rotation carries every material version.
    kms.replicate_key(KeyId=key_id, ReplicaRegion=THIRD)
    wait_for(third, key_id, KeyState="Enabled")
    assert third.decrypt(CiphertextBlob=west_before)["KeyMaterialId"] == first_material
    assert describe(third, key_id)["CurrentKeyMaterialId"] == new_material


def test_replica_reports_the_primarys_rotation_status(kms: BaseClient, west: BaseClient) -> None:
    primary, _ = multi_region_key(kms, west)
    kms.enable_key_rotation(KeyId=primary["KeyId"], RotationPeriodInDays=200)
    status = west.get_key_rotation_status(KeyId=primary["KeyId"])
    assert status["KeyRotationEnabled"] is True
    assert status["RotationPeriodInDays"] == 200


# --- UpdatePrimaryRegion ----------------------------------------------------------------------
def test_update_primary_region(kms: BaseClient, west: BaseClient, server: Any) -> None:
    primary, _ = multi_region_key(kms, west)
    key_id = primary["KeyId"]
    kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=150)
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"moved")["CiphertextBlob"]

    kms.update_primary_region(KeyId=key_id, PrimaryRegion=WEST)
    new_primary = wait_for(west, key_id, KeyState="Enabled", key_type="PRIMARY")
    old_primary = wait_for(kms, key_id, KeyState="Enabled", key_type="REPLICA")
    west_arn, east_arn = server.key_arn(key_id, WEST), server.key_arn(key_id, EAST)
    assert new_primary["MultiRegionConfiguration"]["PrimaryKey"] == {
        "Arn": west_arn,
        "Region": WEST,
    }
    assert new_primary["MultiRegionConfiguration"]["ReplicaKeys"] == [
        {"Arn": east_arn, "Region": EAST}
    ]
    assert old_primary["MultiRegionConfiguration"]["PrimaryKey"] == {
        "Arn": west_arn,
        "Region": WEST,
    }

    # Rotation settings moved with the primary; only the new primary manages them.
    status = west.get_key_rotation_status(KeyId=key_id)
    assert status["KeyRotationEnabled"] is True
    assert status["RotationPeriodInDays"] == 150
    expect_error("UnsupportedOperationException", kms.enable_key_rotation, KeyId=key_id)
    expect_error("UnsupportedOperationException", kms.rotate_key_on_demand, KeyId=key_id)
    west.rotate_key_on_demand(KeyId=key_id)
    assert (
        describe(kms, key_id)["CurrentKeyMaterialId"]
        == (describe(west, key_id)["CurrentKeyMaterialId"])
    )
    assert west.decrypt(CiphertextBlob=blob)["Plaintext"] == b"moved"
    # The old primary is a replica now: it can neither replicate nor move the primary.
    expect_error(
        "UnsupportedOperationException", kms.update_primary_region, KeyId=key_id, PrimaryRegion=WEST
    )
    expect_error(
        "UnsupportedOperationException", kms.replicate_key, KeyId=key_id, ReplicaRegion=THIRD
    )
    # And back again.
    west.update_primary_region(KeyId=key_id, PrimaryRegion=EAST)
    wait_for(kms, key_id, KeyState="Enabled", key_type="PRIMARY")
    wait_for(west, key_id, KeyState="Enabled", key_type="REPLICA")
    # A single-Region key has no primary Region to move.
    single = kms.create_key()["KeyMetadata"]["KeyId"]
    expect_error(
        "UnsupportedOperationException",
        kms.update_primary_region,
        KeyId=single,
        PrimaryRegion=WEST,
    )


def test_update_primary_region_needs_an_enabled_replica(kms: BaseClient, west: BaseClient) -> None:
    primary, _ = multi_region_key(kms, west)
    west.disable_key(KeyId=primary["KeyId"])
    with pytest.raises(ClientError) as caught:
        kms.update_primary_region(KeyId=primary["KeyId"], PrimaryRegion=WEST)
    assert caught.value.response["Error"]["Code"] in (
        "DisabledException",
        "KMSInvalidStateException",
    )
    assert describe(kms, primary["KeyId"])["MultiRegionConfiguration"]["MultiRegionKeyType"] == (
        "PRIMARY"
    )


# --- deletion -------------------------------------------------------------------------------
def test_primary_with_replicas_waits_in_pending_replica_deletion(
    kms: BaseClient, west: BaseClient
) -> None:
    primary, _ = multi_region_key(kms, west)
    key_id = primary["KeyId"]
    scheduled = kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    assert scheduled["KeyState"] == "PendingReplicaDeletion"
    assert scheduled["PendingWindowInDays"] == 7
    assert "DeletionDate" not in scheduled
    meta = describe(kms, key_id)
    assert meta["KeyState"] == "PendingReplicaDeletion"
    assert meta["Enabled"] is False
    assert "DeletionDate" not in meta
    expect_error("KMSInvalidStateException", kms.encrypt, KeyId=key_id, Plaintext=b"x")
    expect_error(
        "KMSInvalidStateException", kms.schedule_key_deletion, KeyId=key_id, PendingWindowInDays=7
    )
    # The replica works on its own.
    blob = west.encrypt(KeyId=key_id, Plaintext=b"replica")["CiphertextBlob"]
    assert west.decrypt(CiphertextBlob=blob)["Plaintext"] == b"replica"

    assert kms.cancel_key_deletion(KeyId=key_id)["KeyId"] == primary["Arn"]
    assert describe(kms, key_id)["KeyState"] == "Disabled"
    kms.enable_key(KeyId=key_id)
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"replica"


def test_primary_is_deleted_after_its_last_replica(server_factory: Any) -> None:
    managed = server_factory.start()
    kms = managed.client()
    west = managed.client(region=WEST)
    primary, _ = multi_region_key(kms, west)
    key_id = primary["KeyId"]
    start = now_utc()
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=10)
    replica_deletion = west.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    assert replica_deletion["KeyState"] == "PendingDeletion"
    assert "DeletionDate" in replica_deletion

    report = run_scheduler(managed.server.data_dir, start + 8 * DAY)
    assert report["Deleted"] == [managed.server.key_arn(key_id, WEST)]
    expect_error("NotFoundException", west.describe_key, KeyId=key_id)
    meta = describe(kms, key_id)
    assert meta["KeyState"] == "PendingDeletion"
    assert meta["MultiRegionConfiguration"]["ReplicaKeys"] == []
    # The primary's own window starts when the last replica is gone.
    expected = start + 8 * DAY + 10 * DAY
    assert abs(meta["DeletionDate"] - expected) < datetime.timedelta(minutes=2)

    report = run_scheduler(managed.server.data_dir, start + 19 * DAY)
    assert report["Deleted"] == [primary["Arn"]]
    expect_error("NotFoundException", kms.describe_key, KeyId=key_id)


# --- imported material in a key set ------------------------------------------------------------
@needs_openssl
def test_multi_region_key_with_imported_material(
    kms: BaseClient, west: BaseClient, tmp_path: Path
) -> None:
    """ImportKeyMaterial documentation: import into the primary (NEW_KEY_MATERIAL), then the same
    material into each replica with ImportType EXISTING_KEY_MATERIAL."""
    primary = kms.create_key(MultiRegion=True, Origin="EXTERNAL")["KeyMetadata"]
    key_id = primary["KeyId"]
    assert primary["KeyState"] == "PendingImport"
    material = random_material(tmp_path, 32)
    imported = import_material(kms, key_id, material, tmp_path, ImportType="NEW_KEY_MATERIAL")
    kms.replicate_key(KeyId=key_id, ReplicaRegion=WEST)
    replica = wait_for(west, key_id, KeyState="PendingImport")
    assert replica["Origin"] == "EXTERNAL"
    expect_error("KMSInvalidStateException", west.encrypt, KeyId=key_id, Plaintext=b"x")
    # The replica takes only the key set's material.
    other = random_material(tmp_path, 32, "Other.bin")
    expect_error(
        "IncorrectKeyMaterialException",
        import_material,
        west,
        key_id,
        other,
        tmp_path,
        ImportType="EXISTING_KEY_MATERIAL",
    )
    same = import_material(
        west,
        key_id,
        material,
        tmp_path,
        algorithm="RSA_AES_KEY_WRAP_SHA_256",
        ImportType="EXISTING_KEY_MATERIAL",
    )
    assert same["KeyMaterialId"] == imported["KeyMaterialId"]
    replica = describe(west, key_id)
    assert replica["KeyState"] == "Enabled"
    assert replica["CurrentKeyMaterialId"] == imported["KeyMaterialId"]
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"byok everywhere")["CiphertextBlob"]
    assert west.decrypt(CiphertextBlob=blob)["Plaintext"] == b"byok everywhere"
    west_blob = west.encrypt(KeyId=key_id, Plaintext=b"and back")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=west_blob)["Plaintext"] == b"and back"
    # Material is deleted per Region.
    west.delete_imported_key_material(KeyId=key_id)
    assert describe(west, key_id)["KeyState"] == "PendingImport"
    assert describe(kms, key_id)["KeyState"] == "Enabled"
    assert kms.decrypt(CiphertextBlob=west_blob)["Plaintext"] == b"and back"


@needs_openssl
def test_replica_import_without_import_type(
    kms: BaseClient, west: BaseClient, tmp_path: Path
) -> None:
    primary = kms.create_key(MultiRegion=True, Origin="EXTERNAL")["KeyMetadata"]
    material = random_material(tmp_path, 32)
    imported = import_material(kms, primary["KeyId"], material, tmp_path)
    kms.replicate_key(KeyId=primary["KeyId"], ReplicaRegion=WEST)
    wait_for(west, primary["KeyId"], KeyState="PendingImport")
    same = import_material(west, primary["KeyId"], material, tmp_path)
    assert same["KeyMaterialId"] == imported["KeyMaterialId"]
