"""No secret reaches the audit log, in any encoding; encryption contexts do."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from openkms.audit.events import build_record, is_read_only
from openkms.audit.redaction import cloudtrail_date, redact
from openkms.audit.sinks import FileAuditSink
from openkms.service.context import Principal, RequestContext

ACCOUNT = "111122223333"
KEY_ARN = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
PRINCIPAL = Principal(ACCOUNT, f"arn:aws:iam::{ACCOUNT}:user/Alice", "user", "AKIAX", "AIDAX")


def _private_key_der() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


# Every secret, as bytes, that appears in the calls below.
PLAINTEXT = b"the launch code is 0000 and nobody may know it"
DATA_KEY = os.urandom(32)
DATA_KEY_2 = os.urandom(32)
PRIVATE_KEY = _private_key_der()
SHARED_SECRET = os.urandom(32)
KEM_SECRET = os.urandom(32)
KEY_MATERIAL = os.urandom(256)
IMPORT_TOKEN = os.urandom(300)
WRAPPING_PUBLIC_KEY = os.urandom(294)
MESSAGE = b"please sign this very secret message"
MAC = os.urandom(32)
SIGNATURE = os.urandom(72)
CIPHERTEXT = os.urandom(150)
CIPHERTEXT_2 = os.urandom(150)
PRIVATE_KEY_CIPHERTEXT = os.urandom(400)
FOR_RECIPIENT = os.urandom(512)
ATTESTATION = os.urandom(600)
KEM_CIPHERTEXT = os.urandom(1088)
FUTURE_BLOB = os.urandom(48)
XKS_SECRET = "XKS-raw-secret-access-key-0123456789abcdefghij"
XKS_ACCESS_KEY = "XKSACCESSKEYID0123456789"
HSM_PASSWORD = "kmsuser-password-0123"
SESSION_TOKEN = "FwoGZXIvYXdzEBYaDSESSIONTOKENSECRET"
SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY"
GRANT_TOKEN = "AQpAM2RhZTk1MGMyNTk2ZmZmMzEyYWVhOWViN2ExNTgGRANTTOKEN"

BYTE_SECRETS = [
    PLAINTEXT,
    DATA_KEY,
    DATA_KEY_2,
    PRIVATE_KEY,
    SHARED_SECRET,
    KEM_SECRET,
    KEY_MATERIAL,
    IMPORT_TOKEN,
    WRAPPING_PUBLIC_KEY,
    MESSAGE,
    MAC,
    SIGNATURE,
    CIPHERTEXT,
    CIPHERTEXT_2,
    PRIVATE_KEY_CIPHERTEXT,
    FOR_RECIPIENT,
    ATTESTATION,
    KEM_CIPHERTEXT,
    FUTURE_BLOB,
]
STRING_SECRETS = [
    XKS_SECRET,
    XKS_ACCESS_KEY,
    HSM_PASSWORD,
    SESSION_TOKEN,
    SECRET_ACCESS_KEY,
    GRANT_TOKEN,
    PLAINTEXT.decode(),
]
CONTEXT = {"Department": "Engineering", "Project": "Alpha"}
RECIPIENT = {"KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256", "AttestationDocument": ATTESTATION}

# (operation, request, response): what the handlers see and return, blobs as bytes.
CALLS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "Encrypt",
        {"KeyId": KEY_ARN, "Plaintext": PLAINTEXT, "EncryptionContext": CONTEXT,
         "GrantTokens": [GRANT_TOKEN]},
        {"CiphertextBlob": CIPHERTEXT, "KeyId": KEY_ARN},
    ),
    (
        "Decrypt",
        {"CiphertextBlob": CIPHERTEXT, "EncryptionContext": CONTEXT, "Recipient": RECIPIENT},
        {"KeyId": KEY_ARN, "Plaintext": PLAINTEXT, "CiphertextForRecipient": FOR_RECIPIENT},
    ),
    (
        "ReEncrypt",
        {"CiphertextBlob": CIPHERTEXT, "SourceEncryptionContext": CONTEXT,
         "DestinationKeyId": KEY_ARN, "DestinationEncryptionContext": {"Stage": "2"}},
        {"CiphertextBlob": CIPHERTEXT_2, "SourceKeyId": KEY_ARN, "KeyId": KEY_ARN},
    ),
    (
        "GenerateDataKey",
        {"KeyId": KEY_ARN, "KeySpec": "AES_256", "EncryptionContext": CONTEXT},
        {"Plaintext": DATA_KEY, "CiphertextBlob": CIPHERTEXT, "KeyId": KEY_ARN},
    ),
    (
        "GenerateDataKeyWithoutPlaintext",
        {"KeyId": KEY_ARN, "NumberOfBytes": 32},
        {"CiphertextBlob": CIPHERTEXT_2, "KeyId": KEY_ARN},
    ),
    (
        "GenerateDataKeyPair",
        {"KeyId": KEY_ARN, "KeyPairSpec": "ECC_NIST_P256", "EncryptionContext": CONTEXT},
        {"PrivateKeyPlaintext": PRIVATE_KEY, "PrivateKeyCiphertextBlob": PRIVATE_KEY_CIPHERTEXT,
         "PublicKey": WRAPPING_PUBLIC_KEY, "KeyId": KEY_ARN},
    ),
    (
        "GenerateRandom",
        {"NumberOfBytes": 32, "Recipient": RECIPIENT},
        {"Plaintext": DATA_KEY_2, "CiphertextForRecipient": FOR_RECIPIENT},
    ),
    (
        "DeriveSharedSecret",
        {"KeyId": KEY_ARN, "KeyAgreementAlgorithm": "ECDH", "PublicKey": WRAPPING_PUBLIC_KEY},
        {"SharedSecret": SHARED_SECRET, "KeyId": KEY_ARN},
    ),
    (
        "Encapsulate",
        {"KeyId": KEY_ARN},
        {"SharedSecret": KEM_SECRET, "SharedSecretCiphertextBlob": KEM_CIPHERTEXT},
    ),
    (
        "Decapsulate",
        {"KeyId": KEY_ARN, "SharedSecretCiphertextBlob": KEM_CIPHERTEXT},
        {"SharedSecret": KEM_SECRET},
    ),
    (
        "Sign",
        {"KeyId": KEY_ARN, "Message": MESSAGE, "MessageType": "RAW",
         "SigningAlgorithm": "ECDSA_SHA_256"},
        {"Signature": SIGNATURE, "KeyId": KEY_ARN},
    ),
    (
        "Verify",
        {"KeyId": KEY_ARN, "Message": MESSAGE, "Signature": SIGNATURE,
         "SigningAlgorithm": "ECDSA_SHA_256"},
        {"SignatureValid": True, "KeyId": KEY_ARN},
    ),
    (
        "GenerateMac",
        {"KeyId": KEY_ARN, "Message": MESSAGE, "MacAlgorithm": "HMAC_SHA_256"},
        {"Mac": MAC, "KeyId": KEY_ARN},
    ),
    (
        "VerifyMac",
        {"KeyId": KEY_ARN, "Message": MESSAGE, "Mac": MAC, "MacAlgorithm": "HMAC_SHA_256"},
        {"MacValid": True},
    ),
    (
        "GetParametersForImport",
        {"KeyId": KEY_ARN, "WrappingAlgorithm": "RSAES_OAEP_SHA_256"},
        {"ImportToken": IMPORT_TOKEN, "PublicKey": WRAPPING_PUBLIC_KEY, "KeyId": KEY_ARN},
    ),
    (
        "ImportKeyMaterial",
        {"KeyId": KEY_ARN, "ImportToken": IMPORT_TOKEN, "EncryptedKeyMaterial": KEY_MATERIAL,
         "ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"},
        {"KeyId": KEY_ARN, "KeyMaterialId": "ab" * 32},
    ),
    (
        "GetPublicKey",
        {"KeyId": KEY_ARN},
        {"PublicKey": WRAPPING_PUBLIC_KEY, "KeyId": KEY_ARN},
    ),
    (
        "CreateCustomKeyStore",
        {"CustomKeyStoreName": "xks", "CustomKeyStoreType": "EXTERNAL_KEY_STORE",
         "KeyStorePassword": HSM_PASSWORD,
         "XksProxyAuthenticationCredential": {"AccessKeyId": XKS_ACCESS_KEY,
                                              "RawSecretAccessKey": XKS_SECRET}},
        {"CustomKeyStoreId": "cks-1234567890abcdef0"},
    ),
    (
        "CreateGrant",
        {"KeyId": KEY_ARN, "GranteePrincipal": PRINCIPAL.arn, "Operations": ["Decrypt"],
         "Constraints": {"EncryptionContextSubset": CONTEXT}, "GrantTokens": [GRANT_TOKEN]},
        {"GrantId": "0c237476b39f8bc44e45212e08498fbe3151305030726c0590dd8d3e9f3d6a60",
         "GrantToken": GRANT_TOKEN},
    ),
    (
        # A mutating call whose response (hypothetically) nests secrets and a blob member the
        # model does not have yet: none of it may be logged.
        "CreateKey",
        {"Description": "nested", "Policy": '{"Version":"2012-10-17"}',
         "Extra": {"SessionToken": SESSION_TOKEN, "SecretAccessKey": SECRET_ACCESS_KEY,
                   "Deeper": [{"FutureBlob": FUTURE_BLOB, "Plaintext": PLAINTEXT.decode()}]}},
        {"KeyMetadata": {"KeyId": "k", "Arn": KEY_ARN, "NewBlob": FUTURE_BLOB,
                         "Credentials": {"SecretAccessKey": SECRET_ACCESS_KEY,
                                         "SessionToken": SESSION_TOKEN}}},
    ),
]  # fmt: skip


def _forms(secret: bytes) -> list[bytes]:
    return [
        secret,
        base64.b64encode(secret),
        base64.urlsafe_b64encode(secret),
        base64.b64encode(secret).rstrip(b"="),
        secret.hex().encode(),
        secret.hex().upper().encode(),
    ]


def _build(
    operation: str,
    request: dict[str, Any],
    response: dict[str, Any],
    error_code: str | None = None,
    read_only: bool | None = None,
) -> dict[str, Any]:
    ctx = RequestContext(principal=PRINCIPAL, region="us-east-1", request_id="r", now=1.0)
    return build_record(
        ctx=ctx,
        operation=operation,
        request_params=request,
        response=response,
        error_code=error_code,
        error_message=None if error_code is None else "failed",
        request_id="r",
        event_time=1_700_000_000.0,
        region="us-east-1",
        source_ip="127.0.0.1",
        user_agent="test",
        read_only=is_read_only(operation) if read_only is None else read_only,
        resources=[KEY_ARN],
        account_id=ACCOUNT,
    )


def _assert_clean(data: bytes) -> None:
    for secret in BYTE_SECRETS:
        for form in _forms(secret):
            assert form not in data, f"secret {secret[:8].hex()}… found as {form[:16]!r}…"
    for text in STRING_SECRETS:
        assert text.encode() not in data, f"secret string {text!r} found"


def test_written_log_holds_no_secret_but_the_contexts(tmp_path: Path) -> None:
    sink = FileAuditSink(tmp_path / "audit.log", background=False)
    for operation, request, response in CALLS:
        sink.write(_build(operation, request, response))
        sink.write(_build(operation, request, response, error_code="AccessDeniedException"))
        sink.write(_build(operation, request, response, read_only=False))
    sink.close()
    data = (tmp_path / "audit.log").read_bytes()
    _assert_clean(data)
    assert b'"encryptionContext":{"Department":"Engineering","Project":"Alpha"}' in data
    assert b'"sourceEncryptionContext":{"Department":"Engineering","Project":"Alpha"}' in data
    assert b'"destinationEncryptionContext":{"Stage":"2"}' in data
    assert b'"constraints":{"encryptionContextSubset":{"Department":"Engineering"' in data
    assert b'"responseElements":{"grantId":"0c237476' in data


@pytest.mark.parametrize(("operation", "request_", "response"), CALLS, ids=[c[0] for c in CALLS])
def test_redact_request_and_response_directly(
    operation: str, request_: dict[str, Any], response: dict[str, Any]
) -> None:
    # Directly, so that responseElements being null for crypto calls hides nothing.
    import orjson

    for params in (request_, response):
        redacted = redact(params)
        _assert_clean(orjson.dumps(redacted))


def test_what_is_kept() -> None:
    redacted = redact(
        {
            "KeyId": "alias/x",
            "EncryptionContext": {"Department": "Eng", "Weird": 5, "Nested": {"x": "y"}},
            "NumberOfBytes": 64,
            "EncryptionAlgorithm": "RSAES_OAEP_SHA_256",
            "DryRun": False,
            "ValidTo": 1_660_171_107,
            "Tags": [{"TagKey": "a", "TagValue": "b"}],
            "Unknown": object(),
            "Blob": bytearray(b"xx"),
            "View": memoryview(b"yy"),
        }
    )
    assert redacted == {
        "keyId": "alias/x",
        "encryptionContext": {"Department": "Eng"},  # string values only
        "numberOfBytes": 64,
        "encryptionAlgorithm": "RSAES_OAEP_SHA_256",
        "dryRun": False,
        "validTo": "Aug 10, 2022, 10:38:27 PM",
        "tags": [{"tagKey": "a", "tagValue": "b"}],
    }


def test_nothing_left_is_null() -> None:
    assert redact(None) is None
    assert redact({}) is None
    assert redact({"Plaintext": b"x", "CiphertextBlob": b"y"}) is None


def test_lists_of_blobs_are_dropped_element_by_element() -> None:
    assert redact({"Values": [b"secret", "kept", 3, b"other"]}) == {"values": ["kept", 3]}


def test_cloudtrail_date() -> None:
    assert cloudtrail_date(0) == "Jan 1, 1970, 12:00:00 AM"
    assert cloudtrail_date(12 * 3600) == "Jan 1, 1970, 12:00:00 PM"
    assert cloudtrail_date(13 * 3600 + 5) == "Jan 1, 1970, 1:00:05 PM"


def test_real_handlers_leave_no_secret_in_the_log(tmp_path: Path) -> None:
    """Requests and responses of the real service functions, end to end."""
    from openkms.protocol.operations import handler_for
    from tests.unit.service_helpers import Harness

    h = Harness()
    sink = FileAuditSink(tmp_path / "audit.log", background=False)
    secrets: list[bytes] = []

    def call(operation: str, request: dict[str, Any]) -> dict[str, Any]:
        ctx = h.ctx(operation)
        response = handler_for(operation)(h.rt, ctx, request)
        sink.write(
            build_record(
                ctx=ctx,
                operation=operation,
                request_params=request,
                response=response,
                error_code=None,
                error_message=None,
                request_id=ctx.request_id,
                event_time=ctx.now,
                region=ctx.region,
                source_ip="127.0.0.1",
                user_agent="test",
                read_only=is_read_only(operation),
                resources=ctx.resources,
                account_id=ctx.principal.account_id,
            )
        )
        for value in [*request.values(), *response.values()]:
            if isinstance(value, bytes):
                secrets.append(value)
        return response

    key = call("CreateKey", {"Description": "audited"})["KeyMetadata"]["KeyId"]
    blob = call("Encrypt", {"KeyId": key, "Plaintext": PLAINTEXT, "EncryptionContext": CONTEXT})
    call("Decrypt", {"CiphertextBlob": blob["CiphertextBlob"], "EncryptionContext": CONTEXT})
    call("GenerateDataKey", {"KeyId": key, "KeySpec": "AES_256", "EncryptionContext": CONTEXT})
    call("GenerateRandom", {"NumberOfBytes": 64})
    pair = call("CreateKey", {"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"})
    signer = pair["KeyMetadata"]["KeyId"]
    call("Sign", {"KeyId": signer, "Message": MESSAGE, "SigningAlgorithm": "ECDSA_SHA_256"})
    call("GenerateDataKeyPair", {"KeyId": key, "KeyPairSpec": "ECC_NIST_P256"})
    sink.close()

    data = (tmp_path / "audit.log").read_bytes()
    assert len(secrets) >= 10
    for secret in secrets:
        for form in _forms(secret):
            assert form not in data
    assert data.count(b'"encryptionContext":{"Department":"Engineering","Project":"Alpha"}') == 3
    assert b'"responseElements":{"keyMetadata":{' in data  # CreateKey's, as on CloudTrail
