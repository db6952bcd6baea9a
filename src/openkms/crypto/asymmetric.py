"""Asymmetric keys: generation, loading, Sign/Verify and RSA Encrypt/Decrypt.

Private keys travel as PKCS#8 DER (ML-DSA and ML-KEM in the seed form, as AWS returns them
from GenerateDataKeyPair); public keys as DER SubjectPublicKeyInfo, what GetPublicKey returns.
A caller parses a private key once with :func:`load_private_key` and may keep the handle.

Libraries: pyca/cryptography for RSA, ECDSA, Ed25519, ML-DSA, ML-KEM-768/1024; PyNaCl
(libsodium) for Ed25519ph; PyCryptodome (mlkem-native) for ML-KEM-512. The last two are
optional: without them those algorithms report ``UnsupportedOperationException``.

Error rules for Sign and Verify, checked in this order (see :func:`check_signing_request`):

1. The spec cannot sign, or the algorithm is not one the spec lists -> InvalidKeyUsageException.
   The model's InvalidKeyUsageException documentation: "The encryption algorithm or signing
   algorithm specified for the operation is incompatible with the type of key material in the
   KMS key (KeySpec)". So ECDSA_SHA_384 with an ECC_NIST_P256 key is InvalidKeyUsage.
2. The algorithm is not implemented by this build -> UnsupportedOperationException.
3. The message type is not one the algorithm takes (ED25519_SHA_512 needs RAW,
   ED25519_PH_SHA_512 needs DIGEST, EXTERNAL_MU is ML-DSA only, ML-DSA has no DIGEST)
   -> ValidationException. The MessageType documentation states the pairings; the exception
   type is the one emulators that were checked against the live service return (a bad pairing
   is rejected before any key material is touched, like a malformed parameter).
4. RAW message longer than 4096 bytes -> ValidationException (PlaintextType max in the model,
   with the message botocore users see for a failed length constraint).
5. DIGEST whose length differs from the algorithm's hash -> ValidationException
   "Digest is invalid length for algorithm X." (Sign documentation: "the length of the Message
   value must match the length of hashed messages"; the wording is what the live service
   answers, as recorded in public client code, e.g. the aws-sdk-rust discussion #571).
6. EXTERNAL_MU that is not 64 bytes -> ValidationException (MessageType documentation).

Verify returns False for any signature that does not verify, malformed ones included; the
service layer turns that into KMSInvalidSignatureException.

RSA Encrypt/Decrypt: an algorithm the spec does not list -> InvalidKeyUsageException (same
model text); plaintext over the OAEP limit of the Encrypt documentation -> ValidationException;
any failure to decrypt -> ``errors.invalid_ciphertext()``.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, NoReturn, TypeAlias

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa, mlkem, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from openkms.crypto import keyspecs
from openkms.crypto.keyspecs import (
    EXTERNAL_MU_BYTES,
    MAX_MESSAGE_BYTES,
    KeyFamily,
    KeySpecInfo,
)
from openkms.errors import (
    IncorrectKeyMaterialException,
    InvalidKeyUsageException,
    UnsupportedOperationException,
    ValidationException,
    invalid_ciphertext,
)
from openkms.types import (
    EncryptionAlgorithmSpec,
    KeySpec,
    KeyUsageType,
    MessageType,
    SigningAlgorithmSpec,
)

# What a verifier may raise for a signature that is merely invalid or malformed.
_VERIFY_FAILURES: tuple[type[Exception], ...] = (InvalidSignature, ValueError)
if keyspecs.ED25519PH_AVAILABLE:
    from nacl import bindings as _nacl
    from nacl.exceptions import CryptoError as _NaclError

    _VERIFY_FAILURES = (*_VERIFY_FAILURES, _NaclError)
if keyspecs.MLKEM512_AVAILABLE:
    from Crypto.PublicKey import MLKEM as _pcd_mlkem  # type: ignore[import-not-found, unused-ignore]

if TYPE_CHECKING:
    from collections.abc import Callable

_PycaPrivate: TypeAlias = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | mldsa.MLDSA44PrivateKey
    | mldsa.MLDSA65PrivateKey
    | mldsa.MLDSA87PrivateKey
    | mlkem.MLKEM768PrivateKey
    | mlkem.MLKEM1024PrivateKey
)
_PycaPublic: TypeAlias = (
    rsa.RSAPublicKey
    | ec.EllipticCurvePublicKey
    | ed25519.Ed25519PublicKey
    | mldsa.MLDSA44PublicKey
    | mldsa.MLDSA65PublicKey
    | mldsa.MLDSA87PublicKey
    | mlkem.MLKEM768PublicKey
    | mlkem.MLKEM1024PublicKey
)

_CURVES: dict[KeySpec, type[ec.EllipticCurve]] = {
    KeySpec.ECC_NIST_P256: ec.SECP256R1,
    KeySpec.ECC_NIST_P384: ec.SECP384R1,
    KeySpec.ECC_NIST_P521: ec.SECP521R1,
    KeySpec.ECC_SECG_P256_K1: ec.SECP256K1,
}
_ML_DSA_PRIVATE: dict[KeySpec, type[Any]] = {
    KeySpec.ML_DSA_44: mldsa.MLDSA44PrivateKey,
    KeySpec.ML_DSA_65: mldsa.MLDSA65PrivateKey,
    KeySpec.ML_DSA_87: mldsa.MLDSA87PrivateKey,
}
_ML_DSA_PUBLIC: dict[KeySpec, type[Any]] = {
    KeySpec.ML_DSA_44: mldsa.MLDSA44PublicKey,
    KeySpec.ML_DSA_65: mldsa.MLDSA65PublicKey,
    KeySpec.ML_DSA_87: mldsa.MLDSA87PublicKey,
}
_ML_KEM_PRIVATE: dict[KeySpec, type[Any]] = {
    KeySpec.ML_KEM_768: mlkem.MLKEM768PrivateKey,
    KeySpec.ML_KEM_1024: mlkem.MLKEM1024PrivateKey,
}
_ML_KEM_PUBLIC: dict[KeySpec, type[Any]] = {
    KeySpec.ML_KEM_768: mlkem.MLKEM768PublicKey,
    KeySpec.ML_KEM_1024: mlkem.MLKEM1024PublicKey,
}
_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
_OAEP_HASHES: dict[EncryptionAlgorithmSpec, Callable[[], hashes.HashAlgorithm]] = {
    EncryptionAlgorithmSpec.RSAES_OAEP_SHA_1: hashes.SHA1,
    EncryptionAlgorithmSpec.RSAES_OAEP_SHA_256: hashes.SHA256,
}


# --- Handles ---------------------------------------------------------------------------------
class PublicKeyHandle:
    """A parsed public key of a known key spec."""

    __slots__ = ("_der", "_key", "_spec")

    def __init__(self, spec: KeySpec, key: Any, der: bytes | None = None) -> None:
        self._spec = spec
        self._key = key
        self._der = der

    @property
    def spec(self) -> KeySpec:
        return self._spec

    @property
    def key(self) -> Any:
        """The library's key object (pyca, or PyCryptodome for ML-KEM-512)."""
        return self._key

    def __repr__(self) -> str:
        return f"PublicKeyHandle(spec={self._spec.value})"


