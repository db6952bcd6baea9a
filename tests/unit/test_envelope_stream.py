"""The library end to end over an in-memory KMS: round trips, streams, keys, tampering,
truncation, and constant memory."""

from __future__ import annotations

import io
import os
import tracemalloc
from collections.abc import Iterator

import pytest

from openkms.envelope import (
    SUITES,
    AuthenticationError,
    CommitmentPolicy,
    EncryptionContextError,
    EnvelopeClient,
    KMSCallError,
    MalformedMessageError,
    NoDecryptableKeyError,
    TruncatedMessageError,
)
from openkms.envelope.api import decrypt as module_decrypt
from openkms.envelope.api import encrypt as module_encrypt
from openkms.envelope.keyrings import KmsKeyring
from openkms.envelope.materials import DefaultMaterialsManager, EncryptionRequest
from openkms.envelope.message import ExactReader, read_header
from openkms.envelope.stream import MessageEncryptor, encrypt_chunks
from tests.unit.test_envelope_support import FakeKMS

FRAME = 4096


@pytest.fixture
def kms() -> FakeKMS:
    return FakeKMS()


@pytest.fixture
def client(kms: FakeKMS) -> EnvelopeClient:
    return EnvelopeClient(kms=kms, frame_length=FRAME)


@pytest.mark.parametrize("suite_id", [0x0578, 0x0478])
@pytest.mark.parametrize("size", [0, 1, FRAME - 1, FRAME, FRAME + 1, 2 * FRAME, 3 * FRAME + 17])
def test_round_trip_at_frame_boundaries(
    kms: FakeKMS, client: EnvelopeClient, suite_id: int, size: int
) -> None:
    key = kms.create_key()
    data = os.urandom(size)
    message = client.encrypt(data, key, {"purpose": "test"}, suite=SUITES[suite_id])
    result = client.decrypt_message(message)
    assert result.plaintext == data
    assert result.header.suite.suite_id == suite_id
    assert result.encryption_context["purpose"] == "test"
    # Every full frame is a regular frame; the final frame holds the rest, fewer than FRAME bytes
    # (none for a whole number of frames), as the AWS Encryption SDK requires.
    frames = size // FRAME + 1
    signature = 2 + 104 if SUITES[suite_id].signed else 0
    assert len(message) <= len(result.header.body) + 16 + size + frames * 32 + 8 + signature


@pytest.mark.parametrize("suite_id", sorted(s for s in SUITES if not SUITES[s].committing))
def test_version_1_suites_round_trip_under_forbid(kms: FakeKMS, suite_id: int) -> None:
    key = kms.create_key()
    writer = EnvelopeClient(
        kms=kms, commitment_policy=CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT
    )
    data = os.urandom(3 * 100 + 5)
    message = writer.encrypt(data, key, suite=SUITES[suite_id], frame_length=100)
    assert EnvelopeClient(kms=kms).decrypt(message) == data
    with pytest.raises(Exception, match="version 1"):
        EnvelopeClient(
            kms=kms, commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
        ).decrypt(message)


def test_module_level_api(kms: FakeKMS) -> None:
    key = kms.create_key(alias="alias/app")
    message = module_encrypt(b"hello", "alias/app", {"tenant": "a"}, kms=kms)
    assert module_decrypt(message, required_context={"tenant": "a"}, kms=kms) == b"hello"
    assert module_decrypt(message, key_ids=[key], kms=kms) == b"hello"


def test_empty_final_frame_is_accepted(kms: FakeKMS) -> None:
    """The specification allows a plaintext of exactly N frames to end with an empty final
    frame (as some SDKs write it)."""
    key = kms.create_key()
    manager = DefaultMaterialsManager(KmsKeyring([key], client=kms))
    materials = manager.get_encryption_materials(
        EncryptionRequest({}, SUITES[0x0578], CommitmentPolicy.REQUIRE_ENCRYPT_ALLOW_DECRYPT)
    )
    encryptor = MessageEncryptor(materials, 16)
    data = os.urandom(32)
    pieces = [encryptor.header_bytes]
    pieces += encryptor.frame(data[:16], final=False)
    pieces += encryptor.frame(data[16:], final=False)
    pieces += encryptor.frame(b"", final=True)
    pieces.append(encryptor.finish())
    assert EnvelopeClient(kms=kms).decrypt(b"".join(pieces)) == data


