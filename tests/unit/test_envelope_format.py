"""Message format pieces: encryption context encoding, headers, key derivation, suites."""

from __future__ import annotations

import hashlib
import hmac
import io
import struct

import pytest

from openkms.envelope.errors import (
    CommitmentPolicyError,
    EncryptionContextError,
    MalformedMessageError,
    TruncatedMessageError,
    UnsupportedSuiteError,
)
from openkms.envelope.materials import check_user_context, decode_public_key, encode_public_key
from openkms.envelope.message import (
    CONTENT_FRAMED,
    CONTENT_NON_FRAMED,
    EncryptedDataKey,
    ExactReader,
    MessageHeader,
    body_aad,
    frame_iv,
    parse_encryption_context,
    read_header,
    serialize_encryption_context,
)
from openkms.envelope.suites import (
    DEFAULT_SUITE,
    SUITES,
    UNSIGNED_SUITE,
    CommitmentPolicy,
    suite_by_id,
    suite_by_name,
)


# --- encryption context ----------------------------------------------------------------------
def test_context_is_sorted_by_utf8_key_bytes() -> None:
    encoded = serialize_encryption_context({"b": "2", "a": "1", "é": "3", "Z": "0"})
    assert encoded == (
        b"\x00\x04"
        + b"\x00\x01Z\x00\x010"
        + b"\x00\x01a\x00\x011"
        + b"\x00\x01b\x00\x012"
        + b"\x00\x02\xc3\xa9\x00\x013"
    )
    assert parse_encryption_context(encoded) == {"Z": "0", "a": "1", "b": "2", "é": "3"}


def test_empty_context_is_empty_bytes() -> None:
    assert serialize_encryption_context({}) == b""
    assert parse_encryption_context(b"") == {}


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\x00",  # zero count
        b"\x00\x01\x00\x01a",  # cut short
        b"\x00\x02\x00\x01a\x00\x01b\x00\x01a\x00\x01c",  # duplicate key
        b"\x00\x01\x00\x01\xff\x00\x01b",  # bad UTF-8
        b"\x00\x01\x00\x01a\x00\x01b\x00",  # trailing byte
    ],
)
def test_bad_context_encodings_are_rejected(data: bytes) -> None:
    with pytest.raises(MalformedMessageError):
        parse_encryption_context(data)


def test_context_too_large_is_refused() -> None:
    with pytest.raises(EncryptionContextError):
        serialize_encryption_context({"k": "v" * 70000})
    with pytest.raises(EncryptionContextError):
        serialize_encryption_context({f"k{i}": "v" * 100 for i in range(700)})


def test_reserved_context_keys_are_refused() -> None:
    with pytest.raises(EncryptionContextError, match="reserved"):
        check_user_context({"aws-crypto-public-key": "x"})
    assert check_user_context({"aws-other": "x"}) == {"aws-other": "x"}


# --- headers -----------------------------------------------------------------------------------
def _edks() -> tuple[EncryptedDataKey, ...]:
    return (
        EncryptedDataKey("aws-kms", b"arn:aws:kms:us-east-1:111122223333:key/k1", b"\x01" * 40),
        EncryptedDataKey("aws-kms", b"arn:aws:kms:us-east-1:111122223333:key/k2", b"\x02" * 41),
    )


@pytest.mark.parametrize("suite_id", sorted(SUITES))
def test_header_round_trip(suite_id: int) -> None:
    suite = SUITES[suite_id]
    header = MessageHeader(
        version=suite.message_version,
        suite=suite,
        message_id=bytes(range(suite.message_id_length)),
        encryption_context={"purpose": "test", "b": "c"},
        encrypted_data_keys=_edks(),
        content_type=CONTENT_FRAMED,
        frame_length=4096,
        suite_data=b"\x07" * suite.suite_data_length,
        header_iv=bytes(12) if suite.message_version == 1 else b"",
        header_tag=b"\x09" * 16,
    )
    body = header.serialize_body()
    parsed = read_header(ExactReader(io.BytesIO(body + header.serialize_auth())))
    assert parsed.body == body
    assert parsed.suite is suite
    assert parsed.message_id == header.message_id
    assert parsed.encryption_context == {"b": "c", "purpose": "test"}
    assert parsed.encrypted_data_keys == _edks()
    assert parsed.frame_length == 4096
    assert parsed.suite_data == header.suite_data
    assert parsed.header_tag == header.header_tag
    assert parsed.header_iv == header.header_iv


