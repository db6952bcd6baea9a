"""Asymmetric and HMAC keys at the service layer: which spec and usage a key may have, its
material, its unwrapped handles (cached), and RSA encryption for Encrypt/Decrypt/ReEncrypt."""

from __future__ import annotations

from collections.abc import Mapping

from openkms.crypto import asymmetric, keyspecs, mac
from openkms.domain.key import KeyRecord
from openkms.errors import (
    InvalidKeyUsageException,
    KMSInternalException,
    ValidationException,
)
from openkms.service.runtime import Runtime
from openkms.types import EncryptionAlgorithmSpec, KeySpec, KeyUsageType


def check_spec_and_usage(spec: str, usage: str) -> str:
    """The key usage of a new key of ``spec`` (not SYMMETRIC_DEFAULT); AWS's errors for what
    cannot be. AWS requires KeyUsage for every such spec, even one that allows a single usage."""
    if not usage:
        raise ValidationException(
            "You must specify a KeyUsage value for all KMS keys except for symmetric "
            "encryption keys."
        )
    info = keyspecs.require_supported(KeySpec(spec))
    if not info.allows_usage(KeyUsageType(usage)):
        raise ValidationException(f"KeyUsage {usage} is not compatible with KeySpec {spec}")
    return usage


def generate_material(spec: str) -> bytes:
    key_spec = KeySpec(spec)
    if keyspecs.spec_info(key_spec).hmac_key_length is not None:
        return mac.generate_hmac_key(key_spec)
    return asymmetric.generate_private_key(key_spec)


def validate_imported_material(spec: str, material: bytes) -> None:
    key_spec = KeySpec(spec)
    if keyspecs.spec_info(key_spec).hmac_key_length is not None:
        mac.validate_hmac_key_material(key_spec, material)
    else:
        asymmetric.load_private_key(key_spec, material)


def _current(key: KeyRecord) -> str:
    if key.current_material_id is None:
        raise KMSInternalException("The key has no current key material.")
    return key.current_material_id


def private_handle(rt: Runtime, key: KeyRecord) -> asymmetric.PrivateKeyHandle:
    material_id = _current(key)
    ident = (key.arn, material_id)
    cached = rt.material_cache.get(ident)
    if isinstance(cached, asymmetric.PrivateKeyHandle):
        return cached
    record = rt.storage.get_material(key.arn, material_id)
    if record is None:
        raise KMSInternalException("The key material is missing.")
    handle = asymmetric.load_private_key(
        KeySpec(key.key_spec), rt.unwrap_material(record), trusted=True
    )
    rt.material_cache.put(ident, handle)
    return handle


def hmac_handle(rt: Runtime, key: KeyRecord) -> mac.HmacKey:
    material_id = _current(key)
    ident = (key.arn, material_id)
    cached = rt.material_cache.get(ident)
    if isinstance(cached, mac.HmacKey):
        return cached
    record = rt.storage.get_material(key.arn, material_id)
    if record is None:
        raise KMSInternalException("The key material is missing.")
    handle = mac.load_hmac_key(KeySpec(key.key_spec), rt.unwrap_material(record))
    rt.material_cache.put(ident, handle)
    return handle


def require_usage(key: KeyRecord, usage: KeyUsageType, operation: str) -> None:
    if key.key_usage != usage.value:
        raise InvalidKeyUsageException(
            f"{key.arn} key usage is {key.key_usage} which is not valid for {operation}."
        )


def check_encryption(
    key: KeyRecord, algorithm: str | None, context: Mapping[str, str] | None
) -> None:
    if context:
        raise ValidationException("EncryptionContext is not supported with asymmetric KMS keys.")
    if algorithm is None:
        raise ValidationException(
            f"EncryptionAlgorithm is required with the asymmetric KMS key {key.arn}."
        )
    info = keyspecs.require_supported(KeySpec(key.key_spec))
    allowed = info.algorithms_for(KeyUsageType.ENCRYPT_DECRYPT).encryption_algorithms
    if EncryptionAlgorithmSpec(algorithm) not in allowed:
        raise InvalidKeyUsageException(
            f"Algorithm {algorithm} is incompatible with key spec {key.key_spec}."
        )


def encrypt(
    rt: Runtime,
    key: KeyRecord,
    algorithm: str | None,
    plaintext: bytes,
    context: Mapping[str, str] | None,
) -> bytes:
    check_encryption(key, algorithm, context)
    assert algorithm is not None
    return asymmetric.encrypt(
        private_handle(rt, key), EncryptionAlgorithmSpec(algorithm), plaintext
    )


def decrypt(rt: Runtime, key: KeyRecord, algorithm: str, blob: bytes) -> bytes:
    return asymmetric.decrypt(private_handle(rt, key), EncryptionAlgorithmSpec(algorithm), blob)


def public_key_der(rt: Runtime, key: KeyRecord) -> bytes:
    return asymmetric.public_key_der(private_handle(rt, key))
