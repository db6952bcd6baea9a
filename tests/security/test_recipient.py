"""Recipient attacks: an attested request that gets its secret back in the clear.

AWS rule (KMS Developer Guide, "Cryptographic attestation support in AWS KMS"; RecipientInfo):
with a ``Recipient``, KMS verifies the Nitro attestation document, returns the secret only
encrypted to the enclave's public key (``CiphertextForRecipient``) and leaves ``Plaintext`` (or
``SharedSecret``) empty. openkms cannot verify attestation documents (README: attested delivery
is not implemented), so every operation with a ``Recipient`` member refuses such a request with
UnsupportedOperationException -- an empty RecipientInfo too -- instead of ignoring the member.

The operations are read from the vendored model, so one that gains a Recipient member is covered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from openkms.protocol.model import input_shape_name, operation_names, shapes

UNSUPPORTED = "UnsupportedOperationException"
ATTESTED = {"AttestationDocument": b"\x84" + b"not-a-real-attestation" * 8,
            "KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256"}  # fmt: skip
RECIPIENTS = {"attestation": ATTESTED, "empty": {}}


def _operations_with_recipient() -> list[str]:
    found = []
    for name in operation_names():
        shape = input_shape_name(name)
        if shape is not None and "Recipient" in shapes()[shape].get("members", {}):
            found.append(name)
    return found


def _peer_public_key() -> bytes:
    private = ec.generate_private_key(ec.SECP256R1())
    return private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


Builder = Callable[[BaseClient, dict[str, Any]], Any]


def _decrypt(kms: BaseClient, recipient: dict[str, Any]) -> Any:
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"top secret")["CiphertextBlob"]
    return kms.decrypt(CiphertextBlob=blob, Recipient=recipient)


def _derive(kms: BaseClient, recipient: dict[str, Any]) -> Any:
    key_id = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="KEY_AGREEMENT")["KeyMetadata"][
        "KeyId"
    ]
    return kms.derive_shared_secret(
        KeyId=key_id,
        KeyAgreementAlgorithm="ECDH",
        PublicKey=_peer_public_key(),
        Recipient=recipient,
    )


CALLS: dict[str, Builder] = {
    "Decrypt": _decrypt,
    "DeriveSharedSecret": _derive,
    "GenerateDataKey": lambda kms, r: kms.generate_data_key(
        KeyId=kms.create_key()["KeyMetadata"]["KeyId"], KeySpec="AES_256", Recipient=r
    ),
    "GenerateDataKeyPair": lambda kms, r: kms.generate_data_key_pair(
        KeyId=kms.create_key()["KeyMetadata"]["KeyId"], KeyPairSpec="ECC_NIST_P256", Recipient=r
    ),
    "GenerateRandom": lambda kms, r: kms.generate_random(NumberOfBytes=32, Recipient=r),
}


def test_every_operation_with_a_recipient_member_is_covered() -> None:
    assert sorted(CALLS) == _operations_with_recipient()


@pytest.mark.parametrize("recipient", sorted(RECIPIENTS))
@pytest.mark.parametrize("operation", sorted(CALLS))
def test_attested_request_never_gets_the_secret_in_the_clear(
    operation: str, recipient: str, kms: BaseClient
) -> None:
    """The attack: an attested request (``Recipient``) whose attestation nobody checks, answered
    with the plaintext in ``Plaintext``/``SharedSecret``/``PrivateKeyPlaintext`` as if no
    Recipient had been given. AWS never returns the secret in the clear to an attested request;
    openkms refuses it (UnsupportedOperationException)."""
    with pytest.raises(ClientError) as refused:
        CALLS[operation](kms, RECIPIENTS[recipient])
    error = refused.value.response["Error"]
    assert error["Code"] == UNSUPPORTED
    assert "Recipient" in error["Message"]
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
