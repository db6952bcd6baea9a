"""Behaviour pinned to AWS itself (issue #17): each test states what AWS answered, as recorded
from the real service by a suite run against it or as written in the AWS API reference, and
checks that openkms answers the same, to the letter where AWS's text is known.

The wire-format tests speak raw HTTP, because boto3 turns an absent ``message`` member and an
empty one into the same thing."""

from __future__ import annotations

import base64
import io
import json
import os
import re
from collections.abc import Callable
from typing import Any

import pytest
from botocore.client import BaseClient
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from tests.conformance import RawResponse, expect_error, kms_headers, send, sign, unique_alias
from tests.conftest import Server

OTHER_REGION = "eu-west-1"


# --- helpers -------------------------------------------------------------------------------------
@pytest.fixture
def raw(server: Server) -> Callable[[str, dict[str, Any]], RawResponse]:
    """POSTs ``TrentService.<operation>`` with a JSON body, signed for the session account."""

    def call(operation: str, body: dict[str, Any]) -> RawResponse:
        url = server.endpoint + "/"
        data = json.dumps(body).encode()
        headers = sign(
            url,
            data,
            kms_headers(operation),
            access_key_id=server.access_key_id,
            secret_access_key=server.secret_access_key,
        )
        return send(url, data, headers)

    return call


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def assert_no_message(resp: RawResponse, code: str) -> None:
    """The error body is exactly ``{"__type": code}``: no ``message`` member, not an empty one."""
    assert resp.status == 400, resp.body
    assert resp.error_type == code
    assert resp.json == {"__type": code}, resp.body


def new_key(kms: BaseClient, spec: str = "SYMMETRIC_DEFAULT", usage: str = "", **extra: Any) -> Any:
    kwargs: dict[str, Any] = {"KeySpec": spec, **extra}
    if usage:
        kwargs["KeyUsage"] = usage
    return kms.create_key(**kwargs)["KeyMetadata"]


def external_key(kms: BaseClient) -> Any:
    return kms.create_key(Origin="EXTERNAL")["KeyMetadata"]


def import_material(kms: BaseClient, key_id: str, material: bytes, **extra: Any) -> dict[str, Any]:
    """GetParametersForImport (RSA_2048, RSAES_OAEP_SHA_256), wrap, ImportKeyMaterial."""
    params = kms.get_parameters_for_import(
        KeyId=key_id, WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048"
    )
    public = serialization.load_der_public_key(params["PublicKey"])
    assert isinstance(public, RSAPublicKey)
    wrapped = public.encrypt(
        material,
        padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None),
    )
    if "ExpirationModel" not in extra:
        extra["ExpirationModel"] = "KEY_MATERIAL_DOES_NOT_EXPIRE"
    response: dict[str, Any] = kms.import_key_material(
        KeyId=key_id, ImportToken=params["ImportToken"], EncryptedKeyMaterial=wrapped, **extra
    )
    return response


def non_symmetric_specs(kms: BaseClient) -> list[str]:
    specs = kms.meta.service_model.shape_for("KeySpec").enum
    return [s for s in specs if s != "SYMMETRIC_DEFAULT"]