def test_v2_header_layout() -> None:
    suite = UNSIGNED_SUITE
    header = MessageHeader(
        version=2,
        suite=suite,
        message_id=b"\xaa" * 32,
        encryption_context={},
        encrypted_data_keys=(EncryptedDataKey("p", b"i", b"c"),),
        content_type=CONTENT_FRAMED,
        frame_length=1024,
        suite_data=b"\xcc" * 32,
    )
    assert header.serialize_body() == (
        b"\x02\x04\x78"
        + b"\xaa" * 32
        + b"\x00\x00"  # empty AAD
        + b"\x00\x01\x00\x01p\x00\x01i\x00\x01c"
        + b"\x02"
        + struct.pack(">I", 1024)
        + b"\xcc" * 32
    )


def test_v1_header_layout() -> None:
    suite = SUITES[0x0178]
    header = MessageHeader(
        version=1,
        suite=suite,
        message_id=b"\xaa" * 16,
        encryption_context={"a": "b"},
        encrypted_data_keys=(EncryptedDataKey("p", b"i", b"c"),),
        content_type=CONTENT_NON_FRAMED,
        frame_length=0,
    )
    assert header.serialize_body() == (
        b"\x01\x80\x01\x78"
        + b"\xaa" * 16
        + b"\x00\x08\x00\x01\x00\x01a\x00\x01b"
        + b"\x00\x01\x00\x01p\x00\x01i\x00\x01c"
        + b"\x01\x00\x00\x00\x00\x0c\x00\x00\x00\x00"
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x03", "unknown format version"),
        (b"\x01\x81", "message type"),
        (b"\x02\x99\x99", "unknown algorithm suite"),
        (b"\x02\x01\x78", "belongs to message format version 1"),
        (b"\x02\x04\x78" + bytes(32) + b"\x00\x00\x00\x00", "no encrypted data keys"),
    ],
)
def test_bad_headers_are_rejected(data: bytes, message: str) -> None:
    with pytest.raises(MalformedMessageError, match=message):
        read_header(ExactReader(io.BytesIO(data + bytes(200))))


def test_truncated_header_is_reported_as_truncation() -> None:
    with pytest.raises(TruncatedMessageError, match="ends inside"):
        read_header(ExactReader(io.BytesIO(b"\x02\x04\x78" + bytes(10))))


def test_too_many_encrypted_data_keys_are_refused_before_parsing_them() -> None:
    data = b"\x02\x04\x78" + bytes(32) + b"\x00\x00" + b"\x00\x05"
    with pytest.raises(MalformedMessageError, match="more than the allowed 4"):
        read_header(ExactReader(io.BytesIO(data)), max_encrypted_data_keys=4)


def test_frame_iv_and_body_aad() -> None:
    assert frame_iv(1) == bytes(11) + b"\x01"
    assert frame_iv(0x01020304) == bytes(8) + b"\x01\x02\x03\x04"
    aad = body_aad(b"M" * 32, b"AWSKMSEncryptionClient Frame", 7, 4096)
    assert aad == b"M" * 32 + b"AWSKMSEncryptionClient Frame" + struct.pack(">IQ", 7, 4096)


# --- key derivation --------------------------------------------------------------------------
def _hkdf(hash_name: str, ikm: bytes, salt: bytes | None, info: bytes, length: int) -> bytes:
    """RFC 5869 written out, independent of the library's use of pyca's HKDF."""
    size = hashlib.new(hash_name).digest_size
    prk = hmac.new(salt or bytes(size), ikm, hash_name).digest()
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes((counter,)), hash_name).digest()
        out += block
        counter += 1
    return out[:length]


