"""Import wrapping: the RSA wrapping key pair GetParametersForImport hands out, and unwrapping of
key material wrapped under it (RSAES-OAEP, or RSA-OAEP of an AES key + AES key wrap with padding,
RFC 5649, as AWS's RSA_AES_KEY_WRAP algorithms specify)."""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap_with_padding

from openkms.errors import invalid_ciphertext

_BITS = {"RSA_2048": 2048, "RSA_3072": 3072, "RSA_4096": 4096}
_HASH: dict[str, type[hashes.SHA1] | type[hashes.SHA256]] = {
    "RSAES_OAEP_SHA_1": hashes.SHA1,
    "RSAES_OAEP_SHA_256": hashes.SHA256,
    "RSA_AES_KEY_WRAP_SHA_1": hashes.SHA1,
    "RSA_AES_KEY_WRAP_SHA_256": hashes.SHA256,
}
SUPPORTED_ALGORITHMS = frozenset(_HASH)
SUPPORTED_KEY_SPECS = frozenset(_BITS)


def new_wrapping_key(spec: str) -> tuple[bytes, bytes]:
    """(private key PKCS#8 DER, public key SubjectPublicKeyInfo DER)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=_BITS[spec])
    private = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


def _oaep(algorithm: str) -> padding.OAEP:
    digest = _HASH[algorithm]
    return padding.OAEP(mgf=padding.MGF1(digest()), algorithm=digest(), label=None)


def unwrap_key_material(private_der: bytes, algorithm: str, wrapped: bytes) -> bytes:
    """Any failure is InvalidCiphertextException, saying nothing of why."""
    try:
        # The wrapping key is openkms's own, generated here and kept under the root of trust:
        # OpenSSL's RSA check (350 ms for RSA_4096, holding the GIL) would buy nothing.
        key = serialization.load_der_private_key(
            private_der, password=None, unsafe_skip_rsa_key_validation=True
        )
        if not isinstance(key, rsa.RSAPrivateKey):
            raise invalid_ciphertext()
        if algorithm.startswith("RSAES_OAEP"):
            return key.decrypt(wrapped, _oaep(algorithm))
        size = key.key_size // 8
        aes_key = key.decrypt(wrapped[:size], _oaep(algorithm))
        return aes_key_unwrap_with_padding(aes_key, wrapped[size:])
    except (ValueError, InvalidUnwrap) as exc:
        raise invalid_ciphertext() from exc