# --- 1. wire format ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "case",
    [
        "decrypt-invalid-ciphertext",
        "verify-invalid-signature",
        "verify-mac-invalid-mac",
        "rotate-on-demand-asymmetric",
        "derive-shared-secret-invalid-public-key",
    ],
)
def test_errors_without_a_message_have_no_message_member(
    kms: BaseClient, raw: Callable[[str, dict[str, Any]], RawResponse], case: str
) -> None:
    """AWS sends no ``message`` member at all when it has no message:
    ``{"__type":"KMSInvalidSignatureException"}``, likewise for InvalidCiphertextException and
    KMSInvalidMacException, for UnsupportedOperationException from RotateKeyOnDemand on an
    asymmetric key, and for ValidationException from DeriveSharedSecret with an invalid public
    key. openkms used to send ``"message": ""``."""
    if case == "decrypt-invalid-ciphertext":
        key = new_key(kms)
        blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"data")["CiphertextBlob"]
        tampered = blob[:-1] + bytes([blob[-1] ^ 1])
        assert_no_message(
            raw("Decrypt", {"CiphertextBlob": b64(tampered)}), "InvalidCiphertextException"
        )
    elif case == "verify-invalid-signature":
        key = new_key(kms, "ECC_NIST_P256", "SIGN_VERIFY")
        body = {
            "KeyId": key["KeyId"],
            "Message": b64(b"message"),
            "Signature": b64(b"\x30\x06\x02\x01\x01\x02\x01\x01"),
            "SigningAlgorithm": "ECDSA_SHA_256",
        }
        assert_no_message(raw("Verify", body), "KMSInvalidSignatureException")
    elif case == "verify-mac-invalid-mac":
        key = new_key(kms, "HMAC_256", "GENERATE_VERIFY_MAC")
        body = {
            "KeyId": key["KeyId"],
            "Message": b64(b"message"),
            "Mac": b64(bytes(32)),
            "MacAlgorithm": "HMAC_SHA_256",
        }
        assert_no_message(raw("VerifyMac", body), "KMSInvalidMacException")
    elif case == "rotate-on-demand-asymmetric":
        key = new_key(kms, "RSA_2048", "SIGN_VERIFY")
        assert_no_message(
            raw("RotateKeyOnDemand", {"KeyId": key["KeyId"]}), "UnsupportedOperationException"
        )
    else:
        key = new_key(kms, "ECC_NIST_P256", "KEY_AGREEMENT")
        body = {
            "KeyId": key["KeyId"],
            "KeyAgreementAlgorithm": "ECDH",
            "PublicKey": b64(b"this is not a public key"),
        }
        assert_no_message(raw("DeriveSharedSecret", body), "ValidationException")


# --- 2, 3. tags ----------------------------------------------------------------------------------
def test_duplicate_tag_keys_are_refused(kms: BaseClient) -> None:
    """TagResource (and CreateKey) with the same TagKey twice: AWS answers TagException
    "Duplicate tag keys" rather than keeping one of the values."""
    tags = [{"TagKey": "team", "TagValue": "a"}, {"TagKey": "team", "TagValue": "b"}]
    key = new_key(kms)
    expect_error(
        "TagException", kms.tag_resource, KeyId=key["KeyId"], Tags=tags,
        message="Duplicate tag keys",
    )  # fmt: skip
    assert kms.list_resource_tags(KeyId=key["KeyId"])["Tags"] == []
    expect_error("TagException", kms.create_key, Tags=tags, message="Duplicate tag keys")


def test_create_key_with_more_than_50_tags(kms: BaseClient) -> None:
    """CreateKey with 51 tags: AWS answers TagException "Too many tags" (not
    LimitExceededException); 50 are accepted."""
    tags = [{"TagKey": f"k{i}", "TagValue": "v"} for i in range(51)]
    expect_error("TagException", kms.create_key, Tags=tags, message="Too many tags")
    key = kms.create_key(Tags=tags[:50])["KeyMetadata"]
    assert len(kms.list_resource_tags(KeyId=key["KeyId"], Limit=50)["Tags"]) == 50


# --- 4. ReEncrypt --------------------------------------------------------------------------------
def test_re_encrypt_checks_the_source_before_the_destination(kms: BaseClient) -> None:
    """ReEncrypt whose ciphertext the given SourceKeyId cannot decrypt: AWS answers
    IncorrectKeyException "The key ID in the request does not identify a CMK that can perform
    this operation." before it looks at the destination key (here one whose usage cannot
    encrypt)."""
    encrypting = new_key(kms)
    wrong_source = new_key(kms)
    mac_key = new_key(kms, "HMAC_256", "GENERATE_VERIFY_MAC")
    blob = kms.encrypt(KeyId=encrypting["KeyId"], Plaintext=b"data")["CiphertextBlob"]
    expect_error(
        "IncorrectKeyException",
        kms.re_encrypt,
        CiphertextBlob=blob,
        SourceKeyId=wrong_source["KeyId"],
        DestinationKeyId=mac_key["KeyId"],
        message=(
            "The key ID in the request does not identify a CMK that can perform this operation."
        ),
    )
    # With the right source, the destination's usage is what fails.
    expect_error(
        "InvalidKeyUsageException",
        kms.re_encrypt,
        CiphertextBlob=blob,
        SourceKeyId=encrypting["KeyId"],
        DestinationKeyId=mac_key["KeyId"],
    )