# --- keys ----------------------------------------------------------------------------------
def test_any_one_of_several_keys_decrypts(kms: FakeKMS, client: EnvelopeClient) -> None:
    k1, k2, k3 = kms.create_key(), kms.create_key(alias="alias/two"), kms.create_key()
    message = client.encrypt(b"data", [k1, "alias/two", k3])
    header = read_header(ExactReader(io.BytesIO(message)))
    assert [e.provider_info.decode() for e in header.encrypted_data_keys] == [k1, k2, k3]
    assert {e.provider_id for e in header.encrypted_data_keys} == {"aws-kms"}
    assert kms.calls["GenerateDataKey"] == 1 and kms.calls["Encrypt"] == 2
    for key in (k1, k2, k3, "alias/two"):
        assert client.decrypt(message, key_ids=[key]) == b"data"
    # k1 unusable: decryption moves on to the next key, as the SDK's keyring does.
    kms.denied.add(k1)
    assert client.decrypt(message) == b"data"


def test_strict_decrypt_refuses_other_keys(kms: FakeKMS, client: EnvelopeClient) -> None:
    k1, k2 = kms.create_key(), kms.create_key()
    message = client.encrypt(b"data", k1)
    calls = kms.calls["Decrypt"]
    with pytest.raises(NoDecryptableKeyError, match="not encrypted under any of the given"):
        client.decrypt(message, key_ids=[k2])
    assert kms.calls["Decrypt"] == calls  # not even tried


def test_permission_denied_is_reported_as_such(kms: FakeKMS, client: EnvelopeClient) -> None:
    k1 = kms.create_key()
    message = client.encrypt(b"data", k1)
    kms.denied.add(k1)
    with pytest.raises(NoDecryptableKeyError) as caught:
        client.decrypt(message)
    assert caught.value.access_denied
    assert caught.value.failures[0].code == "AccessDeniedException"
    with pytest.raises(KMSCallError) as refused:
        client.encrypt(b"data", k1)
    assert refused.value.access_denied


def test_unknown_key_on_encrypt(client: EnvelopeClient) -> None:
    with pytest.raises(KMSCallError, match="NotFoundException"):
        client.encrypt(b"data", "alias/none")


def test_no_plaintext_or_key_in_error_messages(kms: FakeKMS, client: EnvelopeClient) -> None:
    key = kms.create_key()
    secret = b"TOP-SECRET-PLAINTEXT"
    message = bytearray(client.encrypt(secret, key))
    message[-120] ^= 1
    with pytest.raises(AuthenticationError) as caught:
        client.decrypt(bytes(message))
    assert "SECRET" not in str(caught.value) and "SECRET" not in repr(caught.value)


# --- encryption context ------------------------------------------------------------------
def test_required_context(kms: FakeKMS, client: EnvelopeClient) -> None:
    key = kms.create_key()
    message = client.encrypt(b"data", key, {"tenant": "a", "app": "x"})
    assert client.decrypt(message, required_context={"tenant": "a", "app": None}) == b"data"
    with pytest.raises(EncryptionContextError, match="not the required"):
        client.decrypt(message, required_context={"tenant": "b"})
    with pytest.raises(EncryptionContextError, match="no key"):
        client.decrypt(message, required_context={"other": None})


def test_context_reaches_kms(kms: FakeKMS, client: EnvelopeClient) -> None:
    """The context (with the public key) is bound to the wrapped data key by KMS: another
    context in the header makes KMS refuse (the header tag would fail anyway)."""
    key = kms.create_key()
    message = client.encrypt(b"data", key, {"tenant": "a"}, suite=SUITES[0x0478])
    forged = message.replace(b"tenant\x00\x01a", b"tenant\x00\x01b")
    with pytest.raises(NoDecryptableKeyError):
        client.decrypt(forged)


# --- streams ---------------------------------------------------------------------------------
def test_writer_and_reader(kms: FakeKMS, client: EnvelopeClient) -> None:
    key = kms.create_key()
    data = os.urandom(10 * FRAME + 123)
    sink = io.BytesIO()
    with client.open_encrypt(sink, key, {"k": "v"}) as writer:
        for start in range(0, len(data), 1000):  # writes that straddle frames
            writer.write(data[start : start + 1000])
    message = sink.getvalue()
    assert client.decrypt(message) == data
    reader = client.open_decrypt(io.BytesIO(message), required_context={"k": "v"})
    assert reader.encryption_context["k"] == "v"
    out = bytearray()
    while chunk := reader.read(777):
        out += chunk
    assert bytes(out) == data
    encrypted = client.encrypting_reader(io.BytesIO(data), key).read()
    assert client.decrypt(encrypted) == data