class PrivateKeyHandle:
    """A parsed private key of a known key spec, safe to cache; never shows its material."""

    __slots__ = ("_key", "_public", "_spec")

    def __init__(self, spec: KeySpec, key: Any) -> None:
        self._spec = spec
        self._key = key
        self._public: PublicKeyHandle | None = None

    @property
    def spec(self) -> KeySpec:
        return self._spec

    @property
    def key(self) -> Any:
        """The library's key object; for the crypto modules, never for display."""
        return self._key

    def public(self) -> PublicKeyHandle:
        if self._public is None:
            self._public = PublicKeyHandle(self._spec, self._key.public_key())
        return self._public

    def __repr__(self) -> str:
        return f"PrivateKeyHandle(spec={self._spec.value}, material=<redacted>)"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        # Pickling would copy key material out of the process's control (into caches, logs
        # or other processes); cache the PKCS#8 wrapped instead.
        raise TypeError("PrivateKeyHandle cannot be pickled")

    def __copy__(self) -> PrivateKeyHandle:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> PrivateKeyHandle:
        return self


AnyKeyHandle: TypeAlias = PrivateKeyHandle | PublicKeyHandle


def _public_of(key: AnyKeyHandle) -> PublicKeyHandle:
    return key.public() if isinstance(key, PrivateKeyHandle) else key


