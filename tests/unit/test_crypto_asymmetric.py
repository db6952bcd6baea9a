"""Key spec table, key handles, Sign/Verify, RSA-OAEP, ECDH and ML-KEM of openkms.crypto."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import os
import pickle
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa, mlkem, padding, rsa

from openkms import errors
from openkms.crypto import agreement, asymmetric, kem, keyspecs
from openkms.crypto.asymmetric import PrivateKeyHandle
from openkms.crypto.keyspecs import KeyFamily
from openkms.types import (
    CustomerMasterKeySpec,
    DataKeyPairSpec,
    EncapsulationAlgorithmSpec,
    EncryptionAlgorithmSpec,
    KeyAgreementAlgorithmSpec,
    KeySpec,
    KeyUsageType,
    MessageType,
    SigningAlgorithmSpec,
)

SIGN = KeyUsageType.SIGN_VERIFY
MESSAGE = b"The quick brown fox jumps over the lazy dog"


class KeyCache:
    """One private key per spec and test module: RSA-4096 generation is slow."""

    def __init__(self) -> None:
        self._ders: dict[KeySpec, bytes] = {}
        self._handles: dict[KeySpec, PrivateKeyHandle] = {}

    def der(self, spec: KeySpec) -> bytes:
        if spec not in self._ders:
            self._ders[spec] = asymmetric.generate_private_key(spec)
        return self._ders[spec]

    def handle(self, spec: KeySpec) -> PrivateKeyHandle:
        if spec not in self._handles:
            self._handles[spec] = asymmetric.load_private_key(spec, self.der(spec))
        return self._handles[spec]


@pytest.fixture(scope="module")
def keys() -> Iterator[KeyCache]:
    yield KeyCache()


def _specs(*families: KeyFamily) -> list[KeySpec]:
    return [s for s, i in keyspecs.KEY_SPECS.items() if i.family in families and i.supported]


def _alg_param(spec: KeySpec, alg: SigningAlgorithmSpec) -> object:
    reason = keyspecs.signing_algorithm_unsupported_reason(alg)
    return pytest.param(
        spec,
        alg,
        id=f"{spec.value}-{alg.value}",
        marks=pytest.mark.skipif(reason is not None, reason=reason or ""),
    )


SIGNING_SPECS = [s for s, i in keyspecs.KEY_SPECS.items() if i.supported and i.allows_usage(SIGN)]
SIGNING_CASES = [
    _alg_param(spec, alg)
    for spec in SIGNING_SPECS
    for alg in keyspecs.spec_info(spec).algorithms_for(SIGN).signing_algorithms
]
DIGEST_CASES = [
    _alg_param(spec, alg)
    for spec in SIGNING_SPECS
    for alg in keyspecs.spec_info(spec).algorithms_for(SIGN).signing_algorithms
    if MessageType.DIGEST in keyspecs.signing_algorithm_info(alg).message_types
]
RAW_CASES = [
    _alg_param(spec, alg)
    for spec in SIGNING_SPECS
    for alg in keyspecs.spec_info(spec).algorithms_for(SIGN).signing_algorithms
    if MessageType.RAW in keyspecs.signing_algorithm_info(alg).message_types
]
WRONG_ALGORITHM_CASES = [
    pytest.param(spec, alg, id=f"{spec.value}-{alg.value}")
    for spec in SIGNING_SPECS
    for alg in SigningAlgorithmSpec
    if alg not in keyspecs.spec_info(spec).algorithms_for(SIGN).signing_algorithms
]
RSA_SPECS = _specs(KeyFamily.RSA)
OAEP = (EncryptionAlgorithmSpec.RSAES_OAEP_SHA_1, EncryptionAlgorithmSpec.RSAES_OAEP_SHA_256)
ML_KEM_SPECS = [
    pytest.param(
        s,
        marks=pytest.mark.skipif(
            not keyspecs.is_supported(s), reason=keyspecs.unsupported_reason(s) or ""
        ),
    )
    for s in (KeySpec.ML_KEM_512, KeySpec.ML_KEM_768, KeySpec.ML_KEM_1024)
]


NEEDS_MLKEM512 = pytest.mark.skipif(
    not keyspecs.MLKEM512_AVAILABLE, reason=keyspecs.unsupported_reason(KeySpec.ML_KEM_512) or ""
)


def _supported(*specs: KeySpec) -> list[KeySpec]:
    return [s for s in specs if keyspecs.is_supported(s)]


def _tamper(data: bytes) -> bytes:
    mid = len(data) // 2
    return data[:mid] + bytes([data[mid] ^ 0x01]) + data[mid + 1 :]


# --- The key spec table ----------------------------------------------------------------------
def test_table_covers_every_key_spec_and_data_key_pair_spec() -> None:
    assert set(keyspecs.KEY_SPECS) == set(KeySpec)
    assert len(keyspecs.KEY_SPECS) == 20
    assert set(keyspecs.DATA_KEY_PAIR_SPECS) == set(DataKeyPairSpec)
    for pair_spec, info in keyspecs.DATA_KEY_PAIR_SPECS.items():
        assert info.key_spec.value == pair_spec.value
        assert not keyspecs.spec_info(info.key_spec).symmetric
    # GenerateDataKeyPair offers no ML-DSA.
    assert not any(s.value.startswith("ML_DSA") for s in DataKeyPairSpec)


def test_every_spec_lists_algorithms_for_exactly_its_usages() -> None:
    for spec, info in keyspecs.KEY_SPECS.items():
        assert info.key_usages, spec
        for usage in info.key_usages:
            assert info.algorithms_for(usage).metadata_fields(), (spec, usage)
            assert len(info.algorithms_for(usage).metadata_fields()) == 1
        for usage in set(KeyUsageType) - set(info.key_usages):
            assert not info.algorithms_for(usage).metadata_fields(), (spec, usage)


def test_usages_follow_create_key_documentation() -> None:
    u = KeyUsageType
    expected = {
        KeySpec.SYMMETRIC_DEFAULT: {u.ENCRYPT_DECRYPT},
        KeySpec.HMAC_256: {u.GENERATE_VERIFY_MAC},
        KeySpec.RSA_3072: {u.ENCRYPT_DECRYPT, u.SIGN_VERIFY},
        KeySpec.ECC_NIST_P384: {u.SIGN_VERIFY, u.KEY_AGREEMENT},
        KeySpec.ECC_SECG_P256_K1: {u.SIGN_VERIFY},
        KeySpec.ECC_NIST_EDWARDS25519: {u.SIGN_VERIFY},
        KeySpec.ML_DSA_65: {u.SIGN_VERIFY},
        KeySpec.ML_KEM_768: {u.ENCAPSULATE_DECAPSULATE},
        KeySpec.SM2: {u.ENCRYPT_DECRYPT, u.SIGN_VERIFY, u.KEY_AGREEMENT},
    }
    for spec, usages in expected.items():
        assert set(keyspecs.spec_info(spec).key_usages) == usages, spec


def test_metadata_algorithms_for_describe_key() -> None:
    assert keyspecs.metadata_algorithms("ECC_NIST_P256", "KEY_AGREEMENT") == {
        "KeyAgreementAlgorithms": ["ECDH"]
    }
    assert keyspecs.metadata_algorithms(KeySpec.RSA_2048, KeyUsageType.ENCRYPT_DECRYPT) == {
        "EncryptionAlgorithms": ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]
    }
    assert keyspecs.metadata_algorithms("ML_KEM_512", "ENCAPSULATE_DECAPSULATE") == {
        "EncapsulationAlgorithms": ["ML_KEM"]
    }
    assert keyspecs.metadata_algorithms("HMAC_384", "GENERATE_VERIFY_MAC") == {
        "MacAlgorithms": ["HMAC_SHA_384"]
    }
    assert keyspecs.metadata_algorithms("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT") == {
        "EncryptionAlgorithms": ["SYMMETRIC_DEFAULT"]
    }
    assert keyspecs.metadata_algorithms("ECC_SECG_P256K1", "KEY_AGREEMENT") == {}


def test_curve_and_hash_pairing() -> None:
    pairs = {
        KeySpec.ECC_NIST_P256: SigningAlgorithmSpec.ECDSA_SHA_256,
        KeySpec.ECC_NIST_P384: SigningAlgorithmSpec.ECDSA_SHA_384,
        KeySpec.ECC_NIST_P521: SigningAlgorithmSpec.ECDSA_SHA_512,
        KeySpec.ECC_SECG_P256_K1: SigningAlgorithmSpec.ECDSA_SHA_256,
    }
    for spec, alg in pairs.items():
        assert keyspecs.spec_info(spec).algorithms_for(SIGN).signing_algorithms == (alg,)


def test_rsa_plaintext_limits_match_the_encrypt_documentation() -> None:
    sha1, sha256 = OAEP
    limits = {
        KeySpec.RSA_2048: (214, 190),
        KeySpec.RSA_3072: (342, 318),
        KeySpec.RSA_4096: (470, 446),
    }
    for spec, (l1, l256) in limits.items():
        info = keyspecs.spec_info(spec)
        assert (info.max_plaintext(sha1), info.max_plaintext(sha256)) == (l1, l256)


def test_hmac_key_lengths_and_digest_lengths() -> None:
    for spec, length in {
        KeySpec.HMAC_224: 28,
        KeySpec.HMAC_256: 32,
        KeySpec.HMAC_384: 48,
        KeySpec.HMAC_512: 64,
    }.items():
        assert keyspecs.spec_info(spec).hmac_key_length == length
    digest_lengths = {
        alg: keyspecs.signing_algorithm_info(alg).digest_length for alg in SigningAlgorithmSpec
    }
    assert digest_lengths[SigningAlgorithmSpec.RSASSA_PSS_SHA_384] == 48
    assert digest_lengths[SigningAlgorithmSpec.ECDSA_SHA_512] == 64
    assert digest_lengths[SigningAlgorithmSpec.ED25519_PH_SHA_512] == 64
    assert digest_lengths[SigningAlgorithmSpec.ED25519_SHA_512] is None
    assert digest_lengths[SigningAlgorithmSpec.ML_DSA_SHAKE_256] is None


def test_customer_master_key_spec_and_ml_kem_ciphertext_lengths() -> None:
    assert keyspecs.spec_info(KeySpec.RSA_2048).customer_master_key_spec is (
        CustomerMasterKeySpec.RSA_2048
    )
    assert keyspecs.spec_info(KeySpec.ML_DSA_44).customer_master_key_spec is None
    assert [
        kem.ciphertext_length(s)
        for s in (KeySpec.ML_KEM_512, KeySpec.ML_KEM_768, KeySpec.ML_KEM_1024)
    ] == [768, 1088, 1568]


def test_sm2_is_unsupported_with_a_clear_reason() -> None:
    assert keyspecs.is_supported(KeySpec.SM2) is False
    reason = keyspecs.unsupported_reason(KeySpec.SM2)
    assert reason is not None
    assert reason.startswith("SM2 key specs are not supported by this openkms build: ")
    assert not keyspecs.data_key_pair_info(DataKeyPairSpec.SM2).supported
    with pytest.raises(errors.UnsupportedOperationException) as info:
        asymmetric.generate_private_key(KeySpec.SM2)
    assert info.value.message == reason
    with pytest.raises(errors.UnsupportedOperationException):
        asymmetric.load_private_key(KeySpec.SM2, b"\x30\x00")


def test_everything_but_sm2_is_supported_in_this_environment() -> None:
    missing = [
        reason
        for reason in (
            keyspecs.unsupported_reason(KeySpec.ML_KEM_512),
            keyspecs.signing_algorithm_unsupported_reason(SigningAlgorithmSpec.ED25519_PH_SHA_512),
        )
        if reason is not None
    ]
    if missing:
        pytest.skip("optional libraries missing: " + " / ".join(missing))
    assert [s for s in KeySpec if not keyspecs.is_supported(s)] == [KeySpec.SM2]
    assert (
        keyspecs.signing_algorithm_unsupported_reason(SigningAlgorithmSpec.ED25519_PH_SHA_512)
        is None
    )


def test_symmetric_specs_are_not_asymmetric_keys() -> None:
    with pytest.raises(ValueError):
        asymmetric.generate_private_key(KeySpec.HMAC_256)
    with pytest.raises(ValueError):
        asymmetric.load_private_key(KeySpec.SYMMETRIC_DEFAULT, b"")


# --- Generation, loading, public keys, reprs ---------------------------------------------------
@pytest.mark.parametrize(
    "spec",
    [s for s in KeySpec if keyspecs.spec_info(s).symmetric is False and keyspecs.is_supported(s)],
    ids=str,
)
def test_generated_keys_round_trip_through_pkcs8_and_spki(keys: KeyCache, spec: KeySpec) -> None:
    der = keys.der(spec)
    handle = keys.handle(spec)
    assert handle.spec is spec
    spki = asymmetric.public_key_der(handle)
    public = asymmetric.load_public_key(spec, spki)
    assert asymmetric.public_key_der(public) == spki
    if spec is not KeySpec.ML_KEM_512:
        # pyca reads both encodings back: PKCS#8 PrivateKeyInfo and X.509 SPKI.
        pyca_private = serialization.load_der_private_key(der, None)
        assert (
            pyca_private.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            == spki
        )
    if keyspecs.spec_info(spec).family is KeyFamily.ML_KEM:
        # Seed form: the same PKCS#8 length for every ML-KEM spec (GenerateDataKeyPair docs).
        assert len(der) == 86


def test_ml_dsa_private_keys_are_in_seed_form(keys: KeyCache) -> None:
    for spec in _specs(KeyFamily.ML_DSA):
        assert len(keys.der(spec)) == 54  # 32-byte seed in PKCS#8


def test_reprs_and_pickling_never_expose_material(keys: KeyCache) -> None:
    for spec in _supported(KeySpec.RSA_2048, KeySpec.ECC_NIST_P256, KeySpec.ML_KEM_512):
        handle = keys.handle(spec)
        der = keys.der(spec)
        for text in (repr(handle), str(handle), f"{handle}", repr([handle])):
            assert "redacted" in text
            assert der.hex() not in text
            assert der[-16:].hex() not in text
            assert spec.value in text
        with pytest.raises(TypeError):
            pickle.dumps(handle)
        assert copy.deepcopy(handle) is handle
        assert "redacted" not in repr(asymmetric.public_key(handle))


@pytest.mark.parametrize(
    ("spec", "other"),
    [
        (KeySpec.RSA_2048, KeySpec.RSA_3072),
        (KeySpec.ECC_NIST_P256, KeySpec.ECC_SECG_P256_K1),
        (KeySpec.ECC_NIST_P384, KeySpec.ECC_NIST_P521),
        (KeySpec.ML_DSA_44, KeySpec.ML_DSA_65),
        (KeySpec.ML_KEM_768, KeySpec.ML_KEM_1024),
        pytest.param(KeySpec.ML_KEM_768, KeySpec.ML_KEM_512, marks=NEEDS_MLKEM512),
        (KeySpec.ECC_NIST_EDWARDS25519, KeySpec.ECC_NIST_P256),
    ],
    ids=str,
)
def test_material_of_another_spec_is_rejected(
    keys: KeyCache, spec: KeySpec, other: KeySpec
) -> None:
    der = keys.der(spec)
    for target, material in ((other, der), (spec, keys.der(other))):
        with pytest.raises(errors.IncorrectKeyMaterialException) as info:
            asymmetric.load_private_key(target, material)
        assert material.hex() not in info.value.message
        spki = asymmetric.public_key_der(asymmetric.load_private_key(spec, der))
        with pytest.raises(errors.IncorrectKeyMaterialException):
            asymmetric.load_public_key(other, spki)


@pytest.mark.parametrize(
    "spec",
    [
        KeySpec.RSA_2048,
        KeySpec.ECC_NIST_P256,
        pytest.param(KeySpec.ML_KEM_512, marks=NEEDS_MLKEM512),
    ],
    ids=str,
)
def test_garbage_material_is_rejected(spec: KeySpec) -> None:
    for junk in (b"", b"\x30\x03\x02\x01\x00", os.urandom(200)):
        with pytest.raises(errors.IncorrectKeyMaterialException):
            asymmetric.load_private_key(spec, junk)
        with pytest.raises(errors.IncorrectKeyMaterialException):
            asymmetric.load_public_key(spec, junk)


# --- Sign and Verify ----------------------------------------------------------------------------
@pytest.mark.parametrize(("spec", "alg"), RAW_CASES)
def test_raw_sign_verify_round_trip(
    keys: KeyCache, spec: KeySpec, alg: SigningAlgorithmSpec
) -> None:
    handle = keys.handle(spec)
    public = asymmetric.load_public_key(spec, asymmetric.public_key_der(handle))
    signature = asymmetric.sign(handle, alg, MESSAGE, MessageType.RAW)
    assert asymmetric.verify(handle, alg, MESSAGE, signature, MessageType.RAW)
    assert asymmetric.verify(public, alg, MESSAGE, signature)
    assert not asymmetric.verify(public, alg, MESSAGE + b".", signature)
    assert not asymmetric.verify(public, alg, MESSAGE, _tamper(signature))
    assert not asymmetric.verify(public, alg, MESSAGE, signature[:-1])
    assert not asymmetric.verify(public, alg, MESSAGE, b"\x00")
    # The RAW limit is 4096 bytes inclusive.
    big = os.urandom(keyspecs.MAX_MESSAGE_BYTES)
    assert asymmetric.verify(public, alg, big, asymmetric.sign(handle, alg, big))
    for oversize in (big + b"x",):
        with pytest.raises(errors.ValidationException):
            asymmetric.sign(handle, alg, oversize)
        with pytest.raises(errors.ValidationException):
            asymmetric.verify(public, alg, oversize, signature)


@pytest.mark.parametrize(("spec", "alg"), DIGEST_CASES)
def test_digest_sign_verify_round_trip(
    keys: KeyCache, spec: KeySpec, alg: SigningAlgorithmSpec
) -> None:
    handle = keys.handle(spec)
    digest = asymmetric.message_digest(alg, MESSAGE)
    signature = asymmetric.sign(handle, alg, digest, MessageType.DIGEST)
    assert asymmetric.verify(handle, alg, digest, signature, MessageType.DIGEST)
    assert not asymmetric.verify(handle, alg, digest, _tamper(signature), MessageType.DIGEST)
    assert not asymmetric.verify(handle, alg, _tamper(digest), signature, MessageType.DIGEST)
    if MessageType.RAW in keyspecs.signing_algorithm_info(alg).message_types:
        # "A message and its hash digest are considered to be the same message": a DIGEST
        # signature is not hashed twice, so it verifies as a RAW one and the reverse.
        assert asymmetric.verify(handle, alg, MESSAGE, signature, MessageType.RAW)
        raw_signature = asymmetric.sign(handle, alg, MESSAGE)
        assert asymmetric.verify(handle, alg, digest, raw_signature, MessageType.DIGEST)
        # A digest sent as RAW is hashed again and so is another message.
        assert not asymmetric.verify(handle, alg, digest, signature, MessageType.RAW)
    for length in (0, 1, len(digest) - 1, len(digest) + 1, 20, 128):
        with pytest.raises(errors.ValidationException) as info:
            asymmetric.sign(handle, alg, os.urandom(length), MessageType.DIGEST)
        assert info.value.message == f"Digest is invalid length for algorithm {alg.value}."
        with pytest.raises(errors.ValidationException):
            asymmetric.verify(handle, alg, os.urandom(length), signature, MessageType.DIGEST)


@pytest.mark.parametrize("spec", _specs(KeyFamily.RSA), ids=str)
def test_rsa_signatures_use_kms_parameters(keys: KeyCache, spec: KeySpec) -> None:
    handle = keys.handle(spec)
    pub = serialization.load_der_public_key(asymmetric.public_key_der(handle))
    assert isinstance(pub, rsa.RSAPublicKey)
    for alg, h in (
        (SigningAlgorithmSpec.RSASSA_PSS_SHA_256, hashes.SHA256()),
        (SigningAlgorithmSpec.RSASSA_PSS_SHA_384, hashes.SHA384()),
        (SigningAlgorithmSpec.RSASSA_PSS_SHA_512, hashes.SHA512()),
    ):
        # MGF1 with the same hash and a salt exactly as long as the digest.
        pss = padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size)
        pub.verify(asymmetric.sign(handle, alg, MESSAGE), MESSAGE, pss, h)
        # Randomized salt: two signatures differ.
        assert asymmetric.sign(handle, alg, MESSAGE) != asymmetric.sign(handle, alg, MESSAGE)
    for alg, h in (
        (SigningAlgorithmSpec.RSASSA_PKCS1_V1_5_SHA_256, hashes.SHA256()),
        (SigningAlgorithmSpec.RSASSA_PKCS1_V1_5_SHA_512, hashes.SHA512()),
    ):
        signature = asymmetric.sign(handle, alg, MESSAGE)
        pub.verify(signature, MESSAGE, padding.PKCS1v15(), h)
        assert len(signature) == keyspecs.spec_info(spec).key_size_bits // 8


@pytest.mark.parametrize("spec", _specs(KeyFamily.ECC), ids=str)
def test_ecdsa_signatures_are_der_and_verify_with_pyca(keys: KeyCache, spec: KeySpec) -> None:
    handle = keys.handle(spec)
    (alg,) = keyspecs.spec_info(spec).algorithms_for(SIGN).signing_algorithms
    hash_name = keyspecs.signing_algorithm_info(alg).hash_name
    h = {"sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha512": hashes.SHA512()}[hash_name]
    pub = serialization.load_der_public_key(asymmetric.public_key_der(handle))
    assert isinstance(pub, ec.EllipticCurvePublicKey)
    signature = asymmetric.sign(handle, alg, MESSAGE)
    assert signature[0] == 0x30  # DER SEQUENCE (RFC 3279 ECDSA-Sig-Value)
    pub.verify(signature, MESSAGE, ec.ECDSA(h))


def test_ed25519_raw_is_pure_ed25519(keys: KeyCache) -> None:
    handle = keys.handle(KeySpec.ECC_NIST_EDWARDS25519)
    pub = serialization.load_der_public_key(asymmetric.public_key_der(handle))
    assert isinstance(pub, ed25519.Ed25519PublicKey)
    signature = asymmetric.sign(handle, SigningAlgorithmSpec.ED25519_SHA_512, MESSAGE)
    pub.verify(signature, MESSAGE)
    # Deterministic (RFC 8032).
    assert signature == asymmetric.sign(handle, SigningAlgorithmSpec.ED25519_SHA_512, MESSAGE)


@pytest.mark.skipif(
    not keyspecs.ED25519PH_AVAILABLE, reason="PyNaCl not installed: no Ed25519ph in this build"
)
def test_ed25519ph_prehashes_the_digest_it_is_given(keys: KeyCache) -> None:
    # "KMS still performs the SHA-512 prehash ... the input is hashed twice": the signature is
    # RFC 8032 Ed25519ph (empty context) of M = the 64-byte DIGEST value. PyCryptodome is an
    # independent Ed25519ph implementation: it signs PH(M) = SHA-512(M) from a SHA512 object.
    crypto_hash = pytest.importorskip("Crypto.Hash.SHA512")
    eddsa = pytest.importorskip("Crypto.Signature.eddsa")
    handle = keys.handle(KeySpec.ECC_NIST_EDWARDS25519)
    pyca_key = serialization.load_der_private_key(keys.der(KeySpec.ECC_NIST_EDWARDS25519), None)
    assert isinstance(pyca_key, ed25519.Ed25519PrivateKey)
    digest = hashlib.sha512(MESSAGE).digest()
    signature = asymmetric.sign(
        handle, SigningAlgorithmSpec.ED25519_PH_SHA_512, digest, MessageType.DIGEST
    )
    other = eddsa.import_private_key(pyca_key.private_bytes_raw())
    expected = eddsa.new(other, "rfc8032").sign(crypto_hash.new(digest))
    assert signature == expected
    # And it is not a pure Ed25519 signature of either the digest or the message.
    pub = pyca_key.public_key()
    for data in (digest, MESSAGE):
        with pytest.raises(Exception):  # noqa: B017 - any verification failure
            pub.verify(signature, data)


@pytest.mark.skipif(
    not keyspecs.ED25519PH_AVAILABLE, reason="PyNaCl not installed: no Ed25519ph in this build"
)
def test_ed25519ph_rfc8032_vector() -> None:
    # RFC 8032 section 7.3, "TEST abc": pins the library to the standard Ed25519ph.
    seed = bytes.fromhex("833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42")
    der = ed25519.Ed25519PrivateKey.from_private_bytes(seed).private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    handle = asymmetric.load_private_key(KeySpec.ECC_NIST_EDWARDS25519, der)
    expected = bytes.fromhex(
        "98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae41"
        "31f85042463c2a355a2003d062adf5aaa10b8c61e636062aaad11c2a26083406"
    )
    nacl = pytest.importorskip("nacl.bindings")
    _pk, sk = nacl.crypto_sign_seed_keypair(seed)
    state = nacl.crypto_sign_ed25519ph_state()
    nacl.crypto_sign_ed25519ph_update(state, b"abc")
    assert nacl.crypto_sign_ed25519ph_final_create(state, sk) == expected
    # Through our API the message must be 64 bytes; check the same key verifies its own output.
    digest = os.urandom(64)
    alg = SigningAlgorithmSpec.ED25519_PH_SHA_512
    signature = asymmetric.sign(handle, alg, digest, MessageType.DIGEST)
    assert asymmetric.verify(handle, alg, digest, signature, MessageType.DIGEST)


@pytest.mark.parametrize("spec", _specs(KeyFamily.ML_DSA), ids=str)
def test_ml_dsa_external_mu_matches_raw(keys: KeyCache, spec: KeySpec) -> None:
    handle = keys.handle(spec)
    alg = SigningAlgorithmSpec.ML_DSA_SHAKE_256
    pub = serialization.load_der_public_key(asymmetric.public_key_der(handle))
    assert isinstance(pub, mldsa.MLDSA44PublicKey | mldsa.MLDSA65PublicKey | mldsa.MLDSA87PublicKey)
    hasher = mldsa.MLDSAMuHasher(pub)  # FIPS 204 mu with the empty context
    hasher.update(MESSAGE)
    mu = hasher.finalize()
    from_mu = asymmetric.sign(handle, alg, mu, MessageType.EXTERNAL_MU)
    from_raw = asymmetric.sign(handle, alg, MESSAGE, MessageType.RAW)
    for signature in (from_mu, from_raw):
        assert asymmetric.verify(handle, alg, MESSAGE, signature, MessageType.RAW)
        assert asymmetric.verify(handle, alg, mu, signature, MessageType.EXTERNAL_MU)
        pub.verify(signature, MESSAGE)
    assert not asymmetric.verify(handle, alg, _tamper(mu), from_mu, MessageType.EXTERNAL_MU)
    for length in (0, 32, 63, 65):
        with pytest.raises(errors.ValidationException):
            asymmetric.sign(handle, alg, os.urandom(length), MessageType.EXTERNAL_MU)


@pytest.mark.parametrize(("spec", "alg"), WRONG_ALGORITHM_CASES)
def test_algorithm_not_listed_for_the_spec_is_invalid_key_usage(
    keys: KeyCache, spec: KeySpec, alg: SigningAlgorithmSpec
) -> None:
    handle = keys.handle(spec)
    with pytest.raises(errors.InvalidKeyUsageException):
        asymmetric.sign(handle, alg, MESSAGE)
    with pytest.raises(errors.InvalidKeyUsageException):
        asymmetric.verify(handle, alg, MESSAGE, b"\x00" * 64)


@pytest.mark.parametrize(
    ("spec", "alg", "message_type", "length"),
    [
        (
            KeySpec.ECC_NIST_EDWARDS25519,
            SigningAlgorithmSpec.ED25519_SHA_512,
            MessageType.DIGEST,
            64,
        ),
        pytest.param(
            KeySpec.ECC_NIST_EDWARDS25519,
            SigningAlgorithmSpec.ED25519_PH_SHA_512,
            MessageType.RAW,
            64,
            # Without PyNaCl this is UnsupportedOperation first (rule 2 precedes rule 3).
            marks=pytest.mark.skipif(not keyspecs.ED25519PH_AVAILABLE, reason="no PyNaCl"),
        ),
        (
            KeySpec.ECC_NIST_EDWARDS25519,
            SigningAlgorithmSpec.ED25519_SHA_512,
            MessageType.EXTERNAL_MU,
            64,
        ),
        (KeySpec.ECC_NIST_P256, SigningAlgorithmSpec.ECDSA_SHA_256, MessageType.EXTERNAL_MU, 64),
        (KeySpec.RSA_2048, SigningAlgorithmSpec.RSASSA_PSS_SHA_512, MessageType.EXTERNAL_MU, 64),
        (KeySpec.ML_DSA_44, SigningAlgorithmSpec.ML_DSA_SHAKE_256, MessageType.DIGEST, 64),
        (KeySpec.ML_DSA_44, SigningAlgorithmSpec.ML_DSA_SHAKE_256, MessageType.DIGEST, 32),
    ],
    ids=str,
)
def test_message_type_the_algorithm_does_not_take_is_a_validation_error(
    keys: KeyCache, spec: KeySpec, alg: SigningAlgorithmSpec, message_type: MessageType, length: int
) -> None:
    handle = keys.handle(spec)
    with pytest.raises(errors.ValidationException) as info:
        asymmetric.sign(handle, alg, os.urandom(length), message_type)
    assert message_type.value in info.value.message
    with pytest.raises(errors.ValidationException):
        asymmetric.verify(handle, alg, os.urandom(length), b"\x00" * 64, message_type)


def test_keys_without_sign_verify_cannot_sign(keys: KeyCache) -> None:
    for spec in _supported(KeySpec.ML_KEM_768, KeySpec.ML_KEM_512):
        with pytest.raises(errors.InvalidKeyUsageException):
            asymmetric.sign(keys.handle(spec), SigningAlgorithmSpec.ML_DSA_SHAKE_256, MESSAGE)


# --- RSA-OAEP --------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", RSA_SPECS, ids=str)
@pytest.mark.parametrize("alg", OAEP, ids=str)
def test_oaep_round_trip_at_the_limit(
    keys: KeyCache, spec: KeySpec, alg: EncryptionAlgorithmSpec
) -> None:
    handle = keys.handle(spec)
    public = asymmetric.load_public_key(spec, asymmetric.public_key_der(handle))
    limit = keyspecs.spec_info(spec).max_plaintext(alg)
    assert limit is not None
    for plaintext in (b"x", os.urandom(limit)):
        ciphertext = asymmetric.encrypt(public, alg, plaintext)
        assert len(ciphertext) == keyspecs.spec_info(spec).key_size_bits // 8
        assert asymmetric.decrypt(handle, alg, ciphertext) == plaintext
    # Randomized: encrypting twice gives two ciphertexts.
    assert asymmetric.encrypt(handle, alg, b"x") != asymmetric.encrypt(handle, alg, b"x")
    with pytest.raises(errors.ValidationException):
        asymmetric.encrypt(public, alg, os.urandom(limit + 1))


@pytest.mark.parametrize("spec", RSA_SPECS, ids=str)
def test_oaep_uses_the_same_hash_for_mgf1(keys: KeyCache, spec: KeySpec) -> None:
    handle = keys.handle(spec)
    pub = serialization.load_der_public_key(asymmetric.public_key_der(handle))
    assert isinstance(pub, rsa.RSAPublicKey)
    for alg, h in zip(OAEP, (hashes.SHA1(), hashes.SHA256()), strict=True):
        ciphertext = pub.encrypt(b"secret", padding.OAEP(padding.MGF1(h), h, None))
        assert asymmetric.decrypt(handle, alg, ciphertext) == b"secret"


def _assert_invalid_ciphertext(
    excinfo: pytest.ExceptionInfo[errors.InvalidCiphertextException],
) -> None:
    assert type(excinfo.value) is errors.InvalidCiphertextException
    assert excinfo.value.message == errors.INVALID_CIPHERTEXT_MESSAGE
    assert str(excinfo.value) == errors.INVALID_CIPHERTEXT_MESSAGE


@pytest.mark.parametrize("spec", RSA_SPECS, ids=str)
def test_decrypt_of_garbage_is_invalid_ciphertext(keys: KeyCache, spec: KeySpec) -> None:
    handle = keys.handle(spec)
    size = keyspecs.spec_info(spec).key_size_bits // 8
    good = asymmetric.encrypt(handle, EncryptionAlgorithmSpec.RSAES_OAEP_SHA_256, b"secret")
    bad_inputs = [
        (EncryptionAlgorithmSpec.RSAES_OAEP_SHA_256, os.urandom(size)),
        (EncryptionAlgorithmSpec.RSAES_OAEP_SHA_256, b"\x00" * size),
        (EncryptionAlgorithmSpec.RSAES_OAEP_SHA_256, b"\xff" * size),
        (EncryptionAlgorithmSpec.RSAES_OAEP_SHA_256, os.urandom(size - 1)),
        (EncryptionAlgorithmSpec.RSAES_OAEP_SHA_256, good + b"\x00"),
        (EncryptionAlgorithmSpec.RSAES_OAEP_SHA_256, b"\x01"),
        (EncryptionAlgorithmSpec.RSAES_OAEP_SHA_256, _tamper(good)),
        # The other OAEP hash than the one used to encrypt.
        (EncryptionAlgorithmSpec.RSAES_OAEP_SHA_1, good),
    ]
    for alg, ciphertext in bad_inputs:
        with pytest.raises(errors.InvalidCiphertextException) as excinfo:
            asymmetric.decrypt(handle, alg, ciphertext)
        _assert_invalid_ciphertext(excinfo)


def test_encryption_algorithm_not_listed_for_the_spec_is_invalid_key_usage(keys: KeyCache) -> None:
    rsa_handle = keys.handle(KeySpec.RSA_2048)
    for alg in (EncryptionAlgorithmSpec.SYMMETRIC_DEFAULT, EncryptionAlgorithmSpec.SM2_PKE):
        with pytest.raises(errors.InvalidKeyUsageException):
            asymmetric.encrypt(rsa_handle, alg, b"x")
        with pytest.raises(errors.InvalidKeyUsageException):
            asymmetric.decrypt(rsa_handle, alg, b"x" * 256)
    ec_handle = keys.handle(KeySpec.ECC_NIST_P256)
    with pytest.raises(errors.InvalidKeyUsageException):
        asymmetric.encrypt(ec_handle, EncryptionAlgorithmSpec.RSAES_OAEP_SHA_256, b"x")


# --- ECDH ------------------------------------------------------------------------------------
_CURVE_OF = {
    KeySpec.ECC_NIST_P256: ec.SECP256R1,
    KeySpec.ECC_NIST_P384: ec.SECP384R1,
    KeySpec.ECC_NIST_P521: ec.SECP521R1,
}


@pytest.mark.parametrize("spec", list(_CURVE_OF), ids=str)
def test_ecdh_matches_the_peers_own_computation(keys: KeyCache, spec: KeySpec) -> None:
    handle = keys.handle(spec)
    peer = ec.generate_private_key(_CURVE_OF[spec]())
    peer_spki = peer.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    secret = agreement.derive_shared_secret(handle, KeyAgreementAlgorithmSpec.ECDH, peer_spki)
    our_public = serialization.load_der_public_key(asymmetric.public_key_der(handle))
    assert isinstance(our_public, ec.EllipticCurvePublicKey)
    assert secret == peer.exchange(ec.ECDH(), our_public)
    assert len(secret) == (keyspecs.spec_info(spec).key_size_bits + 7) // 8


@pytest.mark.parametrize("spec", list(_CURVE_OF), ids=str)
def test_ecdh_rejects_peer_keys_that_are_not_spki_on_the_same_curve(
    keys: KeyCache, spec: KeySpec
) -> None:
    handle = keys.handle(spec)
    other_curve = ec.SECP256K1() if spec is KeySpec.ECC_NIST_P256 else ec.SECP256R1()
    wrong_curve = ec.generate_private_key(other_curve).public_key()
    rsa_der = asymmetric.public_key_der(keys.handle(KeySpec.RSA_2048))
    right = ec.generate_private_key(_CURVE_OF[spec]()).public_key()
    raw_point = right.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    pem = right.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    der = right.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for bad in (
        wrong_curve.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        rsa_der,
        raw_point,
        pem,
        der[:-1],
        b"",
        os.urandom(91),
    ):
        with pytest.raises(errors.ValidationException):
            agreement.derive_shared_secret(handle, KeyAgreementAlgorithmSpec.ECDH, bad)


def test_ecdh_needs_a_key_agreement_spec(keys: KeyCache) -> None:
    peer = (
        ec.generate_private_key(ec.SECP256K1())
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    for spec in (
        KeySpec.ECC_SECG_P256_K1,
        KeySpec.RSA_2048,
        KeySpec.ECC_NIST_EDWARDS25519,
        KeySpec.ML_KEM_768,
    ):
        with pytest.raises(errors.InvalidKeyUsageException):
            agreement.derive_shared_secret(keys.handle(spec), KeyAgreementAlgorithmSpec.ECDH, peer)


# --- ML-KEM -----------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", ML_KEM_SPECS, ids=str)
def test_ml_kem_shared_secrets_match(keys: KeyCache, spec: KeySpec) -> None:
    handle = keys.handle(spec)
    public = asymmetric.load_public_key(spec, asymmetric.public_key_der(handle))
    result = kem.encapsulate(public, EncapsulationAlgorithmSpec.ML_KEM)
    assert len(result.shared_secret) == keyspecs.ML_KEM_SHARED_SECRET_BYTES
    assert len(result.ciphertext) == kem.ciphertext_length(spec)
    assert kem.decapsulate(handle, result.ciphertext) == result.shared_secret
    assert result.shared_secret.hex() not in repr(result)
    again = kem.encapsulate(handle)
    assert again.shared_secret != result.shared_secret
    # Implicit rejection: a forged ciphertext of the right length yields another secret.
    forged = kem.decapsulate(handle, _tamper(result.ciphertext))
    assert len(forged) == 32
    assert forged != result.shared_secret
    for bad_length in (b"", result.ciphertext[:-1], result.ciphertext + b"\x00"):
        with pytest.raises(errors.InvalidCiphertextException) as excinfo:
            kem.decapsulate(handle, bad_length)
        _assert_invalid_ciphertext(excinfo)


def test_ml_kem_needs_an_ml_kem_spec(keys: KeyCache) -> None:
    with pytest.raises(errors.InvalidKeyUsageException):
        kem.encapsulate(keys.handle(KeySpec.ECC_NIST_P256))
    with pytest.raises(errors.InvalidKeyUsageException):
        kem.decapsulate(keys.handle(KeySpec.ML_DSA_44), b"\x00" * 768)


@pytest.mark.skipif(not keyspecs.MLKEM512_AVAILABLE, reason="PyCryptodome not installed")
@pytest.mark.parametrize("spec", [KeySpec.ML_KEM_768, KeySpec.ML_KEM_1024], ids=str)
def test_pycryptodome_and_pyca_ml_kem_agree(keys: KeyCache, spec: KeySpec) -> None:
    # ML-KEM-512 runs on PyCryptodome; check that library against pyca/OpenSSL on the
    # parameter sets both implement: same PKCS#8 seed encoding, same SPKI, interoperable.
    pcd = pytest.importorskip("Crypto.PublicKey.MLKEM")
    der = keys.der(spec)
    other = pcd.import_key(der)
    assert other.export_key(format="DER") == der
    assert other.public_key().export_key(format="DER") == asymmetric.public_key_der(
        keys.handle(spec)
    )
    pyca_private = serialization.load_der_private_key(der, None)
    assert isinstance(pyca_private, mlkem.MLKEM768PrivateKey | mlkem.MLKEM1024PrivateKey)
    secret, ciphertext = other._encaps()
    assert pyca_private.decapsulate(ciphertext) == secret
    result = kem.encapsulate(keys.handle(spec))
    assert other._decaps(result.ciphertext) == result.shared_secret


def test_only_pkcs8_and_spki_containers_are_accepted(keys: KeyCache) -> None:
    enc, priv_fmt, pub_fmt = (
        serialization.Encoding.DER,
        serialization.PrivateFormat,
        serialization.PublicFormat,
    )
    for spec in (KeySpec.RSA_2048, KeySpec.ECC_NIST_P256):
        pyca_key = serialization.load_der_private_key(keys.der(spec), None)
        assert isinstance(pyca_key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
        traditional = pyca_key.private_bytes(
            enc, priv_fmt.TraditionalOpenSSL, serialization.NoEncryption()
        )
        assert not asymmetric.is_private_key_info(traditional)
        with pytest.raises(errors.IncorrectKeyMaterialException):
            asymmetric.load_private_key(spec, traditional)
        spki = asymmetric.public_key_der(keys.handle(spec))
        assert asymmetric.is_subject_public_key_info(spki)
        assert not asymmetric.is_private_key_info(spki)
        assert not asymmetric.is_subject_public_key_info(keys.der(spec))
        with pytest.raises(errors.IncorrectKeyMaterialException):
            asymmetric.load_public_key(spec, keys.der(spec))
        with pytest.raises(errors.IncorrectKeyMaterialException):
            asymmetric.load_private_key(spec, spki)
        # Trailing bytes after the outer SEQUENCE are refused.
        with pytest.raises(errors.IncorrectKeyMaterialException):
            asymmetric.load_private_key(spec, keys.der(spec) + b"\x00")
    rsa_public = serialization.load_der_public_key(
        asymmetric.public_key_der(keys.handle(KeySpec.RSA_2048))
    )
    assert isinstance(rsa_public, rsa.RSAPublicKey)
    pkcs1 = rsa_public.public_bytes(serialization.Encoding.DER, pub_fmt.PKCS1)
    with pytest.raises(errors.IncorrectKeyMaterialException):
        asymmetric.load_public_key(KeySpec.RSA_2048, pkcs1)


@NEEDS_MLKEM512
def test_missing_optional_libraries_surface_as_unsupported_operation(
    keys: KeyCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a build without PyCryptodome / PyNaCl answers (the probes fill these in).
    reason = "ML_KEM_512 is not supported by this openkms build: test"
    handle = keys.handle(KeySpec.ML_KEM_512)
    info = keyspecs.spec_info(KeySpec.ML_KEM_512)
    monkeypatch.setitem(
        keyspecs.KEY_SPECS, KeySpec.ML_KEM_512, dataclasses.replace(info, unsupported_reason=reason)
    )
    assert not keyspecs.data_key_pair_info(DataKeyPairSpec.ML_KEM_512).supported
    for call in (
        lambda: asymmetric.generate_private_key(KeySpec.ML_KEM_512),
        lambda: asymmetric.load_private_key(KeySpec.ML_KEM_512, keys.der(KeySpec.ML_KEM_512)),
        lambda: kem.encapsulate(handle),
        lambda: kem.decapsulate(handle, b"\x00" * 768),
    ):
        with pytest.raises(errors.UnsupportedOperationException) as excinfo:
            call()
        assert excinfo.value.message == reason
    ph_reason = "ED25519_PH_SHA_512 is not supported by this openkms build: test"
    monkeypatch.setattr(keyspecs, "_ED25519PH_REASON", ph_reason)
    ed = keys.handle(KeySpec.ECC_NIST_EDWARDS25519)
    with pytest.raises(errors.UnsupportedOperationException) as excinfo:
        asymmetric.sign(
            ed, SigningAlgorithmSpec.ED25519_PH_SHA_512, b"\x00" * 64, MessageType.DIGEST
        )
    assert excinfo.value.message == ph_reason
    # Pure Ed25519 on the same key is unaffected.
    asymmetric.sign(ed, SigningAlgorithmSpec.ED25519_SHA_512, MESSAGE)
