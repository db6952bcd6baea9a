"""What every AWS KMS key spec allows and reports, as one read-only table.

Sources (the vendored botocore model carries no documentation, so the text was read from
botocore's ``kms/2014-11-01/service-2.json`` and the AWS developer guide):

* key usages per spec: CreateKey ``KeyUsage`` member documentation;
* algorithms per spec and usage: "Key spec reference" (symm-asymm-choose-key-spec) and its
  older copy ``asymmetric-key-specs.md`` / ``hmac.md`` in awsdocs/aws-kms-developer-guide;
* RSA plaintext limits: Encrypt operation documentation (214/190, 342/318, 470/446);
* HMAC key lengths: ``hmac.md`` ("The length of the key determines the MAC algorithm"), i.e.
  HMAC_224 is a 224-bit key, and so on;
* message types per signing algorithm: Sign/Verify ``MessageType`` member documentation and the
  ML-DSA guide page (RAW and EXTERNAL_MU only, no HashML-DSA);
* ML-KEM ciphertext lengths: Encapsulate ``SharedSecretCiphertextBlob`` documentation.

Whether this build implements a spec or algorithm is decided once, at import time, by probing
the libraries; see :func:`is_supported` and :func:`signing_algorithm_unsupported_reason`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, StrEnum

from cryptography.hazmat.backends.openssl.backend import backend as _pyca_backend

from openkms.errors import UnsupportedOperationException
from openkms.types import (
    CustomerMasterKeySpec,
    DataKeyPairSpec,
    EncapsulationAlgorithmSpec,
    EncryptionAlgorithmSpec,
    KeyAgreementAlgorithmSpec,
    KeySpec,
    KeyUsageType,
    MacAlgorithmSpec,
    MessageType,
    SigningAlgorithmSpec,
)

# The Sign/Verify/GenerateMac Message and the Encrypt Plaintext share PlaintextType (max 4096).
MAX_MESSAGE_BYTES = 4096
# FIPS 204 section 6.2: the message representative mu is 64 bytes.
EXTERNAL_MU_BYTES = 64
# FIPS 203: every ML-KEM shared secret is 32 bytes.
ML_KEM_SHARED_SECRET_BYTES = 32


class KeyFamily(StrEnum):
    SYMMETRIC = "SYMMETRIC"
    HMAC = "HMAC"
    RSA = "RSA"
    ECC = "ECC"
    EDWARDS = "EDWARDS"
    ML_DSA = "ML_DSA"
    ML_KEM = "ML_KEM"
    SM2 = "SM2"


# --- What the libraries of this build can do ------------------------------------------------
SM2_UNSUPPORTED_REASON = (
    "SM2 key specs are not supported by this openkms build: pyca/cryptography implements "
    "neither the SM2 curve operations nor SM2DSA (with SM3 and the distinguishing ID) nor "
    "SM2PKE, and no well-maintained, constant-time Python library that does is a dependency "
    "of openkms (AWS offers SM2 only in the China Regions)."
)


def _probe_pycryptodome_mlkem512() -> str | None:
    # pyca/cryptography 50 implements ML-KEM-768 and ML-KEM-1024 only; PyCryptodome >= 4.4
    # wraps mlkem-native for all three parameter sets, with the same PKCS#8 seed format.
    try:
        from Crypto.PublicKey import (  # type: ignore[import-not-found, unused-ignore]
            MLKEM,
        )
    except ImportError:
        return (
            "ML_KEM_512 is not supported by this openkms build: pyca/cryptography implements "
            "only ML-KEM-768 and ML-KEM-1024, and the optional dependency pycryptodome>=4.4 "
            "(mlkem-native) that provides ML-KEM-512 is not installed."
        )
    needed = ("ML_KEM_512", "import_key", "generate", "MLKEMKey")
    if not all(hasattr(MLKEM, name) for name in needed) or not all(
        hasattr(MLKEM.MLKEMKey, name) for name in ("_encaps", "_decaps", "export_key")
    ):
        return (
            "ML_KEM_512 is not supported by this openkms build: the installed pycryptodome "
            "does not offer the ML-KEM interface openkms was written against (4.4)."
        )
    return None


def _probe_pynacl_ed25519ph() -> str | None:
    # pyca/cryptography 50 has pure Ed25519 only; libsodium (through PyNaCl, also a PyCA
    # project) implements RFC 8032 Ed25519ph with an empty context.
    try:
        from nacl import bindings
    except ImportError:
        return (
            "ED25519_PH_SHA_512 is not supported by this openkms build: pyca/cryptography "
            "has no Ed25519ph, and the optional dependency PyNaCl (libsodium) that provides it "
            "is not installed."
        )
    needed = (
        "crypto_sign_seed_keypair",
        "crypto_sign_ed25519ph_state",
        "crypto_sign_ed25519ph_update",
        "crypto_sign_ed25519ph_final_create",
        "crypto_sign_ed25519ph_final_verify",
    )
    if not all(hasattr(bindings, name) for name in needed):
        return (
            "ED25519_PH_SHA_512 is not supported by this openkms build: the installed PyNaCl "
            "lacks the crypto_sign_ed25519ph bindings."
        )
    return None


def _pyca_reason(supported: bool, what: str) -> str | None:
    if supported:
        return None
    return (
        f"{what} key specs are not supported by this openkms build: the OpenSSL that "
        "pyca/cryptography is linked against does not implement them."
    )


_ML_DSA_REASON = _pyca_reason(_pyca_backend.mldsa_supported(), "ML-DSA")
_ML_KEM_PYCA_REASON = _pyca_reason(_pyca_backend.mlkem_supported(), "ML-KEM")
_ML_KEM_512_REASON = _probe_pycryptodome_mlkem512()
_ED25519PH_REASON = _probe_pynacl_ed25519ph()

#: True when ML_KEM_512 runs on PyCryptodome (read by the asymmetric and kem modules).
MLKEM512_AVAILABLE = _ML_KEM_512_REASON is None
#: True when ED25519_PH_SHA_512 runs on PyNaCl.
ED25519PH_AVAILABLE = _ED25519PH_REASON is None


# --- Signing algorithms -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SigningAlgorithmInfo:
    algorithm: SigningAlgorithmSpec
    # Name of the hash in hashlib/pyca terms ("sha256", "shake_256", "sm3").
    hash_name: str
    # Length the Message must have when MessageType is DIGEST (None: DIGEST not accepted).
    digest_length: int | None
    message_types: tuple[MessageType, ...]


_RAW_DIGEST = (MessageType.RAW, MessageType.DIGEST)

SIGNING_ALGORITHMS: dict[SigningAlgorithmSpec, SigningAlgorithmInfo] = {
    info.algorithm: info
    for info in (
        SigningAlgorithmInfo(SigningAlgorithmSpec.RSASSA_PSS_SHA_256, "sha256", 32, _RAW_DIGEST),
        SigningAlgorithmInfo(SigningAlgorithmSpec.RSASSA_PSS_SHA_384, "sha384", 48, _RAW_DIGEST),
        SigningAlgorithmInfo(SigningAlgorithmSpec.RSASSA_PSS_SHA_512, "sha512", 64, _RAW_DIGEST),
        SigningAlgorithmInfo(
            SigningAlgorithmSpec.RSASSA_PKCS1_V1_5_SHA_256, "sha256", 32, _RAW_DIGEST
        ),
        SigningAlgorithmInfo(
            SigningAlgorithmSpec.RSASSA_PKCS1_V1_5_SHA_384, "sha384", 48, _RAW_DIGEST
        ),
        SigningAlgorithmInfo(
            SigningAlgorithmSpec.RSASSA_PKCS1_V1_5_SHA_512, "sha512", 64, _RAW_DIGEST
        ),
        SigningAlgorithmInfo(SigningAlgorithmSpec.ECDSA_SHA_256, "sha256", 32, _RAW_DIGEST),
        SigningAlgorithmInfo(SigningAlgorithmSpec.ECDSA_SHA_384, "sha384", 48, _RAW_DIGEST),
        SigningAlgorithmInfo(SigningAlgorithmSpec.ECDSA_SHA_512, "sha512", 64, _RAW_DIGEST),
        # SM2DSA hashes Z (from the distinguishing ID) with the message under SM3; a DIGEST
        # is that 32-byte SM3 value computed by the caller.
        SigningAlgorithmInfo(SigningAlgorithmSpec.SM2_DSA, "sm3", 32, _RAW_DIGEST),
        # "ED25519_SHA_512 signing algorithm requires KMS MessageType:RAW".
        SigningAlgorithmInfo(
            SigningAlgorithmSpec.ED25519_SHA_512, "sha512", None, (MessageType.RAW,)
        ),
        # "ED25519_PH_SHA_512 signing algorithm requires KMS MessageType:DIGEST", and KMS still
        # applies the SHA-512 prehash to the 64 bytes it is given.
        SigningAlgorithmInfo(
            SigningAlgorithmSpec.ED25519_PH_SHA_512, "sha512", 64, (MessageType.DIGEST,)
        ),
        # ML-DSA in KMS: RAW or a 64-byte EXTERNAL_MU; HashML-DSA is not offered.
        SigningAlgorithmInfo(
            SigningAlgorithmSpec.ML_DSA_SHAKE_256,
            "shake_256",
            None,
            (MessageType.RAW, MessageType.EXTERNAL_MU),
        ),
    )
}


def signing_algorithm_info(algorithm: SigningAlgorithmSpec) -> SigningAlgorithmInfo:
    return SIGNING_ALGORITHMS[algorithm]


def signing_algorithm_unsupported_reason(algorithm: SigningAlgorithmSpec) -> str | None:
    """Why this build cannot run ``algorithm`` even on a supported key spec, or None."""
    if algorithm is SigningAlgorithmSpec.ED25519_PH_SHA_512:
        return _ED25519PH_REASON
    if algorithm is SigningAlgorithmSpec.SM2_DSA:
        return SM2_UNSUPPORTED_REASON
    if algorithm is SigningAlgorithmSpec.ML_DSA_SHAKE_256:
        return _ML_DSA_REASON
    return None


# --- Key specs -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class UsageAlgorithms:
    """The algorithm lists DescribeKey and GetPublicKey report for one key usage."""

    usage: KeyUsageType
    encryption_algorithms: tuple[EncryptionAlgorithmSpec, ...] = ()
    signing_algorithms: tuple[SigningAlgorithmSpec, ...] = ()
    mac_algorithms: tuple[MacAlgorithmSpec, ...] = ()
    key_agreement_algorithms: tuple[KeyAgreementAlgorithmSpec, ...] = ()
    encapsulation_algorithms: tuple[EncapsulationAlgorithmSpec, ...] = ()

    def metadata_fields(self) -> dict[str, list[str]]:
        """The non-empty lists under their KeyMetadata/GetPublicKeyResponse member names; AWS
        includes only the list that belongs to the key's usage."""
        fields: dict[str, tuple[Enum, ...]] = {
            "EncryptionAlgorithms": self.encryption_algorithms,
            "SigningAlgorithms": self.signing_algorithms,
            "MacAlgorithms": self.mac_algorithms,
            "KeyAgreementAlgorithms": self.key_agreement_algorithms,
            "EncapsulationAlgorithms": self.encapsulation_algorithms,
        }
        return {name: [a.value for a in algs] for name, algs in fields.items() if algs}