def test_writer_exact_frame_multiple(kms: FakeKMS, client: EnvelopeClient) -> None:
    key = kms.create_key()
    for size in (FRAME, 2 * FRAME):
        sink = io.BytesIO()
        with client.open_encrypt(sink, key) as writer:
            writer.write(b"x" * size)
        assert client.decrypt(sink.getvalue()) == b"x" * size


def test_writer_abandoned_by_an_exception_never_decrypts(
    kms: FakeKMS, client: EnvelopeClient
) -> None:
    key = kms.create_key()
    sink = io.BytesIO()
    with pytest.raises(RuntimeError), client.open_encrypt(sink, key) as writer:
        writer.write(os.urandom(3 * FRAME))
        raise RuntimeError("boom")
    with pytest.raises(TruncatedMessageError):
        client.decrypt(sink.getvalue())


def test_short_reads_from_pipes(kms: FakeKMS, client: EnvelopeClient) -> None:
    class Trickle(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self._data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
            chunk = self._data.read(min(len(buffer), 333))
            buffer[: len(chunk)] = chunk
            return len(chunk)

    key = kms.create_key()
    data = os.urandom(5 * FRAME + 9)
    sink = io.BytesIO()
    client.encrypt_stream(Trickle(data), sink, key)  # type: ignore[arg-type]
    out = io.BytesIO()
    client.decrypt_stream(Trickle(sink.getvalue()), out)  # type: ignore[arg-type]
    assert out.getvalue() == data


# --- tampering and truncation -----------------------------------------------------------------
def _message(kms: FakeKMS, client: EnvelopeClient, suite_id: int, size: int) -> bytes:
    return client.encrypt(os.urandom(size), kms.create_key(), {"a": "b"}, suite=SUITES[suite_id])


@pytest.mark.parametrize("suite_id", [0x0578, 0x0478])
def test_any_flipped_bit_is_caught(kms: FakeKMS, client: EnvelopeClient, suite_id: int) -> None:
    message = _message(kms, client, suite_id, 2 * FRAME + 100)
    for offset in list(range(0, 400, 3)) + list(range(400, len(message), 97)) + [len(message) - 1]:
        altered = bytearray(message)
        altered[offset] ^= 0x80
        with pytest.raises((AuthenticationError, MalformedMessageError, NoDecryptableKeyError)):
            client.decrypt(bytes(altered))


@pytest.mark.parametrize("suite_id", [0x0578, 0x0478])
def test_truncation_anywhere_is_caught(kms: FakeKMS, client: EnvelopeClient, suite_id: int) -> None:
    message = _message(kms, client, suite_id, 2 * FRAME + 100)
    for cut in [*range(0, len(message), 61), len(message) - 1]:
        with pytest.raises(TruncatedMessageError):
            client.decrypt(message[:cut])


def test_dropping_the_final_frames_is_truncation(kms: FakeKMS) -> None:
    """A message cut exactly after a regular frame: the frames there verify, but the missing
    final frame is noticed."""
    client = EnvelopeClient(kms=kms, frame_length=64)
    message = _message(kms, client, 0x0478, 64 * 3 + 5)
    header = read_header(ExactReader(io.BytesIO(message)))
    start = len(header.body) + 16
    frame = 4 + 12 + 64 + 16
    cut = message[: start + 2 * frame]
    decryptor = client.decryptor(io.BytesIO(cut))
    chunks = decryptor.chunks()
    assert len(next(chunks)) == 64  # the first frame verifies and is released
    with pytest.raises(TruncatedMessageError):
        list(chunks)


def test_reordered_frames_are_caught(kms: FakeKMS) -> None:
    client = EnvelopeClient(kms=kms, frame_length=64)
    message = _message(kms, client, 0x0478, 64 * 3 + 5)
    header = read_header(ExactReader(io.BytesIO(message)))
    start = len(header.body) + 16
    frame = 4 + 12 + 64 + 16
    frames = [message[start + i * frame : start + (i + 1) * frame] for i in range(3)]
    swapped = message[:start] + frames[1] + frames[0] + frames[2] + message[start + 3 * frame :]
    with pytest.raises(MalformedMessageError, match="sequence number"):
        client.decrypt(swapped)


def test_bad_signature_withholds_the_last_frame(kms: FakeKMS) -> None:
    client = EnvelopeClient(kms=kms, frame_length=64)
    data = os.urandom(100)
    message = bytearray(client.encrypt(data, kms.create_key()))
    message[-5] ^= 1  # inside the signature
    chunks = client.decryptor(io.BytesIO(bytes(message))).chunks()
    assert next(chunks) == data[:64]
    with pytest.raises(AuthenticationError, match="signature"):
        next(chunks)  # the final frame is only released once the signature verified


def test_single_frame_message_releases_nothing_unverified(kms: FakeKMS) -> None:
    client = EnvelopeClient(kms=kms)
    message = bytearray(client.encrypt(b"short", kms.create_key()))
    message[-5] ^= 1
    with pytest.raises(AuthenticationError):
        next(client.decryptor(io.BytesIO(bytes(message))).chunks())


def test_trailing_data_and_oversized_frames(kms: FakeKMS) -> None:
    key = kms.create_key()
    client = EnvelopeClient(kms=kms, frame_length=1 << 20, max_frame_length=1 << 16)
    message = client.encrypt(b"data", key)
    with pytest.raises(MalformedMessageError, match="frame length"):
        client.decrypt(message)
    small = EnvelopeClient(kms=kms)
    with pytest.raises(MalformedMessageError, match="after the end"):
        small.decrypt(small.encrypt(b"data", key) + b"junk")
    decryptor = small.decryptor(
        io.BytesIO(small.encrypt(b"data", key) + b"junk"), allow_trailing_data=True
    )
    assert b"".join(decryptor.chunks()) == b"data"


def test_unsigned_only(kms: FakeKMS, client: EnvelopeClient) -> None:
    key = kms.create_key()
    with pytest.raises(AuthenticationError, match="signed"):
        client.decryptor(io.BytesIO(client.encrypt(b"x", key)), unsigned_only=True)
    unsigned = client.encrypt(b"x", key, suite=SUITES[0x0478])
    assert b"".join(client.decryptor(io.BytesIO(unsigned), unsigned_only=True).chunks()) == b"x"


def test_max_encrypted_data_keys(kms: FakeKMS) -> None:
    keys = [kms.create_key() for _ in range(3)]
    message = EnvelopeClient(kms=kms).encrypt(b"x", keys)
    with pytest.raises(MalformedMessageError, match="more than the allowed 2"):
        EnvelopeClient(kms=kms, max_encrypted_data_keys=2).decrypt(message)
    with pytest.raises(ValueError, match="more than 2"):
        EnvelopeClient(kms=kms, max_encrypted_data_keys=2).encrypt(b"x", keys)


# --- constant memory ---------------------------------------------------------------------------
class _Zeros(io.RawIOBase):
    """``size`` bytes produced on demand."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n


class _Counter(io.RawIOBase):
    def __init__(self) -> None:
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.count += len(data)
        return len(data)


class _Pipe(io.RawIOBase):
    """Reads the message from a generator as it is made (encrypt feeding decrypt)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            self._pending = next(self._chunks, b"")
            if not self._pending:
                return 0
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


@pytest.mark.parametrize("suite_id", [0x0578, 0x0478])
def test_streaming_uses_constant_memory(kms: FakeKMS, suite_id: int) -> None:
    """256 MiB through encrypt and decrypt (1 MiB frames) with Python allocations staying
    within a few frames."""
    size = 256 * 1024 * 1024
    key = kms.create_key()
    client = EnvelopeClient(kms=kms, frame_length=1024 * 1024)
    materials = client.encryption_materials(key, {"a": "b"}, suite=SUITES[suite_id])
    tracemalloc.start()
    try:
        message = encrypt_chunks(materials, _Zeros(size), 1024 * 1024)  # type: ignore[arg-type]
        sink = _Counter()
        client.decrypt_stream(io.BufferedReader(_Pipe(message)), sink)  # type: ignore[arg-type]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sink.count == size
    assert peak < 24 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB"