# --- Generation and loading -----------------------------------------------------------------
def _asymmetric_info(spec: KeySpec) -> KeySpecInfo:
    info = keyspecs.spec_info(spec)
    if info.symmetric:
        raise ValueError(f"{spec.value} is not an asymmetric key spec")
    return keyspecs.require_supported(spec)


def _pkcs8(key: _PycaPrivate) -> bytes:
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def generate_private_key(spec: KeySpec) -> bytes:
    """A new private key of ``spec`` as PKCS#8 DER (seed form for ML-DSA and ML-KEM)."""
    info = _asymmetric_info(spec)
    if info.family is KeyFamily.RSA:
        return _pkcs8(rsa.generate_private_key(public_exponent=65537, key_size=info.key_size_bits))
    if info.family is KeyFamily.ECC:
        return _pkcs8(ec.generate_private_key(_CURVES[spec]()))
    if info.family is KeyFamily.EDWARDS:
        return _pkcs8(ed25519.Ed25519PrivateKey.generate())
    if info.family is KeyFamily.ML_DSA:
        return _pkcs8(_ML_DSA_PRIVATE[spec].generate())
    if spec is KeySpec.ML_KEM_512:
        der: bytes = _pcd_mlkem.generate(param_set=_pcd_mlkem.ML_KEM_512).export_key(format="DER")
        return der
    if info.family is KeyFamily.ML_KEM:
        return _pkcs8(_ML_KEM_PRIVATE[spec].generate())
    raise ValueError(f"no generator for {spec.value}")  # pragma: no cover - table is complete


def _der_elements(der: bytes) -> list[tuple[int, bytes]] | None:
    """The (tag, content) pairs inside one outer DER SEQUENCE spanning all of ``der``, or None.

    Only enough DER to tell the container formats apart (pyca also accepts PKCS#1 and SEC1
    private keys and PKCS#1 public keys, which KMS does not); the libraries parse the rest."""

    def read(pos: int) -> tuple[int, int, int] | None:
        if pos + 2 > len(der):
            return None
        tag, first = der[pos], der[pos + 1]
        pos += 2
        if first < 0x80:
            length = first
        else:
            count = first & 0x7F
            if count == 0 or count > 4 or pos + count > len(der):
                return None
            length = int.from_bytes(der[pos : pos + count], "big")
            pos += count
        if pos + length > len(der):
            return None
        return tag, pos, pos + length

    outer = read(0)
    if outer is None or outer[0] != 0x30 or outer[2] != len(der):
        return None
    elements: list[tuple[int, bytes]] = []
    pos = outer[1]
    while pos < outer[2]:
        item = read(pos)
        if item is None:
            return None
        elements.append((item[0], der[item[1] : item[2]]))
        pos = item[2]
    return elements


def is_private_key_info(der: bytes) -> bool:
    """True for the shape of PKCS#8 PrivateKeyInfo / OneAsymmetricKey (RFC 5958):
    SEQUENCE { INTEGER 0|1, SEQUENCE algorithm, OCTET STRING privateKey, ... }."""
    elements = _der_elements(der)
    return (
        elements is not None
        and len(elements) >= 3
        and elements[0] in ((0x02, b"\x00"), (0x02, b"\x01"))
        and elements[1][0] == 0x30
        and elements[2][0] == 0x04
    )


def is_subject_public_key_info(der: bytes) -> bool:
    """True for the shape of X.509 SubjectPublicKeyInfo (RFC 5280):
    SEQUENCE { SEQUENCE algorithm, BIT STRING subjectPublicKey }."""
    elements = _der_elements(der)
    return (
        elements is not None
        and len(elements) == 2
        and elements[0][0] == 0x30
        and elements[1][0] == 0x03
    )


def _mismatch(spec: KeySpec) -> IncorrectKeyMaterialException:
    # Names the spec only: nothing of the material reaches the message.
    return IncorrectKeyMaterialException(
        f"The key material is not a valid {spec.value} key in the expected encoding."
    )