# --- 5. CreateKey needs KeyUsage ---------------------------------------------------------------
def test_create_key_requires_key_usage_except_for_symmetric_keys(kms: BaseClient) -> None:
    """CreateKey with any KeySpec but SYMMETRIC_DEFAULT and no KeyUsage: AWS answers
    ValidationException "You must specify a KeyUsage value for all KMS keys except for symmetric
    encryption keys." — also for specs that allow a single usage (HMAC, ECC_SECG_P256K1, ML-DSA,
    ...), which openkms used to fill in."""
    message = (
        "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys."
    )
    for spec in non_symmetric_specs(kms):
        expect_error("ValidationException", kms.create_key, KeySpec=spec, message=message)
    assert new_key(kms)["KeyUsage"] == "ENCRYPT_DECRYPT"


# --- 6. RotateKeyOnDemand: state before spec ---------------------------------------------------
def test_rotate_on_demand_checks_the_state_before_the_key_spec(kms: BaseClient) -> None:
    """RotateKeyOnDemand on a disabled RSA key: AWS answers DisabledException "<arn> is
    disabled." (the key state first), not UnsupportedOperationException for the spec."""
    key = new_key(kms, "RSA_2048", "ENCRYPT_DECRYPT")
    kms.disable_key(KeyId=key["KeyId"])
    expect_error(
        "DisabledException", kms.rotate_key_on_demand, KeyId=key["KeyId"],
        message=f"{key['Arn']} is disabled.",
    )  # fmt: skip


# --- 7, 8, 9, 16. imported key material ----------------------------------------------------------
def test_import_new_material_while_another_is_pending_rotation(kms: BaseClient) -> None:
    """ImportKeyMaterial with ImportType=NEW_KEY_MATERIAL while another material waits for
    rotation: AWS answers KMSInvalidStateException "New key material (id: X) cannot be imported
    into KMS key <key-id>, because another key material (id: Y) is pending rotation."."""
    key = external_key(kms)
    first = import_material(kms, key["KeyId"], os.urandom(32))
    second = import_material(kms, key["KeyId"], os.urandom(32), ImportType="NEW_KEY_MATERIAL")
    error = expect_error(
        "KMSInvalidStateException",
        import_material,
        kms,
        key["KeyId"],
        os.urandom(32),
        ImportType="NEW_KEY_MATERIAL",
    )
    message = error.response["Error"]["Message"]
    match = re.fullmatch(
        r"New key material \(id: ([0-9a-f]{64})\) cannot be imported into KMS key "
        + re.escape(key["KeyId"])
        + r", because another key material \(id: "
        + re.escape(second["KeyMaterialId"])
        + r"\) is pending rotation\.",
        message,
    )
    assert match is not None, message
    assert match.group(1) not in (first["KeyMaterialId"], second["KeyMaterialId"])


def test_rotate_on_demand_with_no_material_pending_rotation(kms: BaseClient) -> None:
    """RotateKeyOnDemand on a key with imported material and nothing imported as
    NEW_KEY_MATERIAL: AWS answers KMSInvalidStateException "No available key material pending
    rotation for the key: <arn>."."""
    key = external_key(kms)
    import_material(kms, key["KeyId"], os.urandom(32))
    expect_error(
        "KMSInvalidStateException", kms.rotate_key_on_demand, KeyId=key["KeyId"],
        message=f"No available key material pending rotation for the key: {key['Arn']}.",
    )  # fmt: skip