@dataclass(frozen=True, slots=True)
class KeySpecInfo:
    key_spec: KeySpec
    family: KeyFamily
    symmetric: bool
    key_usages: tuple[KeyUsageType, ...]
    usage_algorithms: tuple[UsageAlgorithms, ...]
    # RSA modulus, EC field size, HMAC/AES key length, ML-DSA/ML-KEM parameter set number.
    key_size_bits: int
    # The deprecated CustomerMasterKeySpec value, for specs that existed when it was current.
    customer_master_key_spec: CustomerMasterKeySpec | None = None
    # RSA: maximum Encrypt plaintext per OAEP algorithm.
    rsa_max_plaintext: tuple[tuple[EncryptionAlgorithmSpec, int], ...] = ()
    # HMAC: bytes of generated key material, and the lengths accepted for imported material
    # (digest size up to the hash's block size: shorter weakens the MAC below its tag length,
    # longer is hashed down by HMAC itself).
    hmac_key_length: int | None = None
    hmac_import_lengths: tuple[int, int] | None = None
    # ML-KEM: SharedSecretCiphertextBlob length.
    ml_kem_ciphertext_length: int | None = None
    # Why this build cannot use the spec at all (None when it can).
    unsupported_reason: str | None = None

    @property
    def supported(self) -> bool:
        return self.unsupported_reason is None

    def algorithms_for(self, usage: KeyUsageType) -> UsageAlgorithms:
        for entry in self.usage_algorithms:
            if entry.usage is usage:
                return entry
        return UsageAlgorithms(usage)

    def allows_usage(self, usage: KeyUsageType) -> bool:
        return usage in self.key_usages

    def max_plaintext(self, algorithm: EncryptionAlgorithmSpec) -> int | None:
        for alg, limit in self.rsa_max_plaintext:
            if alg is algorithm:
                return limit
        return None