def _matches(spec: KeySpec, info: KeySpecInfo, key: object, *, private: bool) -> bool:
    if info.family is KeyFamily.RSA:
        cls: type[Any] = rsa.RSAPrivateKey if private else rsa.RSAPublicKey
        return isinstance(key, cls) and key.key_size == info.key_size_bits
    if info.family is KeyFamily.ECC:
        cls = ec.EllipticCurvePrivateKey if private else ec.EllipticCurvePublicKey
        return isinstance(key, cls) and isinstance(key.curve, _CURVES[spec])
    if info.family is KeyFamily.EDWARDS:
        cls = ed25519.Ed25519PrivateKey if private else ed25519.Ed25519PublicKey
        return isinstance(key, cls)
    if info.family is KeyFamily.ML_DSA:
        return isinstance(key, (_ML_DSA_PRIVATE if private else _ML_DSA_PUBLIC)[spec])
    if info.family is KeyFamily.ML_KEM:
        return isinstance(key, (_ML_KEM_PRIVATE if private else _ML_KEM_PUBLIC)[spec])
    return False


def _load_mlkem512(der: bytes, *, private: bool) -> Any:
    try:
        key = _pcd_mlkem.import_key(der)
    except (ValueError, TypeError, IndexError) as exc:
        raise _mismatch(KeySpec.ML_KEM_512) from exc
    if key.param_set is not _pcd_mlkem.ML_KEM_512 or key.has_private() is not private:
        raise _mismatch(KeySpec.ML_KEM_512)
    return key


def load_private_key(
    spec: KeySpec, pkcs8_der: bytes, *, trusted: bool = False
) -> PrivateKeyHandle:
    """Parse an unencrypted PKCS#8 DER private key and check that it is a ``spec`` key.

    ``trusted``: the material is openkms's own (generated here, or imported and checked then,
    and authenticated by the root of trust's AEAD since), so OpenSSL's RSA consistency check
    is skipped: it costs 350 ms for RSA_4096 and holds the GIL, i.e. the whole server, each
    time a key is loaded. Material that comes from a caller is always checked.

    Raises UnsupportedOperationException for specs this build lacks and
    IncorrectKeyMaterialException for material that is not a ``spec`` key.
    """
    info = _asymmetric_info(spec)
    if not is_private_key_info(pkcs8_der):
        raise _mismatch(spec)
    if spec is KeySpec.ML_KEM_512:
        return PrivateKeyHandle(spec, _load_mlkem512(pkcs8_der, private=True))
    try:
        key = serialization.load_der_private_key(
            pkcs8_der, password=None, unsafe_skip_rsa_key_validation=trusted
        )
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise _mismatch(spec) from exc
    if not _matches(spec, info, key, private=True):
        raise _mismatch(spec)
    return PrivateKeyHandle(spec, key)


def load_public_key(spec: KeySpec, spki_der: bytes) -> PublicKeyHandle:
    """Parse a DER SubjectPublicKeyInfo and check that it is a ``spec`` key."""
    info = _asymmetric_info(spec)
    if not is_subject_public_key_info(spki_der):
        raise _mismatch(spec)
    if spec is KeySpec.ML_KEM_512:
        return PublicKeyHandle(spec, _load_mlkem512(spki_der, private=False), bytes(spki_der))
    try:
        key = serialization.load_der_public_key(spki_der)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise _mismatch(spec) from exc
    if not _matches(spec, info, key, private=False):
        raise _mismatch(spec)
    return PublicKeyHandle(spec, key, bytes(spki_der))


def public_key_der(key: AnyKeyHandle) -> bytes:
    """The DER SubjectPublicKeyInfo of ``key``, as GetPublicKey returns it."""
    public = _public_of(key)
    if public._der is None:
        if public.spec is KeySpec.ML_KEM_512:
            public._der = bytes(public.key.export_key(format="DER"))
        else:
            pyca_key: _PycaPublic = public.key
            public._der = pyca_key.public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
    return public._der


def public_key(handle: PrivateKeyHandle) -> PublicKeyHandle:
    return handle.public()