def test_describe_key_after_delete_imported_key_material(kms: BaseClient) -> None:
    """After DeleteImportedKeyMaterial AWS's DescribeKey still shows CurrentKeyMaterialId (the
    key is PendingImport); re-importing the same material makes the key usable again."""
    key = external_key(kms)
    material = os.urandom(32)
    imported = import_material(kms, key["KeyId"], material)
    kms.delete_imported_key_material(KeyId=key["KeyId"])
    meta = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
    assert meta["KeyState"] == "PendingImport"
    assert meta["CurrentKeyMaterialId"] == imported["KeyMaterialId"]
    import_material(kms, key["KeyId"], material)
    meta = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
    assert (meta["KeyState"], meta["CurrentKeyMaterialId"]) == (
        "Enabled",
        imported["KeyMaterialId"],
    )


def test_import_expiring_material_without_valid_to(kms: BaseClient) -> None:
    """ImportKeyMaterial with ExpirationModel KEY_MATERIAL_EXPIRES and no ValidTo: AWS's text is
    "A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES" (lower-case
    validTo, no full stop)."""
    key = external_key(kms)
    expect_error(
        "ValidationException", import_material, kms, key["KeyId"], os.urandom(32),
        ExpirationModel="KEY_MATERIAL_EXPIRES",
        message="A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES",
    )  # fmt: skip


# --- 10, 14. ReplicateKey -----------------------------------------------------------------------
def test_replicate_key_response(kms: BaseClient, server: Server) -> None:
    """ReplicateKey: the replica's Description is not a shared property and defaults to "";
    ReplicaTags is omitted when there are none; ReplicaKeyMetadata has no
    CurrentKeyMaterialId."""
    primary = kms.create_key(Description="the primary", MultiRegion=True)["KeyMetadata"]
    response = kms.replicate_key(KeyId=primary["KeyId"], ReplicaRegion=OTHER_REGION)
    assert "ReplicaTags" not in response
    replica = response["ReplicaKeyMetadata"]
    assert replica["Description"] == ""
    assert "CurrentKeyMaterialId" not in replica
    assert replica["Arn"] == server.key_arn(primary["KeyId"], OTHER_REGION)

    tagged = kms.create_key(MultiRegion=True)["KeyMetadata"]
    response = kms.replicate_key(
        KeyId=tagged["KeyId"],
        ReplicaRegion=OTHER_REGION,
        Description="replica",
        Tags=[{"TagKey": "team", "TagValue": "kms"}],
    )
    assert response["ReplicaTags"] == [{"TagKey": "team", "TagValue": "kms"}]
    assert response["ReplicaKeyMetadata"]["Description"] == "replica"


def test_replicate_key_on_a_replica(kms: BaseClient, server: Server) -> None:
    """ReplicateKey called on a replica key: AWS answers UnsupportedOperationException "<arn> is
    not a multi-region primary key." (lower-case "multi-region")."""
    primary = kms.create_key(MultiRegion=True)["KeyMetadata"]
    replica = kms.replicate_key(KeyId=primary["KeyId"], ReplicaRegion=OTHER_REGION)
    replica_arn = replica["ReplicaKeyMetadata"]["Arn"]
    other = server.client(region=OTHER_REGION)
    expect_error(
        "UnsupportedOperationException", other.replicate_key, KeyId=replica_arn,
        ReplicaRegion="ap-south-1", message=f"{replica_arn} is not a multi-region primary key.",
    )  # fmt: skip