_RSA_ENCRYPTION = (
    EncryptionAlgorithmSpec.RSAES_OAEP_SHA_1,
    EncryptionAlgorithmSpec.RSAES_OAEP_SHA_256,
)
# The order AWS lists them in DescribeKey/GetPublicKey.
_RSA_SIGNING = (
    SigningAlgorithmSpec.RSASSA_PKCS1_V1_5_SHA_256,
    SigningAlgorithmSpec.RSASSA_PKCS1_V1_5_SHA_384,
    SigningAlgorithmSpec.RSASSA_PKCS1_V1_5_SHA_512,
    SigningAlgorithmSpec.RSASSA_PSS_SHA_256,
    SigningAlgorithmSpec.RSASSA_PSS_SHA_384,
    SigningAlgorithmSpec.RSASSA_PSS_SHA_512,
)
_ECDH = (KeyAgreementAlgorithmSpec.ECDH,)


def _oaep_limit(modulus_bits: int, hash_bytes: int) -> int:
    # RFC 8017 section 7.1.1: mLen <= k - 2hLen - 2.
    return modulus_bits // 8 - 2 * hash_bytes - 2


def _rsa(spec: KeySpec, bits: int, cmk: CustomerMasterKeySpec) -> KeySpecInfo:
    return KeySpecInfo(
        key_spec=spec,
        family=KeyFamily.RSA,
        symmetric=False,
        key_usages=(KeyUsageType.ENCRYPT_DECRYPT, KeyUsageType.SIGN_VERIFY),
        usage_algorithms=(
            UsageAlgorithms(KeyUsageType.ENCRYPT_DECRYPT, encryption_algorithms=_RSA_ENCRYPTION),
            UsageAlgorithms(KeyUsageType.SIGN_VERIFY, signing_algorithms=_RSA_SIGNING),
        ),
        key_size_bits=bits,
        customer_master_key_spec=cmk,
        rsa_max_plaintext=(
            (EncryptionAlgorithmSpec.RSAES_OAEP_SHA_1, _oaep_limit(bits, 20)),
            (EncryptionAlgorithmSpec.RSAES_OAEP_SHA_256, _oaep_limit(bits, 32)),
        ),
    )


