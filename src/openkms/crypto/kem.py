"""Encapsulate/Decapsulate with ML-KEM (FIPS 203).

KMS does both halves: Encapsulate takes only a KeyId and returns a fresh 32-byte shared secret
with its ciphertext (``SharedSecretCiphertextBlob``), made with the key's public half;
Decapsulate recovers the secret with the private half. ML-KEM-768/1024 run on
pyca/cryptography, ML-KEM-512 on PyCryptodome (mlkem-native), which agree byte for byte on keys,
ciphertexts and PKCS#8 seed encoding.

Error rules:

* a key spec that is not ML-KEM, or an algorithm other than ML_KEM -> InvalidKeyUsageException;
* a spec this build lacks -> UnsupportedOperationException with the reason from ``keyspecs``;
* a ciphertext whose length is not the spec's (768/1088/1568) -> InvalidCiphertextException.
  Any other ciphertext decapsulates to a pseudo-random secret (implicit rejection), exactly
  as the Decapsulate documentation describes, so no error is possible there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from openkms.crypto import keyspecs
from openkms.crypto.asymmetric import AnyKeyHandle, PrivateKeyHandle, PublicKeyHandle
from openkms.crypto.keyspecs import KeyFamily, KeySpecInfo
from openkms.errors import InvalidKeyUsageException, invalid_ciphertext
from openkms.types import EncapsulationAlgorithmSpec, KeySpec, KeyUsageType


@dataclass(frozen=True, slots=True)
class Encapsulation:
    """The result of Encapsulate; the shared secret stays out of the repr."""

    shared_secret: bytes = field(repr=False)
    ciphertext: bytes


def _check(spec: KeySpec, algorithm: EncapsulationAlgorithmSpec) -> KeySpecInfo:
    info = keyspecs.spec_info(spec)
    allowed = info.algorithms_for(KeyUsageType.ENCAPSULATE_DECAPSULATE).encapsulation_algorithms
    if algorithm not in allowed:
        raise InvalidKeyUsageException(
            f"Algorithm {algorithm.value} is incompatible with key spec {spec.value}."
        )
    keyspecs.require_supported(spec)
    if info.family is not KeyFamily.ML_KEM:  # pragma: no cover - table guards
        raise InvalidKeyUsageException(f"Key spec {spec.value} cannot encapsulate.")
    return info


def ciphertext_length(spec: KeySpec) -> int:
    length = keyspecs.spec_info(spec).ml_kem_ciphertext_length
    if length is None:
        raise ValueError(f"{spec.value} is not an ML-KEM key spec")
    return length


def encapsulate(
    key: AnyKeyHandle,
    algorithm: EncapsulationAlgorithmSpec = EncapsulationAlgorithmSpec.ML_KEM,
) -> Encapsulation:
    """A fresh shared secret and its ciphertext under the public half of ``key``."""
    public: PublicKeyHandle = key.public() if isinstance(key, PrivateKeyHandle) else key
    _check(public.spec, algorithm)
    if public.spec is KeySpec.ML_KEM_512:
        secret, ciphertext = public.key._encaps()
    else:
        secret, ciphertext = public.key.encapsulate()
    return Encapsulation(shared_secret=bytes(secret), ciphertext=bytes(ciphertext))


def decapsulate(
    handle: PrivateKeyHandle,
    ciphertext: bytes,
    algorithm: EncapsulationAlgorithmSpec = EncapsulationAlgorithmSpec.ML_KEM,
) -> bytes:
    """The 32-byte shared secret; a pseudo-random one for a forged ciphertext of the right
    length (implicit rejection)."""
    info = _check(handle.spec, algorithm)
    if len(ciphertext) != info.ml_kem_ciphertext_length:
        raise invalid_ciphertext()
    try:
        if handle.spec is KeySpec.ML_KEM_512:
            return bytes(handle.key._decaps(bytes(ciphertext)))
        return bytes(handle.key.decapsulate(ciphertext))
    except (ValueError, TypeError) as exc:
        raise invalid_ciphertext() from exc