# --- 11. alias names -----------------------------------------------------------------------------
def test_alias_name_with_a_colon(kms: BaseClient) -> None:
    """The model's AliasNameType pattern ``^[a-zA-Z0-9:/_-]+$`` admits ``:``, AWS does not: only
    letters, digits, ``/``, ``_`` and ``-`` follow ``alias/``. CreateAlias and UpdateAlias
    answer ValidationException "<name> contains invalid characters for an alias"."""
    key = new_key(kms)
    name = "alias/my:alias"
    message = f"{name} contains invalid characters for an alias"
    expect_error(
        "ValidationException", kms.create_alias, AliasName=name, TargetKeyId=key["KeyId"],
        message=message,
    )  # fmt: skip
    expect_error(
        "ValidationException", kms.update_alias, AliasName=name, TargetKeyId=key["KeyId"],
        message=message,
    )  # fmt: skip
    kms.create_alias(AliasName=unique_alias("my-alias_/"), TargetKeyId=key["KeyId"])


# --- 12, 13. wording of validation -------------------------------------------------------------
RSA_LIMITS = [
    ("RSA_2048", "RSAES_OAEP_SHA_1", 214),
    ("RSA_2048", "RSAES_OAEP_SHA_256", 190),
    ("RSA_3072", "RSAES_OAEP_SHA_1", 342),
    ("RSA_3072", "RSAES_OAEP_SHA_256", 318),
    ("RSA_4096", "RSAES_OAEP_SHA_1", 470),
    ("RSA_4096", "RSAES_OAEP_SHA_256", 446),
]


def test_rsa_plaintext_too_long(kms: BaseClient) -> None:
    """Encrypt with an RSA key and a plaintext over the limit: AWS answers ValidationException
    "Algorithm RSAES_OAEP_SHA_1 and key spec RSA_2048 cannot encrypt data larger than 214
    bytes." (every spec and algorithm, limits per kms-rules.md); the limit itself encrypts."""
    keys: dict[str, str] = {}
    for spec, algorithm, limit in RSA_LIMITS:
        if spec not in keys:
            keys[spec] = new_key(kms, spec, "ENCRYPT_DECRYPT")["KeyId"]
        expect_error(
            "ValidationException", kms.encrypt, KeyId=keys[spec],
            Plaintext=bytes(limit + 1), EncryptionAlgorithm=algorithm,
            message=(
                f"Algorithm {algorithm} and key spec {spec} cannot encrypt data larger than "
                f"{limit} bytes."
            ),
        )  # fmt: skip
        kms.encrypt(KeyId=keys[spec], Plaintext=bytes(limit), EncryptionAlgorithm=algorithm)


def test_mac_algorithm_enum_in_validation_messages(kms_unvalidated: BaseClient) -> None:
    """A MacAlgorithm outside the enum: AWS lists the set as ``[HMAC_SHA_384, HMAC_SHA_256,
    HMAC_SHA_224, HMAC_SHA_512]``, not in the model's order; every order openkms keeps for an
    enum covers exactly the model's values."""
    from openkms.protocol import model as kms_model
    from openkms.protocol.validation import AWS_ENUM_ORDER

    expect_error(
        "ValidationException",
        kms_unvalidated.generate_mac,
        KeyId="alias/anything",
        Message=b"m",
        MacAlgorithm="HMAC_SHA_1",
        message=(
            "1 validation error detected: Value 'HMAC_SHA_1' at 'macAlgorithm' failed to satisfy "
            "constraint: Member must satisfy enum value set: [HMAC_SHA_384, HMAC_SHA_256, "
            "HMAC_SHA_224, HMAC_SHA_512]"
        ),
    )
    shapes = kms_model.load_model()["shapes"]
    for name, order in AWS_ENUM_ORDER.items():
        assert sorted(order) == sorted(shapes[name]["enum"]), name


