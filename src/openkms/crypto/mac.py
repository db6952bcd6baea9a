"""HMAC keys for GenerateMac/VerifyMac: RFC 2104 HMAC with SHA-224/256/384/512 (pyca).

Error rules:

* a MAC algorithm the key spec does not list (HMAC_256 key with HMAC_SHA_384, ...)
  -> InvalidKeyUsageException: each HMAC key spec supports exactly one MAC algorithm (key spec
  reference, HMAC table), and the model's InvalidKeyUsageException covers an algorithm that is
  incompatible with the key spec;
* a message longer than 4096 bytes -> ValidationException (PlaintextType max in the model);
* a MAC that does not match -> KMSInvalidMacException with an empty message (VerifyMac
  documentation: "If the HMAC is not verified, the VerifyMac operation fails with a
  KMSInvalidMacException exception").
"""

from __future__ import annotations

import os
from hmac import compare_digest
from typing import NoReturn

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as pyca_hmac

from openkms.crypto import keyspecs
from openkms.crypto.keyspecs import MAX_MESSAGE_BYTES, KeyFamily
from openkms.errors import (
    IncorrectKeyMaterialException,
    InvalidKeyUsageException,
    KMSInvalidMacException,
    ValidationException,
)
from openkms.types import KeySpec, KeyUsageType, MacAlgorithmSpec

_MAC_HASHES: dict[MacAlgorithmSpec, type[hashes.HashAlgorithm]] = {
    MacAlgorithmSpec.HMAC_SHA_224: hashes.SHA224,
    MacAlgorithmSpec.HMAC_SHA_256: hashes.SHA256,
    MacAlgorithmSpec.HMAC_SHA_384: hashes.SHA384,
    MacAlgorithmSpec.HMAC_SHA_512: hashes.SHA512,
}


class HmacKey:
    """HMAC key material bound to its key spec; never shows the material."""

    __slots__ = ("_material", "_spec")

    def __init__(self, spec: KeySpec, material: bytes) -> None:
        if keyspecs.spec_info(spec).family is not KeyFamily.HMAC:
            raise ValueError(f"{spec.value} is not an HMAC key spec")
        if not material:
            raise ValueError("HMAC key material must not be empty")
        self._spec = spec
        self._material = bytes(material)

    @property
    def spec(self) -> KeySpec:
        return self._spec

    def __repr__(self) -> str:
        return f"HmacKey(spec={self._spec.value}, material=<redacted>)"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("HmacKey cannot be pickled")


def generate_hmac_key(spec: KeySpec) -> bytes:
    """Fresh key material for ``spec``: as long as the spec's digest (HMAC_224 -> 28 bytes)."""
    info = keyspecs.spec_info(spec)
    if info.family is not KeyFamily.HMAC or info.hmac_key_length is None:
        raise ValueError(f"{spec.value} is not an HMAC key spec")
    return os.urandom(info.hmac_key_length)


def validate_hmac_key_material(spec: KeySpec, material: bytes) -> None:
    """Reject imported material outside the spec's accepted lengths (digest size to block
    size) with IncorrectKeyMaterialException; the message names lengths only."""
    info = keyspecs.spec_info(spec)
    if info.hmac_import_lengths is None:
        raise ValueError(f"{spec.value} is not an HMAC key spec")
    low, high = info.hmac_import_lengths
    if not low <= len(material) <= high:
        raise IncorrectKeyMaterialException(
            f"Key material for {spec.value} must be {low} to {high} bytes long."
        )


def load_hmac_key(spec: KeySpec, material: bytes) -> HmacKey:
    return HmacKey(spec, material)


def _check(key: HmacKey, algorithm: MacAlgorithmSpec, message: bytes) -> None:
    allowed = keyspecs.spec_info(key.spec).algorithms_for(KeyUsageType.GENERATE_VERIFY_MAC)
    if algorithm not in allowed.mac_algorithms:
        raise InvalidKeyUsageException(
            f"Algorithm {algorithm.value} is incompatible with key spec {key.spec.value}."
        )
    if len(message) > MAX_MESSAGE_BYTES:
        raise ValidationException(
            "1 validation error detected: Value at 'message' failed to satisfy constraint: "
            f"Member must have length less than or equal to {MAX_MESSAGE_BYTES}"
        )


def _compute(key: HmacKey, algorithm: MacAlgorithmSpec, message: bytes) -> bytes:
    h = pyca_hmac.HMAC(key._material, _MAC_HASHES[algorithm]())
    h.update(message)
    return h.finalize()


def generate_mac(key: HmacKey, algorithm: MacAlgorithmSpec, message: bytes) -> bytes:
    """The raw RFC 2104 HMAC tag of ``message``."""
    _check(key, algorithm, message)
    return _compute(key, algorithm, message)


def verify_mac(key: HmacKey, algorithm: MacAlgorithmSpec, message: bytes, mac: bytes) -> None:
    """Return when ``mac`` is the tag of ``message``; raise KMSInvalidMacException otherwise.

    The comparison is constant-time in the tag's content (``hmac.compare_digest``), so timing
    tells an attacker nothing about how many leading bytes of a forged tag were right."""
    _check(key, algorithm, message)
    expected = _compute(key, algorithm, message)
    if not compare_digest(expected, bytes(mac)):
        raise KMSInvalidMacException("")
