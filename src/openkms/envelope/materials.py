"""Cryptographic materials and the default materials manager (as the AWS Encryption SDK's
default CMM): it adds the signing key for signed suites and asks a keyring for the data key."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from openkms.envelope.errors import EncryptionContextError, MalformedMessageError
from openkms.envelope.message import (
    PUBLIC_KEY_CONTEXT_KEY,
    RESERVED_CONTEXT_PREFIX,
    EncryptedDataKey,
)
from openkms.envelope.suites import AlgorithmSuite, CommitmentPolicy

__all__ = [
    "DecryptionMaterials",
    "DecryptionRequest",
    "DefaultMaterialsManager",
    "EncryptionMaterials",
    "EncryptionRequest",
    "Keyring",
    "MaterialsManager",
]


@dataclass(frozen=True)
class EncryptionRequest:
    encryption_context: Mapping[str, str]
    suite: AlgorithmSuite
    commitment_policy: CommitmentPolicy
    plaintext_length: int | None = None


@dataclass(frozen=True)
class DecryptionRequest:
    suite: AlgorithmSuite
    encrypted_data_keys: tuple[EncryptedDataKey, ...]
    encryption_context: Mapping[str, str]
    commitment_policy: CommitmentPolicy


@dataclass(frozen=True)
class EncryptionMaterials:
    """What one message is encrypted with. ``encryption_context`` is the full context written
    into the message (for signed suites it holds the public key)."""

    suite: AlgorithmSuite
    data_key: bytes = field(repr=False)
    encrypted_data_keys: tuple[EncryptedDataKey, ...]
    encryption_context: Mapping[str, str]
    signing_key: ec.EllipticCurvePrivateKey | None = field(default=None, repr=False)


@dataclass(frozen=True)
class DecryptionMaterials:
    suite: AlgorithmSuite
    data_key: bytes = field(repr=False)
    verification_key: ec.EllipticCurvePublicKey | None = None


class Keyring(Protocol):
    """Makes and wraps a data key (``on_encrypt``) and unwraps one (``on_decrypt``)."""

    def on_encrypt(
        self, suite: AlgorithmSuite, encryption_context: Mapping[str, str]
    ) -> tuple[bytes, tuple[EncryptedDataKey, ...]]: ...

    def on_decrypt(
        self,
        suite: AlgorithmSuite,
        encrypted_data_keys: tuple[EncryptedDataKey, ...],
        encryption_context: Mapping[str, str],
    ) -> bytes: ...


class MaterialsManager(Protocol):
    def get_encryption_materials(self, request: EncryptionRequest) -> EncryptionMaterials: ...

    def decrypt_materials(self, request: DecryptionRequest) -> DecryptionMaterials: ...


def check_user_context(context: Mapping[str, str]) -> dict[str, str]:
    """A caller's encryption context: strings only, no reserved ``aws-crypto-`` keys."""
    checked: dict[str, str] = {}
    for key, value in context.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise EncryptionContextError("encryption context keys and values must be strings")
        if key.startswith(RESERVED_CONTEXT_PREFIX):
            raise EncryptionContextError(
                f"encryption context key {key!r} is reserved (prefix {RESERVED_CONTEXT_PREFIX!r})"
            )
        checked[key] = value
    return checked


def encode_public_key(key: ec.EllipticCurvePublicKey) -> str:
    """Base64 of the compressed point (SEC 1, 2.3.3), as the SDK writes it into the context."""
    point = key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
    )
    return base64.b64encode(point).decode("ascii")


def decode_public_key(suite: AlgorithmSuite, value: str) -> ec.EllipticCurvePublicKey:
    try:
        point = base64.b64decode(value.encode("ascii"), validate=True)
        return ec.EllipticCurvePublicKey.from_encoded_point(suite.signature_curve(), point)
    except (ValueError, UnicodeEncodeError):
        raise MalformedMessageError(
            f"the encryption context's {PUBLIC_KEY_CONTEXT_KEY} is not a valid public key"
        ) from None


class DefaultMaterialsManager:
    """The default CMM over one keyring."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring

    def get_encryption_materials(self, request: EncryptionRequest) -> EncryptionMaterials:
        suite = request.suite
        request.commitment_policy.check_encrypt(suite)
        context = check_user_context(request.encryption_context)
        signing_key = None
        if suite.signed:
            signing_key = ec.generate_private_key(suite.signature_curve())
            context[PUBLIC_KEY_CONTEXT_KEY] = encode_public_key(signing_key.public_key())
        data_key, edks = self.keyring.on_encrypt(suite, context)
        if len(data_key) != suite.data_key_length:
            raise EncryptionContextError("the keyring returned a data key of the wrong length")
        return EncryptionMaterials(suite, data_key, edks, context, signing_key)

    def decrypt_materials(self, request: DecryptionRequest) -> DecryptionMaterials:
        suite = request.suite
        request.commitment_policy.check_decrypt(suite)
        verification_key = None
        public = request.encryption_context.get(PUBLIC_KEY_CONTEXT_KEY)
        if suite.signed:
            if public is None:
                raise MalformedMessageError(
                    f"signed suite {suite.name} but no {PUBLIC_KEY_CONTEXT_KEY} in the context"
                )
            verification_key = decode_public_key(suite, public)
        elif public is not None:
            raise MalformedMessageError(
                f"unsigned suite {suite.name} but the context holds {PUBLIC_KEY_CONTEXT_KEY}"
            )
        data_key = self.keyring.on_decrypt(
            suite, request.encrypted_data_keys, request.encryption_context
        )
        return DecryptionMaterials(suite, data_key, verification_key)