# --- 15. key-state wording -----------------------------------------------------------------------
def test_key_state_wording(kms: BaseClient) -> None:
    """Key-state errors name the state as AWS words it, never the enum name: "<arn> is pending
    import." (Encrypt, EnableKey, RotateKeyOnDemand on a key waiting for its material), "<arn>
    is disabled.", "<arn> is pending deletion."."""
    waiting = external_key(kms)
    pending_import = f"{waiting['Arn']} is pending import."
    expect_error(
        "KMSInvalidStateException", kms.encrypt, KeyId=waiting["KeyId"], Plaintext=b"x",
        message=pending_import,
    )  # fmt: skip
    expect_error(
        "KMSInvalidStateException", kms.enable_key, KeyId=waiting["KeyId"],
        message=pending_import,
    )  # fmt: skip
    expect_error(
        "KMSInvalidStateException", kms.rotate_key_on_demand, KeyId=waiting["KeyId"],
        message=pending_import,
    )  # fmt: skip

    key = new_key(kms)
    kms.disable_key(KeyId=key["KeyId"])
    for call in (kms.rotate_key_on_demand, kms.enable_key_rotation):
        expect_error(
            "DisabledException", call, KeyId=key["KeyId"], message=f"{key['Arn']} is disabled."
        )
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    expect_error(
        "KMSInvalidStateException", kms.rotate_key_on_demand, KeyId=key["KeyId"],
        message=f"{key['Arn']} is pending deletion.",
    )  # fmt: skip


# --- 17. on-demand rotation limit ----------------------------------------------------------------
def test_on_demand_rotation_limit(kms: BaseClient) -> None:
    """The 26th RotateKeyOnDemand of a key: AWS answers LimitExceededException "The on-demand
    rotations limit has been reached for the given keyId. No more on-demand rotations can be
    performed for this key: <key-arn>"."""
    key = new_key(kms)
    for _ in range(25):
        kms.rotate_key_on_demand(KeyId=key["KeyId"])
    expect_error(
        "LimitExceededException", kms.rotate_key_on_demand, KeyId=key["KeyId"],
        message=(
            "The on-demand rotations limit has been reached for the given keyId. No more "
            f"on-demand rotations can be performed for this key: {key['Arn']}"
        ),
    )  # fmt: skip


# --- 18. envelope final frame --------------------------------------------------------------------
def test_envelope_final_frame_is_shorter_than_the_frame_length(kms: BaseClient) -> None:
    """The AWS Encryption SDK writes an empty final frame after a plaintext of whole frames and
    refuses a final frame as long as the frame length ("Invalid final frame length: 1048576 >=
    1048576"): openkms's writer does the same (both suites it writes, the streaming writer too),
    and its reader accepts both forms. The SDK itself decrypting them is
    ``tests/integration/test_envelope_interop.py::test_frame_boundaries_with_the_sdk``."""
    from openkms.envelope import EnvelopeClient
    from openkms.envelope.message import ExactReader, read_header

    frame = 64
    key = new_key(kms)["Arn"]
    client = EnvelopeClient(kms=kms, frame_length=frame)

    def by_writer(data: bytes, suite: str) -> bytes:
        sink = io.BytesIO()
        writer = client.open_encrypt(sink, key, suite=suite)
        for start in range(0, len(data), 7):  # odd pieces across frame boundaries
            writer.write(data[start : start + 7])
        writer.close()
        return sink.getvalue()

    def by_reader(data: bytes, suite: str) -> bytes:
        return client.encrypting_reader(io.BytesIO(data), key, suite=suite).read()

    def by_encrypt(data: bytes, suite: str) -> bytes:
        return client.encrypt(data, key, suite=suite)

    suites = ("AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384", "AES_256_GCM_HKDF_SHA512_COMMIT_KEY")
    for suite in suites:
        for size in (0, 1, frame - 1, frame, frame + 1, 2 * frame):
            data = os.urandom(size)
            for make in (by_encrypt, by_writer, by_reader):
                message = make(data, suite)
                reader = ExactReader(io.BytesIO(message))
                assert read_header(reader).frame_length == frame
                regular = 0
                while reader.u32("frame") != 0xFFFFFFFF:
                    regular += 1
                    reader.read(12 + frame + 16, "frame")
                reader.read(4 + 12, "final frame")
                final_length = reader.u32("final frame")
                where = (suite, size, make.__name__)
                assert (regular, final_length) == (size // frame, size % frame), where
                assert client.decrypt(message) == data, where