# --- Sign and Verify --------------------------------------------------------------------------
def check_signing_request(
    spec: KeySpec,
    algorithm: SigningAlgorithmSpec,
    message: bytes,
    message_type: MessageType,
) -> None:
    """Apply the Sign/Verify error rules of the module docstring, in order."""
    info = keyspecs.spec_info(spec)
    if algorithm not in info.algorithms_for(KeyUsageType.SIGN_VERIFY).signing_algorithms:
        raise InvalidKeyUsageException(
            f"Algorithm {algorithm.value} is incompatible with key spec {spec.value}."
        )
    keyspecs.require_supported(spec)
    reason = keyspecs.signing_algorithm_unsupported_reason(algorithm)
    if reason is not None:
        raise UnsupportedOperationException(reason)
    alg = keyspecs.signing_algorithm_info(algorithm)
    if message_type not in alg.message_types:
        raise ValidationException(
            f"Message type {message_type.value} is incompatible with algorithm {algorithm.value}."
        )
    if message_type is MessageType.RAW:
        if len(message) > MAX_MESSAGE_BYTES:
            raise ValidationException(
                "1 validation error detected: Value at 'message' failed to satisfy constraint: "
                f"Member must have length less than or equal to {MAX_MESSAGE_BYTES}"
            )
    elif message_type is MessageType.DIGEST:
        if len(message) != alg.digest_length:
            raise ValidationException(f"Digest is invalid length for algorithm {algorithm.value}.")
    elif len(message) != EXTERNAL_MU_BYTES:
        raise ValidationException(
            f"External mu must be {EXTERNAL_MU_BYTES} bytes for algorithm {algorithm.value}."
        )


def _hash_for(algorithm: SigningAlgorithmSpec, message_type: MessageType) -> Any:
    hash_algorithm = _HASHES[keyspecs.signing_algorithm_info(algorithm).hash_name]()
    # DIGEST: the message already is the hash, and is signed without hashing it again.
    return Prehashed(hash_algorithm) if message_type is MessageType.DIGEST else hash_algorithm


def _rsa_padding(algorithm: SigningAlgorithmSpec) -> padding.AsymmetricPadding:
    if algorithm.value.startswith("RSASSA_PSS_"):
        hash_algorithm = _HASHES[keyspecs.signing_algorithm_info(algorithm).hash_name]()
        # KMS: MGF1 with the message hash, and a salt as long as the digest.
        return padding.PSS(mgf=padding.MGF1(hash_algorithm), salt_length=hash_algorithm.digest_size)
    return padding.PKCS1v15()


def _nacl_secret_key(key: ed25519.Ed25519PrivateKey) -> bytes:
    # libsodium's secret key is seed || public key, derived from the RFC 8032 seed.
    _pk, sk = _nacl.crypto_sign_seed_keypair(key.private_bytes_raw())
    return bytes(sk)


def sign(
    handle: PrivateKeyHandle,
    algorithm: SigningAlgorithmSpec,
    message: bytes,
    message_type: MessageType = MessageType.RAW,
) -> bytes:
    """The signature of ``message`` under ``algorithm``, encoded as KMS returns it (PKCS #1 for
    RSA, DER for ECDSA, raw for EdDSA and ML-DSA)."""
    check_signing_request(handle.spec, algorithm, message, message_type)
    family = keyspecs.spec_info(handle.spec).family
    key = handle.key
    if family is KeyFamily.RSA:
        signature: bytes = key.sign(
            message, _rsa_padding(algorithm), _hash_for(algorithm, message_type)
        )
        return signature
    if family is KeyFamily.ECC:
        return bytes(key.sign(message, ec.ECDSA(_hash_for(algorithm, message_type))))
    if algorithm is SigningAlgorithmSpec.ED25519_SHA_512:
        return bytes(key.sign(message))
    if algorithm is SigningAlgorithmSpec.ED25519_PH_SHA_512:
        # Ed25519ph (RFC 8032 5.1, empty context) over M = the 64 bytes given: libsodium
        # applies PH(M) = SHA-512(M), the prehash KMS "still performs" on a DIGEST.
        state = _nacl.crypto_sign_ed25519ph_state()
        _nacl.crypto_sign_ed25519ph_update(state, bytes(message))
        return bytes(_nacl.crypto_sign_ed25519ph_final_create(state, _nacl_secret_key(key)))
    # ML-DSA, pure, with the empty context; EXTERNAL_MU signs the given representative.
    if message_type is MessageType.EXTERNAL_MU:
        return bytes(key.sign_mu(message))
    return bytes(key.sign(message))


