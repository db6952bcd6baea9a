"""HMAC keys, GenerateMac and VerifyMac of openkms.crypto.mac."""

from __future__ import annotations

import os
import pickle

import pytest

from openkms import errors
from openkms.crypto import mac
from openkms.crypto.mac import HmacKey
from openkms.types import KeySpec, MacAlgorithmSpec

SPEC_OF = {
    MacAlgorithmSpec.HMAC_SHA_224: KeySpec.HMAC_224,
    MacAlgorithmSpec.HMAC_SHA_256: KeySpec.HMAC_256,
    MacAlgorithmSpec.HMAC_SHA_384: KeySpec.HMAC_384,
    MacAlgorithmSpec.HMAC_SHA_512: KeySpec.HMAC_512,
}

# RFC 4231 section 4: test cases 1, 2, 3, 4, 6 and 7 (5 is a truncated output, which KMS
# never returns).
_TC1 = (b"\x0b" * 20, b"Hi There")
_TC2 = (b"Jefe", b"what do ya want for nothing?")
_TC3 = (b"\xaa" * 20, b"\xdd" * 50)
_TC4 = (bytes(range(1, 26)), b"\xcd" * 50)
_TC6 = (b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First")
_TC7 = (
    b"\xaa" * 131,
    b"This is a test using a larger than block-size key and a larger than block-size data. "
    b"The key needs to be hashed before being used by the HMAC algorithm.",
)
RFC4231 = {
    "1": (
        _TC1,
        "896fb1128abbdf196832107cd49df33f47b4b1169912ba4f53684b22",
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
        "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59c"
        "faea9ea9076ede7f4af152e8b2fa9cb6",
        "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde"
        "daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854",
    ),
    "2": (
        _TC2,
        "a30e01098bc6dbbf45690f3a7e9e6d0f8bbea2a39e6148008fd05e44",
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
        "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e"
        "8e2240ca5e69e2c78b3239ecfab21649",
        "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
        "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
    ),
    "3": (
        _TC3,
        "7fb3cb3588c6c1f6ffa9694d7d6ad2649365b0c1f65d69d1ec8333ea",
        "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
        "88062608d3e6ad8a0aa2ace014c8a86f0aa635d947ac9febe83ef4e55966144b"
        "2a5ab39dc13814b94e3ab6e101a34f27",
        "fa73b0089d56a284efb0f0756c890be9b1b5dbdd8ee81a3655f83e33b2279d39"
        "bf3e848279a722c806b485a47e67c807b946a337bee8942674278859e13292fb",
    ),
    "4": (
        _TC4,
        "6c11506874013cac6a2abc1bb382627cec6a90d86efc012de7afec5a",
        "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
        "3e8a69b7783c25851933ab6290af6ca77a9981480850009cc5577c6e1f573b4e"
        "6801dd23c4a7d679ccf8a386c674cffb",
        "b0ba465637458c6990e5a8c5f61d4af7e576d97ff94b872de76f8050361ee3db"
        "a91ca5c11aa25eb4d679275cc5788063a5f19741120c4f2de2adebeb10a298dd",
    ),
    "6": (
        _TC6,
        "95e9a0db962095adaebe9b2d6f0dbce2d499f112f2d2b7273fa6870e",
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
        "4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c6"
        "0c2ef6ab4030fe8296248df163f44952",
        "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f352"
        "6b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598",
    ),
    "7": (
        _TC7,
        "3a854166ac5d9f023f54d517d0b39dbd946770db9c2b95c9f6f565d1",
        "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
        "6617178e941f020d351e2f254e8fd32c602420feb0b8fb9adccebb82461e99c5"
        "a678cc31e799176d3860e6110c46523e",
        "e37b6a775dc87dbaa4dfa9f96e5e3ffddebd71f8867289865df5a32d20cdc944"
        "b6022cac3c4982b10d5eeb55c3e4de15134676fb6de0446065c97440fa8c6a58",
    ),
}
VECTORS = [
    pytest.param(key, data, alg, expected, id=f"tc{case}-{alg.value}")
    for case, ((key, data), *tags) in RFC4231.items()
    for alg, expected in zip(SPEC_OF, tags, strict=True)
]


@pytest.mark.parametrize(("key", "data", "alg", "expected"), VECTORS)
def test_rfc4231_vectors(key: bytes, data: bytes, alg: MacAlgorithmSpec, expected: str) -> None:
    hmac_key = HmacKey(SPEC_OF[alg], key)
    tag = mac.generate_mac(hmac_key, alg, data)
    assert tag.hex() == expected
    mac.verify_mac(hmac_key, alg, data, bytes.fromhex(expected))


@pytest.mark.parametrize("alg", list(SPEC_OF), ids=str)
def test_mismatch_is_kms_invalid_mac(alg: MacAlgorithmSpec) -> None:
    spec = SPEC_OF[alg]
    key = HmacKey(spec, mac.generate_hmac_key(spec))
    message = b"message"
    tag = mac.generate_mac(key, alg, message)
    other_key = HmacKey(spec, mac.generate_hmac_key(spec))
    for bad_key, bad_message, bad_tag in (
        (key, message + b"!", tag),
        (key, message, tag[:-1]),
        (key, message, tag + b"\x00"),
        (key, message, bytes([tag[0] ^ 0x80]) + tag[1:]),
        (key, message, bytes(len(tag))),
        (key, message, b""),
        (other_key, message, tag),
    ):
        with pytest.raises(errors.KMSInvalidMacException) as info:
            mac.verify_mac(bad_key, alg, bad_message, bad_tag)
        assert info.value.message == ""
        assert info.value.code == "KMSInvalidMacException"


def test_verify_compares_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = mac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(mac, "compare_digest", spy)
    key = HmacKey(KeySpec.HMAC_256, b"k" * 32)
    tag = mac.generate_mac(key, MacAlgorithmSpec.HMAC_SHA_256, b"m")
    mac.verify_mac(key, MacAlgorithmSpec.HMAC_SHA_256, b"m", tag)
    with pytest.raises(errors.KMSInvalidMacException):
        mac.verify_mac(key, MacAlgorithmSpec.HMAC_SHA_256, b"m", b"\x00" * 32)
    # Both outcomes went through hmac.compare_digest, never through ==.
    assert [c[1] for c in calls] == [tag, b"\x00" * 32]


@pytest.mark.parametrize("spec", list(SPEC_OF.values()), ids=str)
def test_algorithm_of_another_spec_is_invalid_key_usage(spec: KeySpec) -> None:
    key = HmacKey(spec, mac.generate_hmac_key(spec))
    for alg, alg_spec in SPEC_OF.items():
        if alg_spec is spec:
            continue
        with pytest.raises(errors.InvalidKeyUsageException):
            mac.generate_mac(key, alg, b"m")
        with pytest.raises(errors.InvalidKeyUsageException):
            mac.verify_mac(key, alg, b"m", b"\x00" * 32)


def test_message_limit_is_4096_bytes() -> None:
    key = HmacKey(KeySpec.HMAC_512, mac.generate_hmac_key(KeySpec.HMAC_512))
    alg = MacAlgorithmSpec.HMAC_SHA_512
    tag = mac.generate_mac(key, alg, b"a" * 4096)
    mac.verify_mac(key, alg, b"a" * 4096, tag)
    with pytest.raises(errors.ValidationException):
        mac.generate_mac(key, alg, b"a" * 4097)
    with pytest.raises(errors.ValidationException):
        mac.verify_mac(key, alg, b"a" * 4097, tag)


def test_generated_key_lengths_equal_the_digest_size() -> None:
    lengths = {
        KeySpec.HMAC_224: 28,
        KeySpec.HMAC_256: 32,
        KeySpec.HMAC_384: 48,
        KeySpec.HMAC_512: 64,
    }
    for spec, length in lengths.items():
        first, second = mac.generate_hmac_key(spec), mac.generate_hmac_key(spec)
        assert len(first) == len(second) == length
        assert first != second
    for not_hmac in (KeySpec.SYMMETRIC_DEFAULT, KeySpec.RSA_2048):
        with pytest.raises(ValueError):
            mac.generate_hmac_key(not_hmac)
        with pytest.raises(ValueError):
            HmacKey(not_hmac, b"k" * 32)


def test_imported_material_lengths() -> None:
    bounds = {
        KeySpec.HMAC_224: (28, 64),
        KeySpec.HMAC_256: (32, 64),
        KeySpec.HMAC_384: (48, 128),
        KeySpec.HMAC_512: (64, 128),
    }
    for spec, (low, high) in bounds.items():
        mac.validate_hmac_key_material(spec, os.urandom(low))
        mac.validate_hmac_key_material(spec, os.urandom(high))
        for bad in (low - 1, high + 1):
            material = os.urandom(bad)
            with pytest.raises(errors.IncorrectKeyMaterialException) as info:
                mac.validate_hmac_key_material(spec, material)
            assert material.hex() not in info.value.message


def test_key_repr_and_pickle_never_expose_material() -> None:
    material = bytes.fromhex("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff")
    key = mac.load_hmac_key(KeySpec.HMAC_256, material)
    for text in (repr(key), str(key), f"{key}", repr({"k": key})):
        assert "redacted" in text
        assert material.hex() not in text
        assert "\\x00\\x11" not in text
    with pytest.raises(TypeError):
        pickle.dumps(key)
    with pytest.raises(ValueError):
        HmacKey(KeySpec.HMAC_256, b"")