def _ecc(
    spec: KeySpec,
    bits: int,
    cmk: CustomerMasterKeySpec,
    signing: SigningAlgorithmSpec,
    *,
    key_agreement: bool,
) -> KeySpecInfo:
    usages = [UsageAlgorithms(KeyUsageType.SIGN_VERIFY, signing_algorithms=(signing,))]
    if key_agreement:
        usages.append(UsageAlgorithms(KeyUsageType.KEY_AGREEMENT, key_agreement_algorithms=_ECDH))
    return KeySpecInfo(
        key_spec=spec,
        family=KeyFamily.ECC,
        symmetric=False,
        key_usages=tuple(u.usage for u in usages),
        usage_algorithms=tuple(usages),
        key_size_bits=bits,
        customer_master_key_spec=cmk,
    )


def _hmac(
    spec: KeySpec, bits: int, block_bytes: int, cmk: CustomerMasterKeySpec, mac: MacAlgorithmSpec
) -> KeySpecInfo:
    return KeySpecInfo(
        key_spec=spec,
        family=KeyFamily.HMAC,
        symmetric=True,
        key_usages=(KeyUsageType.GENERATE_VERIFY_MAC,),
        usage_algorithms=(
            UsageAlgorithms(KeyUsageType.GENERATE_VERIFY_MAC, mac_algorithms=(mac,)),
        ),
        key_size_bits=bits,
        customer_master_key_spec=cmk,
        hmac_key_length=bits // 8,
        hmac_import_lengths=(bits // 8, block_bytes),
    )


def _ml_dsa(spec: KeySpec, level: int) -> KeySpecInfo:
    return KeySpecInfo(
        key_spec=spec,
        family=KeyFamily.ML_DSA,
        symmetric=False,
        key_usages=(KeyUsageType.SIGN_VERIFY,),
        usage_algorithms=(
            UsageAlgorithms(
                KeyUsageType.SIGN_VERIFY,
                signing_algorithms=(SigningAlgorithmSpec.ML_DSA_SHAKE_256,),
            ),
        ),
        key_size_bits=level,
        unsupported_reason=_ML_DSA_REASON,
    )


def _ml_kem(spec: KeySpec, level: int, ciphertext_length: int, reason: str | None) -> KeySpecInfo:
    return KeySpecInfo(
        key_spec=spec,
        family=KeyFamily.ML_KEM,
        symmetric=False,
        key_usages=(KeyUsageType.ENCAPSULATE_DECAPSULATE,),
        usage_algorithms=(
            UsageAlgorithms(
                KeyUsageType.ENCAPSULATE_DECAPSULATE,
                encapsulation_algorithms=(EncapsulationAlgorithmSpec.ML_KEM,),
            ),
        ),
        key_size_bits=level,
        ml_kem_ciphertext_length=ciphertext_length,
        unsupported_reason=reason,
    )


_CMK = CustomerMasterKeySpec
_MAC = MacAlgorithmSpec
_SIG = SigningAlgorithmSpec

KEY_SPECS: dict[KeySpec, KeySpecInfo] = {
    info.key_spec: info
    for info in (
        KeySpecInfo(
            key_spec=KeySpec.SYMMETRIC_DEFAULT,
            family=KeyFamily.SYMMETRIC,
            symmetric=True,
            key_usages=(KeyUsageType.ENCRYPT_DECRYPT,),
            usage_algorithms=(
                UsageAlgorithms(
                    KeyUsageType.ENCRYPT_DECRYPT,
                    encryption_algorithms=(EncryptionAlgorithmSpec.SYMMETRIC_DEFAULT,),
                ),
            ),
            key_size_bits=256,
            customer_master_key_spec=_CMK.SYMMETRIC_DEFAULT,
        ),
        _hmac(KeySpec.HMAC_224, 224, 64, _CMK.HMAC_224, _MAC.HMAC_SHA_224),
        _hmac(KeySpec.HMAC_256, 256, 64, _CMK.HMAC_256, _MAC.HMAC_SHA_256),
        _hmac(KeySpec.HMAC_384, 384, 128, _CMK.HMAC_384, _MAC.HMAC_SHA_384),
        _hmac(KeySpec.HMAC_512, 512, 128, _CMK.HMAC_512, _MAC.HMAC_SHA_512),
        _rsa(KeySpec.RSA_2048, 2048, _CMK.RSA_2048),
        _rsa(KeySpec.RSA_3072, 3072, _CMK.RSA_3072),
        _rsa(KeySpec.RSA_4096, 4096, _CMK.RSA_4096),
        # AWS pairs each curve with one hash (key spec reference, "Supported signing
        # algorithms for ECC key specs"); only the NIST curves do key agreement.
        _ecc(
            KeySpec.ECC_NIST_P256, 256, _CMK.ECC_NIST_P256, _SIG.ECDSA_SHA_256, key_agreement=True
        ),
        _ecc(
            KeySpec.ECC_NIST_P384, 384, _CMK.ECC_NIST_P384, _SIG.ECDSA_SHA_384, key_agreement=True
        ),
        _ecc(
            KeySpec.ECC_NIST_P521, 521, _CMK.ECC_NIST_P521, _SIG.ECDSA_SHA_512, key_agreement=True
        ),
        _ecc(
            KeySpec.ECC_SECG_P256_K1,
            256,
            _CMK.ECC_SECG_P256_K1,
            _SIG.ECDSA_SHA_256,
            key_agreement=False,
        ),
        KeySpecInfo(
            key_spec=KeySpec.ECC_NIST_EDWARDS25519,
            family=KeyFamily.EDWARDS,
            symmetric=False,
            # "ECC_NIST_EDWARDS25519 (ed25519) - signing and verification only".
            key_usages=(KeyUsageType.SIGN_VERIFY,),
            usage_algorithms=(
                UsageAlgorithms(
                    KeyUsageType.SIGN_VERIFY,
                    signing_algorithms=(_SIG.ED25519_SHA_512, _SIG.ED25519_PH_SHA_512),
                ),
            ),
            key_size_bits=256,
        ),
        _ml_dsa(KeySpec.ML_DSA_44, 44),
        _ml_dsa(KeySpec.ML_DSA_65, 65),
        _ml_dsa(KeySpec.ML_DSA_87, 87),
        _ml_kem(KeySpec.ML_KEM_512, 512, 768, _ML_KEM_512_REASON),
        _ml_kem(KeySpec.ML_KEM_768, 768, 1088, _ML_KEM_PYCA_REASON),
        _ml_kem(KeySpec.ML_KEM_1024, 1024, 1568, _ML_KEM_PYCA_REASON),
        KeySpecInfo(
            key_spec=KeySpec.SM2,
            family=KeyFamily.SM2,
            symmetric=False,
            key_usages=(
                KeyUsageType.ENCRYPT_DECRYPT,
                KeyUsageType.SIGN_VERIFY,
                KeyUsageType.KEY_AGREEMENT,
            ),
            usage_algorithms=(
                UsageAlgorithms(
                    KeyUsageType.ENCRYPT_DECRYPT,
                    encryption_algorithms=(EncryptionAlgorithmSpec.SM2_PKE,),
                ),
                UsageAlgorithms(KeyUsageType.SIGN_VERIFY, signing_algorithms=(_SIG.SM2_DSA,)),
                UsageAlgorithms(KeyUsageType.KEY_AGREEMENT, key_agreement_algorithms=_ECDH),
            ),
            key_size_bits=256,
            customer_master_key_spec=_CMK.SM2,
            unsupported_reason=SM2_UNSUPPORTED_REASON,
        ),
    )
}


def spec_info(spec: KeySpec) -> KeySpecInfo:
    return KEY_SPECS[spec]


def is_supported(spec: KeySpec) -> bool:
    return KEY_SPECS[spec].supported


def unsupported_reason(spec: KeySpec) -> str | None:
    return KEY_SPECS[spec].unsupported_reason


def metadata_algorithms(
    key_spec: KeySpec | str, key_usage: KeyUsageType | str
) -> dict[str, list[str]]:
    """The algorithm members of KeyMetadata/GetPublicKeyResponse for a key of this spec and
    usage, e.g. ``{"SigningAlgorithms": ["ECDSA_SHA_256"]}``; ``{}`` for a usage the spec
    does not allow."""
    info = KEY_SPECS[KeySpec(key_spec)]
    return info.algorithms_for(KeyUsageType(key_usage)).metadata_fields()


def require_supported(spec: KeySpec) -> KeySpecInfo:
    """The spec's info, or ``UnsupportedOperationException`` carrying the reason."""
    info = KEY_SPECS[spec]
    if info.unsupported_reason is not None:
        raise UnsupportedOperationException(info.unsupported_reason)
    return info


# --- Data key pairs ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DataKeyPairSpecInfo:
    data_key_pair_spec: DataKeyPairSpec
    # The key spec whose generator makes the pair (same name in both enums).
    key_spec: KeySpec

    @property
    def unsupported_reason(self) -> str | None:
        return KEY_SPECS[self.key_spec].unsupported_reason

    @property
    def supported(self) -> bool:
        return self.unsupported_reason is None


# GenerateDataKeyPair: RSA, NIST and SECG curves, Ed25519, ML-KEM and SM2; no ML-DSA (the
# DataKeyPairSpec enum of the model has none).
DATA_KEY_PAIR_SPECS: dict[DataKeyPairSpec, DataKeyPairSpecInfo] = {
    spec: DataKeyPairSpecInfo(spec, KeySpec(spec.value)) for spec in DataKeyPairSpec
}


def data_key_pair_info(spec: DataKeyPairSpec) -> DataKeyPairSpecInfo:
    return DATA_KEY_PAIR_SPECS[spec]