def verify(
    key: AnyKeyHandle,
    algorithm: SigningAlgorithmSpec,
    message: bytes,
    signature: bytes,
    message_type: MessageType = MessageType.RAW,
) -> bool:
    """True when ``signature`` is valid; False for any invalid or malformed signature.
    Request errors (wrong algorithm, message type or length) raise as in :func:`sign`."""
    public = _public_of(key)
    check_signing_request(public.spec, algorithm, message, message_type)
    family = keyspecs.spec_info(public.spec).family
    pub = public.key
    try:
        if family is KeyFamily.RSA:
            pub.verify(
                signature, message, _rsa_padding(algorithm), _hash_for(algorithm, message_type)
            )
        elif family is KeyFamily.ECC:
            pub.verify(signature, message, ec.ECDSA(_hash_for(algorithm, message_type)))
        elif algorithm is SigningAlgorithmSpec.ED25519_SHA_512:
            pub.verify(signature, message)
        elif algorithm is SigningAlgorithmSpec.ED25519_PH_SHA_512:
            if len(signature) != 64:
                return False
            state = _nacl.crypto_sign_ed25519ph_state()
            _nacl.crypto_sign_ed25519ph_update(state, bytes(message))
            return bool(
                _nacl.crypto_sign_ed25519ph_final_verify(
                    state, bytes(signature), pub.public_bytes_raw()
                )
            )
        elif message_type is MessageType.EXTERNAL_MU:
            pub.verify_mu(signature, message)
        else:
            pub.verify(signature, message)
    except _VERIFY_FAILURES:
        return False
    return True


# --- RSA encryption -------------------------------------------------------------------------
def _check_encryption(spec: KeySpec, algorithm: EncryptionAlgorithmSpec) -> KeySpecInfo:
    info = keyspecs.spec_info(spec)
    if algorithm not in info.algorithms_for(KeyUsageType.ENCRYPT_DECRYPT).encryption_algorithms:
        raise InvalidKeyUsageException(
            f"Algorithm {algorithm.value} is incompatible with key spec {spec.value}."
        )
    keyspecs.require_supported(spec)
    if info.family is not KeyFamily.RSA:  # SM2PKE, SYMMETRIC_DEFAULT live elsewhere
        raise InvalidKeyUsageException(
            f"Algorithm {algorithm.value} is incompatible with key spec {spec.value}."
        )
    return info


def _oaep(algorithm: EncryptionAlgorithmSpec) -> padding.OAEP:
    hash_algorithm = _OAEP_HASHES[algorithm]()
    # KMS: the same hash for OAEP and MGF1, empty label.
    return padding.OAEP(mgf=padding.MGF1(hash_algorithm), algorithm=hash_algorithm, label=None)


def encrypt(key: AnyKeyHandle, algorithm: EncryptionAlgorithmSpec, plaintext: bytes) -> bytes:
    """RSAES-OAEP encryption with the public key, within the Encrypt plaintext limits."""
    public = _public_of(key)
    info = _check_encryption(public.spec, algorithm)
    limit = info.max_plaintext(algorithm)
    if limit is None or len(plaintext) > limit:
        raise ValidationException(
            f"Algorithm {algorithm.value} and key spec {public.spec.value} cannot encrypt data "
            f"larger than {limit} bytes."
        )
    return bytes(public.key.encrypt(plaintext, _oaep(algorithm)))


def decrypt(
    handle: PrivateKeyHandle, algorithm: EncryptionAlgorithmSpec, ciphertext: bytes
) -> bytes:
    """RSAES-OAEP decryption; every failure is the one fixed InvalidCiphertextException."""
    info = _check_encryption(handle.spec, algorithm)
    if len(ciphertext) != info.key_size_bits // 8:
        raise invalid_ciphertext()
    try:
        return bytes(handle.key.decrypt(ciphertext, _oaep(algorithm)))
    except (ValueError, TypeError) as exc:
        raise invalid_ciphertext() from exc


def message_digest(algorithm: SigningAlgorithmSpec, message: bytes) -> bytes:
    """The digest a caller would send with MessageType DIGEST (for tests and tooling)."""
    info = keyspecs.signing_algorithm_info(algorithm)
    if info.digest_length is None:
        raise ValueError(f"{algorithm.value} takes no MessageType DIGEST")
    return hashlib.new(info.hash_name, message).digest()