@pytest.mark.parametrize("suite_id", sorted(SUITES))
def test_key_derivation_follows_the_specification(suite_id: int) -> None:
    suite = SUITES[suite_id]
    data_key = bytes(range(1, suite.data_key_length + 1))
    message_id = bytes(range(100, 100 + suite.message_id_length))
    key, commit = suite.derive_keys(data_key, message_id)
    if suite.kdf_hash is None:
        assert key == data_key and commit is None
    elif suite.committing:
        assert key == _hkdf("sha512", data_key, message_id, suite.id_bytes + b"DERIVEKEY", 32)
        assert commit == _hkdf("sha512", data_key, message_id, b"COMMITKEY", 32)
    else:
        assert key == _hkdf(
            suite.kdf_hash, data_key, None, suite.id_bytes + message_id, suite.key_length
        )
        assert commit is None


def test_data_key_length_is_checked() -> None:
    with pytest.raises(UnsupportedSuiteError):
        DEFAULT_SUITE.derive_keys(bytes(16), bytes(32))


# --- suites and policy -------------------------------------------------------------------------
def test_suite_table() -> None:
    assert DEFAULT_SUITE.suite_id == 0x0578 and DEFAULT_SUITE.signed and DEFAULT_SUITE.committing
    assert UNSIGNED_SUITE.suite_id == 0x0478 and not UNSIGNED_SUITE.signed
    assert {s.suite_id for s in SUITES.values() if s.message_version == 2} == {0x0478, 0x0578}
    assert suite_by_name("aes_256_gcm_hkdf_sha512_commit_key") is UNSIGNED_SUITE
    assert suite_by_name("0x0378") is SUITES[0x0378]
    assert suite_by_name("0178") is SUITES[0x0178]
    with pytest.raises(UnsupportedSuiteError):
        suite_by_name("AES_999")
    with pytest.raises(UnsupportedSuiteError):
        suite_by_id(0x0999)


def test_commitment_policy() -> None:
    forbid = CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT
    allow = CommitmentPolicy.REQUIRE_ENCRYPT_ALLOW_DECRYPT
    require = CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    v1 = SUITES[0x0378]
    with pytest.raises(CommitmentPolicyError):
        forbid.check_encrypt(DEFAULT_SUITE)
    forbid.check_encrypt(v1)
    for policy in (allow, require):
        policy.check_encrypt(DEFAULT_SUITE)
        with pytest.raises(CommitmentPolicyError):
            policy.check_encrypt(v1)
    allow.check_decrypt(v1)
    with pytest.raises(CommitmentPolicyError, match="version 1"):
        require.check_decrypt(v1)
    assert forbid.default_suite() is v1
    assert allow.default_suite() is DEFAULT_SUITE


@pytest.mark.parametrize("suite_id", [0x0578, 0x0378, 0x0214])
def test_public_key_encoding_is_the_compressed_point(suite_id: int) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    suite = SUITES[suite_id]
    key = ec.generate_private_key(suite.signature_curve()).public_key()
    encoded = encode_public_key(key)
    size = 1 + (48 if suite.curve == "secp384r1" else 32)
    assert len(__import__("base64").b64decode(encoded)) == size
    assert decode_public_key(suite, encoded) == key
    with pytest.raises(MalformedMessageError):
        decode_public_key(suite, "not base64!")


def test_the_library_imports_nothing_of_the_server() -> None:
    import subprocess
    import sys

    code = (
        "import sys, openkms.envelope, openkms.envelope.api\n"
        "bad = sorted(m for m in sys.modules if m.startswith('openkms.')"
        " and not m.startswith('openkms.envelope') and m != 'openkms._compiled')\n"
        "print(','.join(bad))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert proc.stdout.strip() == ""
