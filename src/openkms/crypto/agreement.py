"""DeriveSharedSecret: raw ECDH on the NIST curves (pyca/cryptography).

KMS returns the raw shared secret of the Elliptic Curve Cryptography Cofactor Diffie-Hellman
primitive (the x-coordinate, as long as the field); the NIST curves have cofactor 1, so this is
plain ECDH, the same value the peer computes with its own private key and our public key.

Error rules:

* a key spec without KEY_AGREEMENT (RSA, secp256k1, Ed25519, ML-*) or an algorithm other than
  ECDH -> InvalidKeyUsageException (model: an algorithm incompatible with the KeySpec);
* SM2 -> UnsupportedOperationException with the reason from ``keyspecs``;
* a peer public key that is not a DER SubjectPublicKeyInfo of an EC point on the key's own
  curve -> ValidationException. The DeriveSharedSecret ``PublicKey`` documentation says a
  public key that is not DER SPKI (e.g. Base64-encoded twice by the CLI) results in a
  ValidationException, and that "both key pairs must be on the same elliptic curve".
"""

from __future__ import annotations

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from openkms.crypto import keyspecs
from openkms.crypto.asymmetric import PrivateKeyHandle, is_subject_public_key_info
from openkms.errors import InvalidKeyUsageException, ValidationException
from openkms.types import KeyAgreementAlgorithmSpec, KeyUsageType


def derive_shared_secret(
    handle: PrivateKeyHandle,
    algorithm: KeyAgreementAlgorithmSpec,
    peer_public_key_der: bytes,
) -> bytes:
    """The raw ECDH shared secret of our private key and the peer's DER SPKI public key."""
    spec = handle.spec
    info = keyspecs.spec_info(spec)
    allowed = info.algorithms_for(KeyUsageType.KEY_AGREEMENT).key_agreement_algorithms
    if algorithm not in allowed:
        raise InvalidKeyUsageException(
            f"Algorithm {algorithm.value} is incompatible with key spec {spec.value}."
        )
    keyspecs.require_supported(spec)
    private = handle.key
    if not isinstance(private, ec.EllipticCurvePrivateKey):  # pragma: no cover - table guards
        raise InvalidKeyUsageException(f"Key spec {spec.value} cannot derive shared secrets.")
    # AWS answers a public key it cannot read with a message-less ValidationException.
    not_spki = ValidationException()
    if not is_subject_public_key_info(peer_public_key_der):
        raise not_spki
    try:
        peer = serialization.load_der_public_key(peer_public_key_der)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise not_spki from exc
    if not isinstance(peer, ec.EllipticCurvePublicKey) or peer.curve.name != private.curve.name:
        raise ValidationException(
            f"The public key must be on the same elliptic curve as key spec {spec.value}."
        )
    return private.exchange(ec.ECDH(), peer)
