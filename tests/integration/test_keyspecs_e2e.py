"""Issue 3 acceptance: every key spec, key usage and algorithm through boto3 against a real server.

Each (key spec, key usage) pair is created once per xdist worker (lazily, by the ``key`` fixture)
and every result is checked against an independent computation: signatures are verified with
pyca/cryptography (and PyNaCl for Ed25519ph) using the DER public key from GetPublicKey, shared
secrets are recomputed by the peer, ciphertexts made outside decrypt inside, data key pairs are
decrypted back and matched to their public halves.

The expected algorithm lists are written out here from AWS's key spec reference, not read from
the server's own table.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from botocore.client import BaseClient
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa, mlkem, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from tests.conformance import expect_error

# --- the table under test (AWS key spec reference) -----------------------------------------------
RSA_SIGNING = [
    "RSASSA_PKCS1_V1_5_SHA_256",
    "RSASSA_PKCS1_V1_5_SHA_384",
    "RSASSA_PKCS1_V1_5_SHA_512",
    "RSASSA_PSS_SHA_256",
    "RSASSA_PSS_SHA_384",
    "RSASSA_PSS_SHA_512",
]
RSA_ENCRYPTION = ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]

# (KeySpec, KeyUsage) -> the algorithm members DescribeKey and GetPublicKey report.
EXPECTED: dict[tuple[str, str], dict[str, list[str]]] = {
    ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT"): {"EncryptionAlgorithms": ["SYMMETRIC_DEFAULT"]},
    ("HMAC_224", "GENERATE_VERIFY_MAC"): {"MacAlgorithms": ["HMAC_SHA_224"]},
    ("HMAC_256", "GENERATE_VERIFY_MAC"): {"MacAlgorithms": ["HMAC_SHA_256"]},
    ("HMAC_384", "GENERATE_VERIFY_MAC"): {"MacAlgorithms": ["HMAC_SHA_384"]},
    ("HMAC_512", "GENERATE_VERIFY_MAC"): {"MacAlgorithms": ["HMAC_SHA_512"]},
    ("RSA_2048", "ENCRYPT_DECRYPT"): {"EncryptionAlgorithms": RSA_ENCRYPTION},
    ("RSA_3072", "ENCRYPT_DECRYPT"): {"EncryptionAlgorithms": RSA_ENCRYPTION},
    ("RSA_4096", "ENCRYPT_DECRYPT"): {"EncryptionAlgorithms": RSA_ENCRYPTION},
    ("RSA_2048", "SIGN_VERIFY"): {"SigningAlgorithms": RSA_SIGNING},
    ("RSA_3072", "SIGN_VERIFY"): {"SigningAlgorithms": RSA_SIGNING},
    ("RSA_4096", "SIGN_VERIFY"): {"SigningAlgorithms": RSA_SIGNING},
    ("ECC_NIST_P256", "SIGN_VERIFY"): {"SigningAlgorithms": ["ECDSA_SHA_256"]},
    ("ECC_NIST_P384", "SIGN_VERIFY"): {"SigningAlgorithms": ["ECDSA_SHA_384"]},
    ("ECC_NIST_P521", "SIGN_VERIFY"): {"SigningAlgorithms": ["ECDSA_SHA_512"]},
    ("ECC_SECG_P256K1", "SIGN_VERIFY"): {"SigningAlgorithms": ["ECDSA_SHA_256"]},
    ("ECC_NIST_P256", "KEY_AGREEMENT"): {"KeyAgreementAlgorithms": ["ECDH"]},
    ("ECC_NIST_P384", "KEY_AGREEMENT"): {"KeyAgreementAlgorithms": ["ECDH"]},
    ("ECC_NIST_P521", "KEY_AGREEMENT"): {"KeyAgreementAlgorithms": ["ECDH"]},
    ("ECC_NIST_EDWARDS25519", "SIGN_VERIFY"): {
        "SigningAlgorithms": ["ED25519_SHA_512", "ED25519_PH_SHA_512"]
    },
    ("ML_DSA_44", "SIGN_VERIFY"): {"SigningAlgorithms": ["ML_DSA_SHAKE_256"]},
    ("ML_DSA_65", "SIGN_VERIFY"): {"SigningAlgorithms": ["ML_DSA_SHAKE_256"]},
    ("ML_DSA_87", "SIGN_VERIFY"): {"SigningAlgorithms": ["ML_DSA_SHAKE_256"]},
    ("ML_KEM_512", "ENCAPSULATE_DECAPSULATE"): {"EncapsulationAlgorithms": ["ML_KEM"]},
    ("ML_KEM_768", "ENCAPSULATE_DECAPSULATE"): {"EncapsulationAlgorithms": ["ML_KEM"]},
    ("ML_KEM_1024", "ENCAPSULATE_DECAPSULATE"): {"EncapsulationAlgorithms": ["ML_KEM"]},
}
ALL_ALGORITHM_MEMBERS = (
    "EncryptionAlgorithms",
    "SigningAlgorithms",
    "MacAlgorithms",
    "KeyAgreementAlgorithms",
    "EncapsulationAlgorithms",
)
# Key specs that existed when CustomerMasterKeySpec was current.
LEGACY_SPECS = {
    "SYMMETRIC_DEFAULT",
    "HMAC_224",
    "HMAC_256",
    "HMAC_384",
    "HMAC_512",
    "RSA_2048",
    "RSA_3072",
    "RSA_4096",
    "ECC_NIST_P256",
    "ECC_NIST_P384",
    "ECC_NIST_P521",
    "ECC_SECG_P256K1",
}
INVALID_USAGES = [
    ("SYMMETRIC_DEFAULT", "SIGN_VERIFY"),
    ("RSA_2048", "GENERATE_VERIFY_MAC"),
    ("RSA_2048", "KEY_AGREEMENT"),
    ("ECC_SECG_P256K1", "KEY_AGREEMENT"),
    ("ECC_NIST_EDWARDS25519", "KEY_AGREEMENT"),
    ("ECC_NIST_P256", "ENCRYPT_DECRYPT"),
    ("ML_DSA_44", "ENCRYPT_DECRYPT"),
    ("ML_KEM_768", "SIGN_VERIFY"),
    ("HMAC_256", "ENCRYPT_DECRYPT"),
]

# signing algorithm -> (hash, digest length or None when DIGEST is not accepted)
HASHES: dict[str, tuple[str, int | None]] = {
    "RSASSA_PKCS1_V1_5_SHA_256": ("sha256", 32),
    "RSASSA_PKCS1_V1_5_SHA_384": ("sha384", 48),
    "RSASSA_PKCS1_V1_5_SHA_512": ("sha512", 64),
    "RSASSA_PSS_SHA_256": ("sha256", 32),
    "RSASSA_PSS_SHA_384": ("sha384", 48),
    "RSASSA_PSS_SHA_512": ("sha512", 64),
    "ECDSA_SHA_256": ("sha256", 32),
    "ECDSA_SHA_384": ("sha384", 48),
    "ECDSA_SHA_512": ("sha512", 64),
    "ED25519_SHA_512": ("sha512", None),
    "ED25519_PH_SHA_512": ("sha512", 64),
    "ML_DSA_SHAKE_256": ("shake_256", None),
}
PYCA_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
SIGNING_CASES = [
    (spec, alg)
    for (spec, usage), members in EXPECTED.items()
    if usage == "SIGN_VERIFY"
    for alg in members["SigningAlgorithms"]
]
RSA_LIMITS = [
    ("RSA_2048", "RSAES_OAEP_SHA_1", 214),
    ("RSA_2048", "RSAES_OAEP_SHA_256", 190),
    ("RSA_3072", "RSAES_OAEP_SHA_1", 342),
    ("RSA_3072", "RSAES_OAEP_SHA_256", 318),
    ("RSA_4096", "RSAES_OAEP_SHA_1", 470),
    ("RSA_4096", "RSAES_OAEP_SHA_256", 446),
]
HMAC_SIZES = {"HMAC_224": 28, "HMAC_256": 32, "HMAC_384": 48, "HMAC_512": 64}
ECDH_CURVES: dict[str, tuple[type[ec.EllipticCurve], int]] = {
    "ECC_NIST_P256": (ec.SECP256R1, 32),
    "ECC_NIST_P384": (ec.SECP384R1, 48),
    "ECC_NIST_P521": (ec.SECP521R1, 66),
}
ML_KEM_CIPHERTEXT = {"ML_KEM_512": 768, "ML_KEM_768": 1088, "ML_KEM_1024": 1568}
DATA_KEY_PAIR_SPECS = [
    "RSA_2048",
    "RSA_3072",
    "RSA_4096",
    "ECC_NIST_P256",
    "ECC_NIST_P384",
    "ECC_NIST_P521",
    "ECC_SECG_P256K1",
    "ECC_NIST_EDWARDS25519",
    "ML_KEM_512",
    "ML_KEM_768",
    "ML_KEM_1024",
]
ED25519_ORDER = 2**252 + 27742317777372353535851937790883648493
MESSAGE = b"openkms key spec acceptance: the quick brown fox jumps over the lazy dog"


# --- fixtures ----------------------------------------------------------------------------------
KeyFactory = Callable[[str, str], dict[str, Any]]


@pytest.fixture(scope="module")
def key(kms: BaseClient) -> KeyFactory:
    """``key(spec, usage)``: the CreateKey KeyMetadata of a key made once per worker."""
    made: dict[tuple[str, str], dict[str, Any]] = {}

    def get(spec: str, usage: str) -> dict[str, Any]:
        if (spec, usage) not in made:
            made[(spec, usage)] = kms.create_key(
                KeySpec=spec, KeyUsage=usage, Description=f"keyspecs-e2e {spec} {usage}"
            )["KeyMetadata"]
        return made[(spec, usage)]

    return get


@pytest.fixture(scope="module")
def public_key(kms: BaseClient, key: KeyFactory) -> Callable[[str, str], bytes]:
    cache: dict[tuple[str, str], bytes] = {}

    def get(spec: str, usage: str) -> bytes:
        if (spec, usage) not in cache:
            cache[(spec, usage)] = kms.get_public_key(KeyId=key(spec, usage)["KeyId"])["PublicKey"]
        return cache[(spec, usage)]

    return get


def fresh_key(kms: BaseClient, spec: str, usage: str) -> dict[str, Any]:
    """A key of its own, for tests that change its state."""
    meta: dict[str, Any] = kms.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]
    return meta


# --- independent verification ------------------------------------------------------------------
def verify_locally(
    public_der: bytes, algorithm: str, message: bytes, signature: bytes, *, digest: bool = False
) -> None:
    """Raises InvalidSignature unless ``signature`` is valid under ``public_der``."""
    pub = serialization.load_der_public_key(public_der)
    hash_name, _length = HASHES[algorithm]
    if algorithm.startswith("RSASSA_"):
        assert isinstance(pub, rsa.RSAPublicKey)
        h = PYCA_HASHES[hash_name]()
        pad: padding.AsymmetricPadding = (
            padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size)
            if "_PSS_" in algorithm
            else padding.PKCS1v15()
        )
        pub.verify(signature, message, pad, Prehashed(h) if digest else h)
    elif algorithm.startswith("ECDSA_"):
        assert isinstance(pub, ec.EllipticCurvePublicKey)
        h = PYCA_HASHES[hash_name]()
        pub.verify(signature, message, ec.ECDSA(Prehashed(h) if digest else h))
    elif algorithm == "ED25519_SHA_512":
        assert isinstance(pub, ed25519.Ed25519PublicKey)
        pub.verify(signature, message)
    elif algorithm == "ED25519_PH_SHA_512":
        # RFC 8032 Ed25519ph, empty context, over M = the 64-byte digest KMS was given: KMS
        # "still performs the SHA-512 prehash", so the input is hashed twice.
        from nacl import bindings
        from nacl.exceptions import BadSignatureError

        assert isinstance(pub, ed25519.Ed25519PublicKey)
        state = bindings.crypto_sign_ed25519ph_state()
        bindings.crypto_sign_ed25519ph_update(state, message)
        try:
            ok = bindings.crypto_sign_ed25519ph_final_verify(
                state, signature, pub.public_bytes_raw()
            )
        except BadSignatureError as exc:
            raise InvalidSignature() from exc
        if not ok:
            raise InvalidSignature()
    elif algorithm == "ML_DSA_SHAKE_256":
        assert isinstance(
            pub, (mldsa.MLDSA44PublicKey, mldsa.MLDSA65PublicKey, mldsa.MLDSA87PublicKey)
        )
        pub.verify(signature, message)
    else:  # pragma: no cover - table is complete
        raise AssertionError(algorithm)


def digest_of(algorithm: str, message: bytes) -> bytes:
    return hashlib.new(HASHES[algorithm][0], message).digest()


def flip(data: bytes, index: int = -1) -> bytes:
    out = bytearray(data)
    out[index] ^= 0x01
    return bytes(out)


# --- CreateKey, DescribeKey, GetPublicKey -------------------------------------------------------
@pytest.mark.parametrize(("spec", "usage"), list(EXPECTED), ids=lambda v: str(v))
def test_create_describe_and_get_public_key(
    kms: BaseClient, server: Any, key: KeyFactory, spec: str, usage: str
) -> None:
    created = key(spec, usage)
    expected = EXPECTED[(spec, usage)]
    for meta in (created, kms.describe_key(KeyId=created["KeyId"])["KeyMetadata"]):
        assert meta["KeySpec"] == spec
        assert meta["KeyUsage"] == usage
        assert meta["KeyState"] == "Enabled"
        assert meta["Enabled"] is True
        assert meta["Origin"] == "AWS_KMS"
        assert meta["Arn"] == server.key_arn(created["KeyId"])
        for member in ALL_ALGORITHM_MEMBERS:
            if member in expected:
                assert sorted(meta[member]) == sorted(expected[member]), member
            else:
                assert member not in meta, f"{member} reported for {spec}/{usage}"
        if spec in LEGACY_SPECS:
            assert meta["CustomerMasterKeySpec"] == spec
        else:
            assert "CustomerMasterKeySpec" not in meta
        # Only symmetric encryption keys have a rotating current key material id.
        assert ("CurrentKeyMaterialId" in meta) == (spec == "SYMMETRIC_DEFAULT")
    if "SigningAlgorithms" in expected and spec.startswith("RSA_"):
        # AWS lists the RSA signing algorithms PKCS #1 first, then PSS.
        assert created["SigningAlgorithms"] == RSA_SIGNING

    if spec == "SYMMETRIC_DEFAULT" or spec.startswith("HMAC_"):
        expect_error("UnsupportedOperationException", kms.get_public_key, KeyId=created["KeyId"])
        return
    got = kms.get_public_key(KeyId=created["KeyId"])
    assert got["KeyId"] == created["Arn"]
    assert got["KeySpec"] == spec
    assert got["KeyUsage"] == usage
    for member in ALL_ALGORITHM_MEMBERS:
        if member in expected:
            assert sorted(got[member]) == sorted(expected[member]), member
        else:
            assert member not in got
    if spec in LEGACY_SPECS:
        assert got["CustomerMasterKeySpec"] == spec
    # The public key is a DER SubjectPublicKeyInfo of the right type and size.
    if spec == "ML_KEM_512":
        from Crypto.PublicKey import MLKEM

        assert MLKEM.import_key(got["PublicKey"]).param_set is MLKEM.ML_KEM_512
        return
    pub = serialization.load_der_public_key(got["PublicKey"])
    reencoded = pub.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert reencoded == got["PublicKey"]
    if spec.startswith("RSA_"):
        assert isinstance(pub, rsa.RSAPublicKey)
        assert pub.key_size == int(spec.split("_")[1])
        assert pub.public_numbers().e == 65537
    elif spec.startswith("ECC_NIST_P") or spec == "ECC_SECG_P256K1":
        assert isinstance(pub, ec.EllipticCurvePublicKey)
        names = {
            "ECC_NIST_P256": "secp256r1",
            "ECC_NIST_P384": "secp384r1",
            "ECC_NIST_P521": "secp521r1",
            "ECC_SECG_P256K1": "secp256k1",
        }
        assert pub.curve.name == names[spec]
    elif spec == "ECC_NIST_EDWARDS25519":
        assert isinstance(pub, ed25519.Ed25519PublicKey)
    else:
        classes: dict[str, type[Any]] = {
            "ML_DSA_44": mldsa.MLDSA44PublicKey,
            "ML_DSA_65": mldsa.MLDSA65PublicKey,
            "ML_DSA_87": mldsa.MLDSA87PublicKey,
            "ML_KEM_768": mlkem.MLKEM768PublicKey,
            "ML_KEM_1024": mlkem.MLKEM1024PublicKey,
        }
        assert isinstance(pub, classes[spec])


def test_default_key_is_symmetric_encryption(kms: BaseClient) -> None:
    meta = kms.create_key()["KeyMetadata"]
    assert (meta["KeySpec"], meta["KeyUsage"]) == ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")
    assert meta["EncryptionAlgorithms"] == ["SYMMETRIC_DEFAULT"]
    # The deprecated CustomerMasterKeySpec still names a spec.
    legacy = kms.create_key(CustomerMasterKeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
    assert legacy["KeyMetadata"]["KeySpec"] == "ECC_NIST_P256"


@pytest.mark.parametrize(("spec", "usage"), INVALID_USAGES, ids=lambda v: str(v))
def test_incompatible_key_usage_is_rejected(kms: BaseClient, spec: str, usage: str) -> None:
    expect_error("ValidationException", kms.create_key, KeySpec=spec, KeyUsage=usage)


@pytest.mark.parametrize("usage", ["ENCRYPT_DECRYPT", "SIGN_VERIFY", "KEY_AGREEMENT"])
def test_sm2_is_unsupported(kms: BaseClient, usage: str) -> None:
    expect_error("UnsupportedOperationException", kms.create_key, KeySpec="SM2", KeyUsage=usage)


def test_sm2_data_key_pair_is_unsupported(kms: BaseClient, key: KeyFactory) -> None:
    key_id = key("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")["KeyId"]
    expect_error(
        "UnsupportedOperationException", kms.generate_data_key_pair, KeyId=key_id, KeyPairSpec="SM2"
    )
    expect_error(
        "UnsupportedOperationException",
        kms.generate_data_key_pair_without_plaintext,
        KeyId=key_id,
        KeyPairSpec="SM2",
    )


# --- Sign / Verify ----------------------------------------------------------------------------
@pytest.mark.parametrize(("spec", "algorithm"), SIGNING_CASES, ids=lambda v: str(v))
def test_sign_and_verify(
    kms: BaseClient,
    key: KeyFactory,
    public_key: Callable[[str, str], bytes],
    spec: str,
    algorithm: str,
) -> None:
    meta = key(spec, "SIGN_VERIFY")
    pub = public_key(spec, "SIGN_VERIFY")
    _hash, digest_length = HASHES[algorithm]

    if algorithm != "ED25519_PH_SHA_512":
        # RAW: KMS hashes the message itself.
        signed = kms.sign(
            KeyId=meta["KeyId"], Message=MESSAGE, MessageType="RAW", SigningAlgorithm=algorithm
        )
        assert signed["KeyId"] == meta["Arn"]
        assert signed["SigningAlgorithm"] == algorithm
        verify_locally(pub, algorithm, MESSAGE, signed["Signature"])
        verified = kms.verify(
            KeyId=meta["KeyId"],
            Message=MESSAGE,
            MessageType="RAW",
            Signature=signed["Signature"],
            SigningAlgorithm=algorithm,
        )
        assert verified["SignatureValid"] is True
        assert verified["SigningAlgorithm"] == algorithm
        assert verified["KeyId"] == meta["Arn"]
        # MessageType defaults to RAW.
        assert kms.verify(
            KeyId=meta["KeyId"],
            Message=MESSAGE,
            Signature=signed["Signature"],
            SigningAlgorithm=algorithm,
        )["SignatureValid"]
        # A one-byte message (the model's minimum) is a message too.
        short = kms.sign(KeyId=meta["KeyId"], Message=b"\x00", SigningAlgorithm=algorithm)
        verify_locally(pub, algorithm, b"\x00", short["Signature"])
        if spec.startswith("RSA_") and "_PKCS1_" in algorithm:
            assert len(signed["Signature"]) == int(spec.split("_")[1]) // 8
    else:
        expect_error(
            "ValidationException",
            kms.sign,
            KeyId=meta["KeyId"],
            Message=MESSAGE,
            MessageType="RAW",
            SigningAlgorithm=algorithm,
        )

    if digest_length is None:
        # ED25519_SHA_512 and ML-DSA take no DIGEST.
        expect_error(
            "ValidationException",
            kms.sign,
            KeyId=meta["KeyId"],
            Message=hashlib.sha512(MESSAGE).digest(),
            MessageType="DIGEST",
            SigningAlgorithm=algorithm,
        )
        return
    digest = digest_of(algorithm, MESSAGE)
    assert len(digest) == digest_length
    signed = kms.sign(
        KeyId=meta["KeyId"], Message=digest, MessageType="DIGEST", SigningAlgorithm=algorithm
    )
    verify_locally(pub, algorithm, digest, signed["Signature"], digest=True)
    assert kms.verify(
        KeyId=meta["KeyId"],
        Message=digest,
        MessageType="DIGEST",
        Signature=signed["Signature"],
        SigningAlgorithm=algorithm,
    )["SignatureValid"]
    if algorithm != "ED25519_PH_SHA_512":
        # A signature over the digest is a signature over the message (hashed once).
        assert kms.verify(
            KeyId=meta["KeyId"],
            Message=MESSAGE,
            MessageType="RAW",
            Signature=signed["Signature"],
            SigningAlgorithm=algorithm,
        )["SignatureValid"]


@pytest.mark.parametrize("spec", ["ML_DSA_44", "ML_DSA_65", "ML_DSA_87"])
def test_ml_dsa_external_mu(
    kms: BaseClient, key: KeyFactory, public_key: Callable[[str, str], bytes], spec: str
) -> None:
    meta = key(spec, "SIGN_VERIFY")
    pub = serialization.load_der_public_key(public_key(spec, "SIGN_VERIFY"))
    hasher = mldsa.MLDSAMuHasher(pub)  # FIPS 204 mu of (public key, empty context, message)
    hasher.update(MESSAGE)
    mu = hasher.finalize()
    assert len(mu) == 64
    signed = kms.sign(
        KeyId=meta["KeyId"],
        Message=mu,
        MessageType="EXTERNAL_MU",
        SigningAlgorithm="ML_DSA_SHAKE_256",
    )
    pub.verify(signed["Signature"], MESSAGE)  # type: ignore[union-attr]
    for message, message_type in ((mu, "EXTERNAL_MU"), (MESSAGE, "RAW")):
        assert kms.verify(
            KeyId=meta["KeyId"],
            Message=message,
            MessageType=message_type,
            Signature=signed["Signature"],
            SigningAlgorithm="ML_DSA_SHAKE_256",
        )["SignatureValid"]
    expect_error(
        "ValidationException",
        kms.sign,
        KeyId=meta["KeyId"],
        Message=mu[:32],
        MessageType="EXTERNAL_MU",
        SigningAlgorithm="ML_DSA_SHAKE_256",
    )


def test_repeated_ecdsa_signatures_all_verify(
    kms: BaseClient, key: KeyFactory, public_key: Callable[[str, str], bytes]
) -> None:
    meta = key("ECC_NIST_P256", "SIGN_VERIFY")
    sigs = [
        kms.sign(KeyId=meta["KeyId"], Message=MESSAGE, SigningAlgorithm="ECDSA_SHA_256")[
            "Signature"
        ]
        for _ in range(3)
    ]
    for sig in sigs:
        verify_locally(public_key("ECC_NIST_P256", "SIGN_VERIFY"), "ECDSA_SHA_256", MESSAGE, sig)


# --- RSA encryption -----------------------------------------------------------------------------
@pytest.mark.parametrize(("spec", "algorithm", "limit"), RSA_LIMITS, ids=lambda v: str(v))
def test_rsa_encrypt_decrypt_at_the_plaintext_limit(
    kms: BaseClient,
    kms_unvalidated: BaseClient,
    key: KeyFactory,
    public_key: Callable[[str, str], bytes],
    spec: str,
    algorithm: str,
    limit: int,
) -> None:
    meta = key(spec, "ENCRYPT_DECRYPT")
    modulus_bytes = int(spec.split("_")[1]) // 8
    plaintext = bytes(range(256)) * (limit // 256) + bytes(range(limit % 256))
    assert len(plaintext) == limit

    encrypted = kms.encrypt(KeyId=meta["KeyId"], Plaintext=plaintext, EncryptionAlgorithm=algorithm)
    assert encrypted["EncryptionAlgorithm"] == algorithm
    assert encrypted["KeyId"] == meta["Arn"]
    assert len(encrypted["CiphertextBlob"]) == modulus_bytes
    decrypted = kms.decrypt(
        KeyId=meta["KeyId"],
        CiphertextBlob=encrypted["CiphertextBlob"],
        EncryptionAlgorithm=algorithm,
    )
    assert decrypted["Plaintext"] == plaintext
    assert decrypted["EncryptionAlgorithm"] == algorithm
    assert "KeyMaterialId" not in decrypted  # only symmetric encryption keys report it

    # A ciphertext made outside with the public key from GetPublicKey decrypts inside.
    pub = serialization.load_der_public_key(public_key(spec, "ENCRYPT_DECRYPT"))
    assert isinstance(pub, rsa.RSAPublicKey)
    h = hashes.SHA1() if algorithm.endswith("SHA_1") else hashes.SHA256()
    outside = pub.encrypt(plaintext, padding.OAEP(mgf=padding.MGF1(h), algorithm=h, label=None))
    assert (
        kms.decrypt(KeyId=meta["KeyId"], CiphertextBlob=outside, EncryptionAlgorithm=algorithm)[
            "Plaintext"
        ]
        == plaintext
    )

    # One byte more is refused.
    expect_error(
        "ValidationException",
        kms_unvalidated.encrypt,
        KeyId=meta["KeyId"],
        Plaintext=plaintext + b"!",
        EncryptionAlgorithm=algorithm,
    )
    # The other OAEP hash does not open it.
    other = "RSAES_OAEP_SHA_256" if algorithm.endswith("SHA_1") else "RSAES_OAEP_SHA_1"
    expect_error(
        "InvalidCiphertextException",
        kms.decrypt,
        KeyId=meta["KeyId"],
        CiphertextBlob=encrypted["CiphertextBlob"],
        EncryptionAlgorithm=other,
    )


# --- HMAC ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", list(HMAC_SIZES))
def test_generate_and_verify_mac(kms: BaseClient, key: KeyFactory, spec: str) -> None:
    meta = key(spec, "GENERATE_VERIFY_MAC")
    algorithm = "HMAC_SHA_" + spec.split("_")[1]
    made = kms.generate_mac(KeyId=meta["KeyId"], Message=MESSAGE, MacAlgorithm=algorithm)
    assert made["KeyId"] == meta["Arn"]
    assert made["MacAlgorithm"] == algorithm
    assert len(made["Mac"]) == HMAC_SIZES[spec]
    # HMAC is deterministic.
    assert (
        kms.generate_mac(KeyId=meta["KeyId"], Message=MESSAGE, MacAlgorithm=algorithm)["Mac"]
        == made["Mac"]
    )
    verified = kms.verify_mac(
        KeyId=meta["KeyId"], Message=MESSAGE, Mac=made["Mac"], MacAlgorithm=algorithm
    )
    assert verified == {
        "KeyId": meta["Arn"],
        "MacValid": True,
        "MacAlgorithm": algorithm,
        "ResponseMetadata": verified["ResponseMetadata"],
    }
    for bad_mac, message in (
        (flip(made["Mac"]), MESSAGE),
        (flip(made["Mac"], 0), MESSAGE),
        (made["Mac"][:-1], MESSAGE),
        (made["Mac"] + b"\x00", MESSAGE),
        (made["Mac"], MESSAGE + b"."),
    ):
        expect_error(
            "KMSInvalidMacException",
            kms.verify_mac,
            KeyId=meta["KeyId"],
            Message=message,
            Mac=bad_mac,
            MacAlgorithm=algorithm,
        )
    other = "HMAC_SHA_512" if algorithm != "HMAC_SHA_512" else "HMAC_SHA_256"
    expect_error(
        "InvalidKeyUsageException",
        kms.generate_mac,
        KeyId=meta["KeyId"],
        Message=MESSAGE,
        MacAlgorithm=other,
    )


def test_hmac_keys_do_not_share_material(kms: BaseClient, key: KeyFactory) -> None:
    first = key("HMAC_256", "GENERATE_VERIFY_MAC")
    second = fresh_key(kms, "HMAC_256", "GENERATE_VERIFY_MAC")
    mac = kms.generate_mac(KeyId=first["KeyId"], Message=MESSAGE, MacAlgorithm="HMAC_SHA_256")
    expect_error(
        "KMSInvalidMacException",
        kms.verify_mac,
        KeyId=second["KeyId"],
        Message=MESSAGE,
        Mac=mac["Mac"],
        MacAlgorithm="HMAC_SHA_256",
    )


# --- DeriveSharedSecret -------------------------------------------------------------------------
@pytest.mark.parametrize("spec", list(ECDH_CURVES))
def test_derive_shared_secret_equals_the_peers_computation(
    kms: BaseClient, key: KeyFactory, public_key: Callable[[str, str], bytes], spec: str
) -> None:
    meta = key(spec, "KEY_AGREEMENT")
    curve, length = ECDH_CURVES[spec]
    peer = ec.generate_private_key(curve())
    peer_public = peer.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    derived = kms.derive_shared_secret(
        KeyId=meta["KeyId"], KeyAgreementAlgorithm="ECDH", PublicKey=peer_public
    )
    kms_public = serialization.load_der_public_key(public_key(spec, "KEY_AGREEMENT"))
    assert isinstance(kms_public, ec.EllipticCurvePublicKey)
    assert derived["SharedSecret"] == peer.exchange(ec.ECDH(), kms_public)
    assert len(derived["SharedSecret"]) == length
    assert derived["KeyId"] == meta["Arn"]
    assert derived["KeyAgreementAlgorithm"] == "ECDH"
    assert derived["KeyOrigin"] == "AWS_KMS"

    # Two KMS keys agree with each other through their public keys.
    other = fresh_key(kms, spec, "KEY_AGREEMENT")
    other_public = kms.get_public_key(KeyId=other["KeyId"])["PublicKey"]
    ours = kms.derive_shared_secret(
        KeyId=meta["KeyId"], KeyAgreementAlgorithm="ECDH", PublicKey=other_public
    )["SharedSecret"]
    theirs = kms.derive_shared_secret(
        KeyId=other["KeyId"],
        KeyAgreementAlgorithm="ECDH",
        PublicKey=public_key(spec, "KEY_AGREEMENT"),
    )["SharedSecret"]
    assert ours == theirs

    # A peer on another curve, or a public key that is not DER SPKI.
    wrong_curve = ec.SECP384R1() if spec != "ECC_NIST_P384" else ec.SECP256R1()
    wrong = (
        ec.generate_private_key(wrong_curve)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    raw_point = peer.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    off_curve = peer_public[:-1] + bytes([peer_public[-1] ^ 0x01])  # y no longer on the curve
    for bad in (wrong, raw_point, peer_public[:-1], off_curve):
        expect_error(
            "ValidationException",
            kms.derive_shared_secret,
            KeyId=meta["KeyId"],
            KeyAgreementAlgorithm="ECDH",
            PublicKey=bad,
        )


def test_derive_shared_secret_needs_a_key_agreement_key(kms: BaseClient, key: KeyFactory) -> None:
    peer = ec.generate_private_key(ec.SECP256R1()).public_key()
    der = peer.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for spec, usage in (
        ("ECC_NIST_P256", "SIGN_VERIFY"),
        ("RSA_2048", "ENCRYPT_DECRYPT"),
        ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT"),
    ):
        expect_error(
            "InvalidKeyUsageException",
            kms.derive_shared_secret,
            KeyId=key(spec, usage)["KeyId"],
            KeyAgreementAlgorithm="ECDH",
            PublicKey=der,
        )


# --- Encapsulate / Decapsulate ------------------------------------------------------------------
@pytest.mark.parametrize("spec", list(ML_KEM_CIPHERTEXT))
def test_encapsulate_and_decapsulate(
    kms: BaseClient, key: KeyFactory, public_key: Callable[[str, str], bytes], spec: str
) -> None:
    meta = key(spec, "ENCAPSULATE_DECAPSULATE")
    made = kms.encapsulate(KeyId=meta["KeyId"], EncapsulationAlgorithm="ML_KEM")
    assert made["KeyId"] == meta["Arn"]
    assert made["EncapsulationAlgorithm"] == "ML_KEM"
    assert len(made["SharedSecret"]) == 32
    assert len(made["SharedSecretCiphertextBlob"]) == ML_KEM_CIPHERTEXT[spec]
    opened = kms.decapsulate(
        KeyId=meta["KeyId"],
        SharedSecretCiphertextBlob=made["SharedSecretCiphertextBlob"],
        EncapsulationAlgorithm="ML_KEM",
    )
    assert opened["SharedSecret"] == made["SharedSecret"]
    assert opened["KeyId"] == meta["Arn"]
    assert opened["EncapsulationAlgorithm"] == "ML_KEM"
    again = kms.encapsulate(KeyId=meta["KeyId"], EncapsulationAlgorithm="ML_KEM")
    assert again["SharedSecret"] != made["SharedSecret"]

    # Implicit rejection: an altered ciphertext yields some other 32-byte secret, no error.
    altered = kms.decapsulate(
        KeyId=meta["KeyId"],
        SharedSecretCiphertextBlob=flip(made["SharedSecretCiphertextBlob"], 10),
        EncapsulationAlgorithm="ML_KEM",
    )["SharedSecret"]
    assert len(altered) == 32 and altered != made["SharedSecret"]
    # A ciphertext of the wrong length is InvalidCiphertextException.
    for blob in (
        made["SharedSecretCiphertextBlob"][:-1],
        made["SharedSecretCiphertextBlob"] + b"\x00",
    ):
        expect_error(
            "InvalidCiphertextException",
            kms.decapsulate,
            KeyId=meta["KeyId"],
            SharedSecretCiphertextBlob=blob,
            EncapsulationAlgorithm="ML_KEM",
        )

    # An encapsulation made outside with the public key from GetPublicKey.
    der = public_key(spec, "ENCAPSULATE_DECAPSULATE")
    if spec == "ML_KEM_512":
        return  # pyca has no ML-KEM-512; the two pyca parameter sets are checked below
    pub = serialization.load_der_public_key(der)
    secret, ciphertext = pub.encapsulate()  # type: ignore[union-attr]
    assert (
        kms.decapsulate(
            KeyId=meta["KeyId"],
            SharedSecretCiphertextBlob=ciphertext,
            EncapsulationAlgorithm="ML_KEM",
        )["SharedSecret"]
        == secret
    )


def test_encapsulation_needs_an_ml_kem_key(kms: BaseClient, key: KeyFactory) -> None:
    for spec, usage in (("RSA_2048", "ENCRYPT_DECRYPT"), ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")):
        expect_error(
            "InvalidKeyUsageException",
            kms.encapsulate,
            KeyId=key(spec, usage)["KeyId"],
            EncapsulationAlgorithm="ML_KEM",
        )
        expect_error(
            "InvalidKeyUsageException",
            kms.decapsulate,
            KeyId=key(spec, usage)["KeyId"],
            SharedSecretCiphertextBlob=b"\x00" * 1088,
            EncapsulationAlgorithm="ML_KEM",
        )


# --- GenerateDataKeyPair ------------------------------------------------------------------------
def _public_of_private(spec: str, private_der: bytes) -> bytes:
    if spec == "ML_KEM_512":
        from Crypto.PublicKey import MLKEM

        pcd_key = MLKEM.import_key(private_der)
        assert pcd_key.param_set is MLKEM.ML_KEM_512
        exported: bytes = pcd_key.public_key().export_key(format="DER")
        return exported
    private = serialization.load_der_private_key(private_der, password=None)
    if spec.startswith("RSA_"):
        assert isinstance(private, rsa.RSAPrivateKey)
        assert private.key_size == int(spec.split("_")[1])
    elif spec.startswith("ECC_NIST_P") or spec == "ECC_SECG_P256K1":
        assert isinstance(private, ec.EllipticCurvePrivateKey)
    elif spec == "ECC_NIST_EDWARDS25519":
        assert isinstance(private, ed25519.Ed25519PrivateKey)
    return private.public_key().public_bytes(  # type: ignore[union-attr]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.mark.parametrize("pair_spec", DATA_KEY_PAIR_SPECS)
def test_generate_data_key_pair(kms: BaseClient, key: KeyFactory, pair_spec: str) -> None:
    meta = key("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")
    context = {"purpose": "data-key-pair", "spec": pair_spec}
    current = kms.describe_key(KeyId=meta["KeyId"])["KeyMetadata"]["CurrentKeyMaterialId"]

    pair = kms.generate_data_key_pair(
        KeyId=meta["KeyId"], KeyPairSpec=pair_spec, EncryptionContext=context
    )
    assert pair["KeyId"] == meta["Arn"]
    assert pair["KeyPairSpec"] == pair_spec
    assert pair["KeyMaterialId"] == current
    assert _public_of_private(pair_spec, pair["PrivateKeyPlaintext"]) == pair["PublicKey"]
    opened = kms.decrypt(CiphertextBlob=pair["PrivateKeyCiphertextBlob"], EncryptionContext=context)
    assert opened["Plaintext"] == pair["PrivateKeyPlaintext"]
    assert opened["KeyId"] == meta["Arn"]
    assert opened["KeyMaterialId"] == current
    expect_error(
        "InvalidCiphertextException", kms.decrypt, CiphertextBlob=pair["PrivateKeyCiphertextBlob"]
    )

    bare = kms.generate_data_key_pair_without_plaintext(
        KeyId=meta["KeyId"], KeyPairSpec=pair_spec, EncryptionContext=context
    )
    assert "PrivateKeyPlaintext" not in bare
    assert bare["KeyPairSpec"] == pair_spec
    assert bare["KeyMaterialId"] == current
    assert bare["PublicKey"] != pair["PublicKey"]
    private = kms.decrypt(
        CiphertextBlob=bare["PrivateKeyCiphertextBlob"], EncryptionContext=context
    )["Plaintext"]
    assert _public_of_private(pair_spec, private) == bare["PublicKey"]

    # The private half works: a signature or encryption round trip with the pair.
    if pair_spec.startswith("ECC_NIST_P") or pair_spec == "ECC_SECG_P256K1":
        ec_private = serialization.load_der_private_key(private, password=None)
        assert isinstance(ec_private, ec.EllipticCurvePrivateKey)
        sig = ec_private.sign(MESSAGE, ec.ECDSA(hashes.SHA256()))
        pub = serialization.load_der_public_key(bare["PublicKey"])
        assert isinstance(pub, ec.EllipticCurvePublicKey)
        pub.verify(sig, MESSAGE, ec.ECDSA(hashes.SHA256()))


def test_generate_data_key_pair_needs_a_symmetric_encryption_key(
    kms: BaseClient, key: KeyFactory
) -> None:
    for spec, usage in (
        ("RSA_2048", "ENCRYPT_DECRYPT"),
        ("RSA_2048", "SIGN_VERIFY"),
        ("HMAC_256", "GENERATE_VERIFY_MAC"),
        ("ECC_NIST_P256", "KEY_AGREEMENT"),
    ):
        for call in (kms.generate_data_key_pair, kms.generate_data_key_pair_without_plaintext):
            expect_error(
                "InvalidKeyUsageException",
                call,
                KeyId=key(spec, usage)["KeyId"],
                KeyPairSpec="ECC_NIST_P256",
            )


# --- the negative set (in the spirit of Wycheproof) ---------------------------------------------
def _tamperings(signature: bytes, algorithm: str) -> list[tuple[str, bytes]]:
    cases = [
        ("last bit flipped", flip(signature)),
        ("first bit flipped", flip(signature, 0)),
        ("middle byte flipped", flip(signature, len(signature) // 2)),
        ("truncated", signature[:-1]),
        ("appended zero", signature + b"\x00"),
        ("all zeros", bytes(len(signature))),
        ("all ones", b"\xff" * len(signature)),
        ("single byte", b"\x00"),
    ]
    if algorithm.startswith("ECDSA_"):
        # DER whose outer length does not match its content.
        cases.append(
            ("bad DER length", signature[:1] + bytes([signature[1] ^ 0x01]) + signature[2:])
        )
        if signature[1] < 0x80:
            # The same SEQUENCE with a BER long-form length: not DER.
            cases.append(("BER length", b"\x30\x81" + signature[1:]))
        cases.append(("r = 0, s = 0", b"\x30\x06\x02\x01\x00\x02\x01\x00"))
        cases.append(("r = 1, s = 1", b"\x30\x06\x02\x01\x01\x02\x01\x01"))
    if algorithm.startswith("ED25519"):
        # S + L: the same S modulo the group order, but not canonical (RFC 8032 5.1.7).
        s_value = int.from_bytes(signature[32:], "little") + ED25519_ORDER
        if s_value < 2**256:
            cases.append(("S + L", signature[:32] + s_value.to_bytes(32, "little")))
    return cases


@pytest.mark.parametrize(
    ("spec", "algorithm"),
    [
        ("RSA_2048", "RSASSA_PSS_SHA_256"),
        ("RSA_2048", "RSASSA_PKCS1_V1_5_SHA_256"),
        ("ECC_NIST_P256", "ECDSA_SHA_256"),
        ("ECC_NIST_P521", "ECDSA_SHA_512"),
        ("ECC_SECG_P256K1", "ECDSA_SHA_256"),
        ("ECC_NIST_EDWARDS25519", "ED25519_SHA_512"),
        ("ML_DSA_44", "ML_DSA_SHAKE_256"),
    ],
    ids=lambda v: str(v),
)
def test_tampered_signatures_are_invalid(
    kms: BaseClient, key: KeyFactory, spec: str, algorithm: str
) -> None:
    meta = key(spec, "SIGN_VERIFY")
    signature = kms.sign(KeyId=meta["KeyId"], Message=MESSAGE, SigningAlgorithm=algorithm)[
        "Signature"
    ]
    for label, bad in _tamperings(signature, algorithm):
        try:
            expect_error(
                "KMSInvalidSignatureException",
                kms.verify,
                KeyId=meta["KeyId"],
                Message=MESSAGE,
                Signature=bad,
                SigningAlgorithm=algorithm,
            )
        except AssertionError as exc:
            raise AssertionError(f"{label}: {exc}") from exc
    # The right signature over another message.
    expect_error(
        "KMSInvalidSignatureException",
        kms.verify,
        KeyId=meta["KeyId"],
        Message=MESSAGE + b"!",
        Signature=signature,
        SigningAlgorithm=algorithm,
    )
    # Another key of the same spec.
    other = fresh_key(kms, spec, "SIGN_VERIFY")
    expect_error(
        "KMSInvalidSignatureException",
        kms.verify,
        KeyId=other["KeyId"],
        Message=MESSAGE,
        Signature=signature,
        SigningAlgorithm=algorithm,
    )


def test_a_signature_under_one_rsa_padding_is_invalid_under_another(
    kms: BaseClient, key: KeyFactory
) -> None:
    meta = key("RSA_2048", "SIGN_VERIFY")
    for made_with, checked_with in (
        ("RSASSA_PSS_SHA_256", "RSASSA_PKCS1_V1_5_SHA_256"),
        ("RSASSA_PKCS1_V1_5_SHA_256", "RSASSA_PSS_SHA_256"),
        ("RSASSA_PSS_SHA_256", "RSASSA_PSS_SHA_384"),
        ("RSASSA_PKCS1_V1_5_SHA_384", "RSASSA_PKCS1_V1_5_SHA_512"),
    ):
        sig = kms.sign(KeyId=meta["KeyId"], Message=MESSAGE, SigningAlgorithm=made_with)[
            "Signature"
        ]
        expect_error(
            "KMSInvalidSignatureException",
            kms.verify,
            KeyId=meta["KeyId"],
            Message=MESSAGE,
            Signature=sig,
            SigningAlgorithm=checked_with,
        )
    # Signed over the digest as RAW (hashed twice) does not verify as a single hash.
    digest = hashlib.sha256(MESSAGE).digest()
    twice = kms.sign(
        KeyId=meta["KeyId"],
        Message=digest,
        MessageType="RAW",
        SigningAlgorithm="RSASSA_PKCS1_V1_5_SHA_256",
    )["Signature"]
    expect_error(
        "KMSInvalidSignatureException",
        kms.verify,
        KeyId=meta["KeyId"],
        Message=digest,
        MessageType="DIGEST",
        Signature=twice,
        SigningAlgorithm="RSASSA_PKCS1_V1_5_SHA_256",
    )


@pytest.mark.parametrize(
    ("spec", "algorithm"),
    [
        ("RSA_2048", "RSASSA_PSS_SHA_256"),
        ("RSA_2048", "RSASSA_PKCS1_V1_5_SHA_384"),
        ("RSA_2048", "RSASSA_PSS_SHA_512"),
        ("ECC_NIST_P256", "ECDSA_SHA_256"),
        ("ECC_NIST_P384", "ECDSA_SHA_384"),
        ("ECC_NIST_P521", "ECDSA_SHA_512"),
        ("ECC_NIST_EDWARDS25519", "ED25519_PH_SHA_512"),
    ],
    ids=lambda v: str(v),
)
def test_wrong_digest_lengths(kms: BaseClient, key: KeyFactory, spec: str, algorithm: str) -> None:
    meta = key(spec, "SIGN_VERIFY")
    length = HASHES[algorithm][1]
    assert length is not None
    good = digest_of(algorithm, MESSAGE)
    signature = kms.sign(
        KeyId=meta["KeyId"], Message=good, MessageType="DIGEST", SigningAlgorithm=algorithm
    )["Signature"]
    for bad in (good[:-1], good + b"\x00", hashlib.sha1(MESSAGE).digest(), b"\x00"):
        assert len(bad) != length
        expect_error(
            "ValidationException",
            kms.sign,
            KeyId=meta["KeyId"],
            Message=bad,
            MessageType="DIGEST",
            SigningAlgorithm=algorithm,
        )
        expect_error(
            "ValidationException",
            kms.verify,
            KeyId=meta["KeyId"],
            Message=bad,
            MessageType="DIGEST",
            Signature=signature,
            SigningAlgorithm=algorithm,
        )


def test_oversize_messages(kms_unvalidated: BaseClient, key: KeyFactory) -> None:
    kms = kms_unvalidated
    big, limit = b"m" * 4097, b"m" * 4096
    sign_key = key("ECC_NIST_P256", "SIGN_VERIFY")["KeyId"]
    kms.sign(KeyId=sign_key, Message=limit, SigningAlgorithm="ECDSA_SHA_256")
    expect_error(
        "ValidationException",
        kms.sign,
        KeyId=sign_key,
        Message=big,
        SigningAlgorithm="ECDSA_SHA_256",
    )
    expect_error(
        "ValidationException",
        kms.verify,
        KeyId=sign_key,
        Message=big,
        Signature=b"\x30\x06\x02\x01\x01\x02\x01\x01",
        SigningAlgorithm="ECDSA_SHA_256",
    )
    mac_key = key("HMAC_256", "GENERATE_VERIFY_MAC")["KeyId"]
    kms.generate_mac(KeyId=mac_key, Message=limit, MacAlgorithm="HMAC_SHA_256")
    expect_error(
        "ValidationException",
        kms.generate_mac,
        KeyId=mac_key,
        Message=big,
        MacAlgorithm="HMAC_SHA_256",
    )
    sym = key("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")["KeyId"]
    expect_error("ValidationException", kms.encrypt, KeyId=sym, Plaintext=big)
    # The ML-DSA and Ed25519 RAW limits are the same 4096 bytes.
    ed_key = key("ECC_NIST_EDWARDS25519", "SIGN_VERIFY")["KeyId"]
    expect_error(
        "ValidationException",
        kms.sign,
        KeyId=ed_key,
        Message=big,
        SigningAlgorithm="ED25519_SHA_512",
    )


@pytest.mark.parametrize(
    ("spec", "usage", "operation", "params"),
    [
        ("ECC_NIST_P256", "SIGN_VERIFY", "sign", {"SigningAlgorithm": "ECDSA_SHA_384"}),
        ("ECC_NIST_P384", "SIGN_VERIFY", "sign", {"SigningAlgorithm": "ECDSA_SHA_256"}),
        ("ECC_SECG_P256K1", "SIGN_VERIFY", "sign", {"SigningAlgorithm": "ECDSA_SHA_512"}),
        ("ECC_NIST_P256", "SIGN_VERIFY", "sign", {"SigningAlgorithm": "RSASSA_PSS_SHA_256"}),
        ("RSA_2048", "SIGN_VERIFY", "sign", {"SigningAlgorithm": "ECDSA_SHA_256"}),
        ("RSA_2048", "SIGN_VERIFY", "sign", {"SigningAlgorithm": "ED25519_SHA_512"}),
        ("RSA_2048", "SIGN_VERIFY", "sign", {"SigningAlgorithm": "ML_DSA_SHAKE_256"}),
        ("ECC_NIST_EDWARDS25519", "SIGN_VERIFY", "sign", {"SigningAlgorithm": "ECDSA_SHA_512"}),
        ("ML_DSA_65", "SIGN_VERIFY", "sign", {"SigningAlgorithm": "ED25519_SHA_512"}),
        ("HMAC_384", "GENERATE_VERIFY_MAC", "generate_mac", {"MacAlgorithm": "HMAC_SHA_256"}),
        ("HMAC_224", "GENERATE_VERIFY_MAC", "generate_mac", {"MacAlgorithm": "HMAC_SHA_512"}),
        ("RSA_2048", "ENCRYPT_DECRYPT", "encrypt", {"EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}),
        (
            "SYMMETRIC_DEFAULT",
            "ENCRYPT_DECRYPT",
            "encrypt",
            {"EncryptionAlgorithm": "RSAES_OAEP_SHA_256"},
        ),
    ],
    ids=lambda v: str(v) if not isinstance(v, dict) else next(iter(v.values())),
)
def test_wrong_algorithm_for_the_key(
    kms: BaseClient,
    key: KeyFactory,
    spec: str,
    usage: str,
    operation: str,
    params: dict[str, str],
) -> None:
    data = {"Message": MESSAGE} if operation != "encrypt" else {"Plaintext": b"secret"}
    expect_error(
        "InvalidKeyUsageException",
        getattr(kms, operation),
        KeyId=key(spec, usage)["KeyId"],
        **data,
        **params,
    )


@pytest.mark.parametrize(
    ("spec", "usage", "operation", "params"),
    [
        ("RSA_2048", "ENCRYPT_DECRYPT", "sign", {"SigningAlgorithm": "RSASSA_PSS_SHA_256"}),
        ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", "sign", {"SigningAlgorithm": "ECDSA_SHA_256"}),
        ("HMAC_256", "GENERATE_VERIFY_MAC", "sign", {"SigningAlgorithm": "ECDSA_SHA_256"}),
        ("ECC_NIST_P256", "KEY_AGREEMENT", "sign", {"SigningAlgorithm": "ECDSA_SHA_256"}),
        ("RSA_2048", "SIGN_VERIFY", "encrypt", {"EncryptionAlgorithm": "RSAES_OAEP_SHA_256"}),
        ("ECC_NIST_P256", "SIGN_VERIFY", "encrypt", {}),
        ("HMAC_256", "GENERATE_VERIFY_MAC", "encrypt", {}),
        ("ML_KEM_768", "ENCAPSULATE_DECAPSULATE", "encrypt", {}),
        ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", "generate_mac", {"MacAlgorithm": "HMAC_SHA_256"}),
        ("RSA_2048", "SIGN_VERIFY", "generate_mac", {"MacAlgorithm": "HMAC_SHA_256"}),
        ("HMAC_256", "GENERATE_VERIFY_MAC", "generate_data_key", {"KeySpec": "AES_256"}),
        ("RSA_2048", "ENCRYPT_DECRYPT", "generate_data_key", {"KeySpec": "AES_256"}),
    ],
    ids=lambda v: str(v) if not isinstance(v, dict) else "-".join(v.values()) or "none",
)
def test_wrong_key_usage(
    kms: BaseClient,
    key: KeyFactory,
    spec: str,
    usage: str,
    operation: str,
    params: dict[str, str],
) -> None:
    data: dict[str, Any] = {}
    if operation in ("sign", "generate_mac"):
        data = {"Message": MESSAGE}
    elif operation == "encrypt":
        data = {"Plaintext": b"secret"}
    expect_error(
        "InvalidKeyUsageException",
        getattr(kms, operation),
        KeyId=key(spec, usage)["KeyId"],
        **data,
        **params,
    )


def test_encryption_context_is_refused_on_asymmetric_operations(
    kms: BaseClient, key: KeyFactory
) -> None:
    meta = key("RSA_2048", "ENCRYPT_DECRYPT")
    context = {"purpose": "test"}
    expect_error(
        "ValidationException",
        kms.encrypt,
        KeyId=meta["KeyId"],
        Plaintext=b"secret",
        EncryptionAlgorithm="RSAES_OAEP_SHA_256",
        EncryptionContext=context,
    )
    blob = kms.encrypt(
        KeyId=meta["KeyId"], Plaintext=b"secret", EncryptionAlgorithm="RSAES_OAEP_SHA_256"
    )["CiphertextBlob"]
    expect_error(
        "ValidationException",
        kms.decrypt,
        KeyId=meta["KeyId"],
        CiphertextBlob=blob,
        EncryptionAlgorithm="RSAES_OAEP_SHA_256",
        EncryptionContext=context,
    )
    # Asymmetric Encrypt needs its algorithm.
    expect_error("ValidationException", kms.encrypt, KeyId=meta["KeyId"], Plaintext=b"secret")
    # ... and Decrypt of an RSA ciphertext needs KeyId with it.
    expect_error(
        "ValidationException",
        kms.decrypt,
        CiphertextBlob=blob,
        EncryptionAlgorithm="RSAES_OAEP_SHA_256",
    )


def test_disabled_asymmetric_and_hmac_keys(kms: BaseClient) -> None:
    """Every cryptographic operation on a disabled key is DisabledException; enabling it again
    restores them."""
    sign = fresh_key(kms, "ECC_NIST_P256", "SIGN_VERIFY")
    rsa_enc = fresh_key(kms, "RSA_2048", "ENCRYPT_DECRYPT")
    mac = fresh_key(kms, "HMAC_256", "GENERATE_VERIFY_MAC")
    agree = fresh_key(kms, "ECC_NIST_P256", "KEY_AGREEMENT")
    kem = fresh_key(kms, "ML_KEM_768", "ENCAPSULATE_DECAPSULATE")
    sym = fresh_key(kms, "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")

    signature = kms.sign(KeyId=sign["KeyId"], Message=MESSAGE, SigningAlgorithm="ECDSA_SHA_256")[
        "Signature"
    ]
    rsa_blob = kms.encrypt(
        KeyId=rsa_enc["KeyId"], Plaintext=b"x", EncryptionAlgorithm="RSAES_OAEP_SHA_1"
    )["CiphertextBlob"]
    tag = kms.generate_mac(KeyId=mac["KeyId"], Message=MESSAGE, MacAlgorithm="HMAC_SHA_256")["Mac"]
    peer = kms.get_public_key(KeyId=agree["KeyId"])["PublicKey"]
    capsule = kms.encapsulate(KeyId=kem["KeyId"], EncapsulationAlgorithm="ML_KEM")

    calls: list[tuple[str, Callable[..., Any], dict[str, Any]]] = [
        ("GetPublicKey", kms.get_public_key, {"KeyId": sign["KeyId"]}),
        (
            "Sign",
            kms.sign,
            {"KeyId": sign["KeyId"], "Message": MESSAGE, "SigningAlgorithm": "ECDSA_SHA_256"},
        ),
        (
            "Verify",
            kms.verify,
            {
                "KeyId": sign["KeyId"],
                "Message": MESSAGE,
                "Signature": signature,
                "SigningAlgorithm": "ECDSA_SHA_256",
            },
        ),
        (
            "Encrypt",
            kms.encrypt,
            {
                "KeyId": rsa_enc["KeyId"],
                "Plaintext": b"x",
                "EncryptionAlgorithm": "RSAES_OAEP_SHA_1",
            },
        ),
        (
            "Decrypt",
            kms.decrypt,
            {
                "KeyId": rsa_enc["KeyId"],
                "CiphertextBlob": rsa_blob,
                "EncryptionAlgorithm": "RSAES_OAEP_SHA_1",
            },
        ),
        (
            "GenerateMac",
            kms.generate_mac,
            {"KeyId": mac["KeyId"], "Message": MESSAGE, "MacAlgorithm": "HMAC_SHA_256"},
        ),
        (
            "VerifyMac",
            kms.verify_mac,
            {"KeyId": mac["KeyId"], "Message": MESSAGE, "Mac": tag, "MacAlgorithm": "HMAC_SHA_256"},
        ),
        (
            "DeriveSharedSecret",
            kms.derive_shared_secret,
            {"KeyId": agree["KeyId"], "KeyAgreementAlgorithm": "ECDH", "PublicKey": peer},
        ),
        (
            "Encapsulate",
            kms.encapsulate,
            {"KeyId": kem["KeyId"], "EncapsulationAlgorithm": "ML_KEM"},
        ),
        (
            "Decapsulate",
            kms.decapsulate,
            {
                "KeyId": kem["KeyId"],
                "SharedSecretCiphertextBlob": capsule["SharedSecretCiphertextBlob"],
                "EncapsulationAlgorithm": "ML_KEM",
            },
        ),
        (
            "GenerateDataKeyPair",
            kms.generate_data_key_pair,
            {"KeyId": sym["KeyId"], "KeyPairSpec": "ECC_NIST_P256"},
        ),
        (
            "GenerateDataKeyPairWithoutPlaintext",
            kms.generate_data_key_pair_without_plaintext,
            {"KeyId": sym["KeyId"], "KeyPairSpec": "ECC_NIST_P256"},
        ),
    ]
    keys = [sign, rsa_enc, mac, agree, kem, sym]
    for meta in keys:
        kms.disable_key(KeyId=meta["KeyId"])
    for name, call, params in calls:
        try:
            expect_error("DisabledException", call, **params)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from exc
    for meta in keys:
        kms.enable_key(KeyId=meta["KeyId"])
    for _name, call, params in calls:
        call(**params)

    # Pending deletion: KMSInvalidStateException.
    for meta in keys:
        kms.schedule_key_deletion(KeyId=meta["KeyId"], PendingWindowInDays=7)
    for name, call, params in calls:
        try:
            expect_error("KMSInvalidStateException", call, **params)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from exc
