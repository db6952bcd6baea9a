"""Streaming encryption and decryption of framed messages in constant memory.

``encrypt_chunks`` / ``EncryptingWriter`` / ``EncryptingReader`` produce a message frame by
frame; ``MessageDecryptor`` / ``DecryptingReader`` read one. At most a couple of frames are
held at once, whatever the message size.

What a decryptor releases: each frame's plaintext only after that frame's tag verified; the
final frame only after the signature (signed suites) verified and the end of the message was
reached. A message no longer than one frame is thus released only once fully verified. For a
longer one, earlier frames are released before truncation or a bad signature can be known:
a consumer that must not act on partial data (the CLI writing a file) keeps the output aside
until the stream ends without error.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import queue
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import BinaryIO

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from openkms.envelope.errors import (
    AuthenticationError,
    EncryptionContextError,
    MalformedMessageError,
)
from openkms.envelope.materials import (
    DecryptionRequest,
    EncryptionMaterials,
    MaterialsManager,
)
from openkms.envelope.message import (
    BODY_AAD_FINAL,
    BODY_AAD_FRAME,
    BODY_AAD_SINGLE,
    CONTENT_FRAMED,
    FINAL_FRAME_MARKER,
    MAX_FRAME_LENGTH,
    MAX_NON_FRAMED_LENGTH,
    ExactReader,
    MessageHeader,
    body_aad,
    frame_iv,
    header_auth_iv,
    pack_u16,
    pack_u32,
    read_header,
)
from openkms.envelope.suites import TAG_LENGTH, CommitmentPolicy

__all__ = [
    "DEFAULT_FRAME_LENGTH",
    "DEFAULT_MAX_FRAME_LENGTH",
    "DecryptingReader",
    "EncryptingReader",
    "EncryptingWriter",
    "MessageDecryptor",
    "MessageEncryptor",
    "check_required_context",
    "encrypt_chunks",
    "encrypt_with",
]

DEFAULT_FRAME_LENGTH = 1024 * 1024
"""Plaintext bytes per frame. The AWS Encryption SDK defaults to 4096; a larger frame costs
nothing in memory that matters and keeps per-frame overhead negligible on large files."""

DEFAULT_MAX_FRAME_LENGTH = 256 * 1024 * 1024
"""Largest frame (or non-framed body) a decryptor accepts unless told otherwise: a frame is
held in memory whole until its tag verifies."""

_THREADED_DIGEST_MIN_FRAME = 64 * 1024
_FINAL_MARKER = pack_u32(FINAL_FRAME_MARKER)


class _Digest:
    """The running hash that the message signature covers. For large frames the hashing runs
    on a helper thread (hashlib releases the GIL), overlapping AES-GCM and I/O; the queue is
    bounded, so memory stays constant."""

    _SMALL = 64 * 1024

    def __init__(self, name: str, threaded: bool) -> None:
        self._hash = hashlib.new(name)
        self._threaded = threaded
        self._small = bytearray()
        self._queue: queue.Queue[bytes | None] | None = None
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        assert self._queue is not None
        while True:
            item = self._queue.get()
            if item is None:
                return
            self._hash.update(item)

    def _put(self, data: bytes) -> None:
        if self._queue is None:  # the helper thread starts with the first large update
            self._queue = queue.Queue(maxsize=8)
            self._thread = threading.Thread(
                target=self._run, name="openkms-envelope-digest", daemon=True
            )
            self._thread.start()
        self._queue.put(data)

    def update(self, data: bytes) -> None:
        if not self._threaded:
            self._hash.update(data)
            return
        if len(data) < self._SMALL:
            self._small += data
            if len(self._small) >= self._SMALL:
                self._flush()
            return
        self._flush()
        self._put(data)

    def _flush(self) -> None:
        if self._small:
            self._put(bytes(self._small))
            self._small.clear()

    def digest(self) -> bytes:
        if self._queue is None:
            self._hash.update(self._small)
            self._small.clear()
        else:
            self._flush()
        self.close()
        return self._hash.digest()

    def close(self) -> None:
        if self._thread is not None and self._queue is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        self._queue = None


def _ecdsa(suite_hash: str) -> ec.ECDSA:
    from cryptography.hazmat.primitives import hashes

    algorithm: hashes.HashAlgorithm = hashes.SHA256() if suite_hash == "sha256" else hashes.SHA384()
    return ec.ECDSA(Prehashed(algorithm))


def check_required_context(
    context: Mapping[str, str], required: Mapping[str, str | None] | None
) -> None:
    """Every required key must be in ``context``; with a value (not None), that value."""
    if not required:
        return
    for key, value in required.items():
        if key not in context:
            raise EncryptionContextError(f"the message's encryption context has no key {key!r}")
        if value is not None and not hmac.compare_digest(
            context[key].encode("utf-8"), value.encode("utf-8")
        ):
            raise EncryptionContextError(
                f"the message's encryption context has {key!r} = {context[key]!r}, "
                f"not the required {value!r}"
            )


# --- encryption ----------------------------------------------------------------------------------
class MessageEncryptor:
    """Frame-level encryption of one message: ``header``, then ``frame()`` per frame (the last
    one with ``final=True``), then ``finish()`` for the footer. Pieces are bytes, in order."""

    def __init__(self, materials: EncryptionMaterials, frame_length: int = DEFAULT_FRAME_LENGTH):
        if not 0 < frame_length <= MAX_FRAME_LENGTH:
            raise ValueError(f"frame length must be in 1..{MAX_FRAME_LENGTH}")
        suite = materials.suite
        self.suite = suite
        self.frame_length = frame_length
        self.message_id = os.urandom(suite.message_id_length)
        key, commit_key = suite.derive_keys(materials.data_key, self.message_id)
        self._aead = AESGCM(key)
        self.header = MessageHeader(
            version=suite.message_version,
            suite=suite,
            message_id=self.message_id,
            encryption_context=dict(materials.encryption_context),
            encrypted_data_keys=materials.encrypted_data_keys,
            content_type=CONTENT_FRAMED,
            frame_length=frame_length,
            suite_data=commit_key or b"",
            header_iv=header_auth_iv() if suite.message_version == 1 else b"",
        )
        header_body = self.header.serialize_body()
        tag = self._aead.encrypt(header_auth_iv(), b"", header_body)
        auth = (header_auth_iv() + tag) if suite.message_version == 1 else tag
        self.header_bytes = header_body + auth
        self._signing_key = materials.signing_key
        self._digest: _Digest | None = None
        if suite.signed:
            if self._signing_key is None:
                raise ValueError(f"suite {suite.name} needs a signing key in the materials")
            self._digest = _Digest(suite.signature_hash, frame_length >= _THREADED_DIGEST_MIN_FRAME)
            self._digest.update(self.header_bytes)
        self._sequence = 0
        self._finished = False
        self.plaintext_bytes = 0

    def frame(self, plaintext: bytes | bytearray | memoryview, final: bool) -> tuple[bytes, bytes]:
        """The serialized frame as (prefix, ciphertext‖tag)."""
        if self._finished:
            raise ValueError("the message is already complete")
        length = len(plaintext)
        if not final and length != self.frame_length:
            raise ValueError("a regular frame holds exactly frame_length bytes")
        if final and length >= self.frame_length:
            # The AWS Encryption SDK refuses a final frame as long as the frame length ("Invalid
            # final frame length"): a plaintext of whole frames ends with an empty final frame.
            raise ValueError("the final frame holds fewer than frame_length bytes")
        if self._sequence >= MAX_FRAME_LENGTH:
            raise ValueError("a message holds at most 2^32 - 1 frames")
        self._sequence += 1
        seq = self._sequence
        iv = frame_iv(seq)
        if final:
            aad = body_aad(self.message_id, BODY_AAD_FINAL, seq, length)
            prefix = _FINAL_MARKER + pack_u32(seq) + iv + pack_u32(length)
            self._finished = True
        else:
            aad = body_aad(self.message_id, BODY_AAD_FRAME, seq, length)
            prefix = pack_u32(seq) + iv
        sealed = self._aead.encrypt(iv, plaintext, aad)
        self.plaintext_bytes += length
        if self._digest is not None:
            self._digest.update(prefix)
            self._digest.update(sealed)
        return prefix, sealed

    def finish(self) -> bytes:
        """The footer (signed suites) or nothing; call after the final frame."""
        if not self._finished:
            raise ValueError("the final frame has not been written")
        if self._digest is None or self._signing_key is None:
            return b""
        digest = self._digest.digest()
        self._digest = None
        signature = self._signing_key.sign(digest, _ecdsa(self.suite.signature_hash))
        return pack_u16(len(signature)) + signature

    def close(self) -> None:
        """Releases the digest thread (after an error; ``finish`` does it otherwise)."""
        if self._digest is not None:
            self._digest.close()
            self._digest = None


def _read_full(source: BinaryIO, n: int) -> bytes:
    data = source.read(n)
    if not data:
        return b""
    if len(data) == n:
        return bytes(data)
    parts = [bytes(data)]
    got = len(data)
    while got < n:
        more = source.read(n - got)
        if not more:
            break
        parts.append(bytes(more))
        got += len(more)
    return b"".join(parts)


def encrypt_chunks(
    materials: EncryptionMaterials,
    source: BinaryIO,
    frame_length: int = DEFAULT_FRAME_LENGTH,
    on_progress: Callable[[int], None] | None = None,
) -> Iterator[bytes]:
    """The message for everything ``source`` yields, as byte pieces in order: a regular frame
    per full frame read, then the final frame with the rest, shorter than a frame (empty when the
    plaintext is a whole number of frames, as the AWS Encryption SDK writes it)."""
    return encrypt_with(MessageEncryptor(materials, frame_length), source, on_progress)


def encrypt_with(
    encryptor: MessageEncryptor,
    source: BinaryIO,
    on_progress: Callable[[int], None] | None = None,
) -> Iterator[bytes]:
    """As :func:`encrypt_chunks`, with an encryptor the caller made (to read its header)."""
    frame_length = encryptor.frame_length
    try:
        yield encryptor.header_bytes
        while True:
            current = _read_full(source, frame_length)
            final = len(current) < frame_length
            yield from encryptor.frame(current, final=final)
            if on_progress is not None:
                on_progress(len(current))
            if final:
                break
        footer = encryptor.finish()
        if footer:
            yield footer
    finally:
        encryptor.close()


class _IterReader(io.RawIOBase):
    """A readable raw stream over an iterator of byte chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        super().__init__()
        self._chunks = chunks
        self._pending = memoryview(b"")
        self._exhausted = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        out = memoryview(buffer).cast("B")
        if not len(out):
            return 0
        while not len(self._pending):
            if self._exhausted:
                return 0
            try:
                self._pending = memoryview(next(self._chunks))
            except StopIteration:
                self._exhausted = True
                return 0
        n = min(len(out), len(self._pending))
        out[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self) -> None:
        if not self.closed:
            close = getattr(self._chunks, "close", None)
            if close is not None:
                close()
        super().close()


class EncryptingReader(_IterReader):
    """Reading it yields the encrypted message of everything ``source`` yields."""

    def __init__(
        self,
        materials: EncryptionMaterials,
        source: BinaryIO,
        frame_length: int = DEFAULT_FRAME_LENGTH,
    ) -> None:
        super().__init__(encrypt_chunks(materials, source, frame_length))


class EncryptingWriter(io.RawIOBase):
    """Writing plaintext to it writes the encrypted message to ``sink``; ``close()`` writes the
    final frame and footer. Leaving a ``with`` block by an exception abandons the message
    (no final frame is written, so the partial output never decrypts)."""

    def __init__(
        self,
        materials: EncryptionMaterials,
        sink: BinaryIO,
        frame_length: int = DEFAULT_FRAME_LENGTH,
        close_sink: bool = False,
    ) -> None:
        super().__init__()
        self._encryptor = MessageEncryptor(materials, frame_length)
        self._sink = sink
        self._close_sink = close_sink
        self._frame = frame_length
        self._pending = bytearray()
        self._abandoned = False
        sink.write(self._encryptor.header_bytes)

    @property
    def header(self) -> MessageHeader:
        return self._encryptor.header

    def writable(self) -> bool:
        return True

    def _emit(self, data: bytes | bytearray | memoryview, final: bool) -> None:
        prefix, sealed = self._encryptor.frame(data, final)
        self._sink.write(prefix)
        self._sink.write(sealed)

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        if self.closed:
            raise ValueError("write to a closed EncryptingWriter")
        view = memoryview(data).cast("B")
        size = len(view)
        if not size:
            return 0
        frame = self._frame
        pending = self._pending
        if pending:
            take = min(frame - len(pending), len(view))
            pending += view[:take]
            view = view[take:]
            if len(pending) < frame:
                return size
            # A full frame is a regular frame: the final one, written by close(), is shorter.
            self._emit(pending, final=False)
            pending.clear()
        while len(view) >= frame:
            self._emit(view[:frame], final=False)
            view = view[frame:]
        pending += view
        return size

    def abandon(self) -> None:
        """Stops without completing the message."""
        self._abandoned = True
        self._encryptor.close()
        self._pending.clear()
        super().close()

    def close(self) -> None:
        if self.closed:
            return
        try:
            if not self._abandoned:
                self._emit(self._pending, final=True)
                self._pending.clear()
                footer = self._encryptor.finish()
                if footer:
                    self._sink.write(footer)
                self._sink.flush()
        finally:
            self._encryptor.close()
            if self._close_sink:
                self._sink.close()
            super().close()

    def __exit__(self, exc_type: object, exc: object, traceback: object) -> None:
        if exc_type is not None:
            self.abandon()
        else:
            self.close()


# --- decryption ----------------------------------------------------------------------------------
class MessageDecryptor:
    """Reads a message from ``source``: the header at construction (checked: suite, policy,
    required context, data key through ``materials_manager``, key commitment, header tag), then
    the plaintext from :meth:`chunks`."""

    def __init__(
        self,
        source: BinaryIO,
        materials_manager: MaterialsManager,
        *,
        commitment_policy: CommitmentPolicy,
        required_context: Mapping[str, str | None] | None = None,
        max_encrypted_data_keys: int | None = None,
        max_frame_length: int = DEFAULT_MAX_FRAME_LENGTH,
        allow_trailing_data: bool = False,
        unsigned_only: bool = False,
    ) -> None:
        self._reader = ExactReader(source)
        header = read_header(self._reader, max_encrypted_data_keys)
        self.header = header
        suite = header.suite
        commitment_policy.check_decrypt(suite)
        if unsigned_only and suite.signed:
            raise AuthenticationError(
                f"the message uses the signed suite {suite.name}, but only unsigned ones are "
                "allowed here"
            )
        limit = header.frame_length if header.framed else 0
        if limit > max_frame_length:
            raise MalformedMessageError(
                f"the message's frame length {limit} exceeds the allowed {max_frame_length}"
            )
        check_required_context(header.encryption_context, required_context)
        materials = materials_manager.decrypt_materials(
            DecryptionRequest(
                suite, header.encrypted_data_keys, header.encryption_context, commitment_policy
            )
        )
        key, commit_key = suite.derive_keys(materials.data_key, header.message_id)
        if suite.committing and (
            commit_key is None or not hmac.compare_digest(commit_key, header.suite_data)
        ):
            raise AuthenticationError(
                "key commitment mismatch: the message was not made with this data key"
            )
        self._aead = AESGCM(key)
        iv = header.header_iv if header.version == 1 else header_auth_iv()
        try:
            self._aead.decrypt(iv, header.header_tag, header.body)
        except InvalidTag:
            raise AuthenticationError(
                "the message header failed authentication (tampered or corrupt)"
            ) from None
        self._verification_key = materials.verification_key
        self._digest: _Digest | None = None
        if suite.signed:
            if self._verification_key is None:
                raise MalformedMessageError("signed message without a verification key")
            threaded = header.frame_length >= _THREADED_DIGEST_MIN_FRAME
            self._digest = _Digest(suite.signature_hash, threaded)
            self._digest.update(header.body + header.serialize_auth())
            self._reader.observe = self._digest.update
        self._max_frame = max_frame_length
        self._allow_trailing = allow_trailing_data
        self._started = False
        self.plaintext_bytes = 0

    @property
    def encryption_context(self) -> Mapping[str, str]:
        return self.header.encryption_context

    def _open(self, iv: bytes, sealed: bytes, aad: bytes, what: str) -> bytes:
        try:
            return self._aead.decrypt(iv, sealed, aad)
        except InvalidTag:
            raise AuthenticationError(
                f"{what} failed authentication (tampered or corrupt)"
            ) from None

    def chunks(self, on_progress: Callable[[int], None] | None = None) -> Iterator[bytes]:
        """The plaintext, frame by frame (see the module notes on what is released when)."""
        if self._started:
            raise ValueError("the message body was already read")
        self._started = True
        try:
            yield from self._body(on_progress)
        finally:
            if self._digest is not None:
                self._digest.close()

    def _body(self, on_progress: Callable[[int], None] | None) -> Iterator[bytes]:
        header = self.header
        reader = self._reader
        message_id = header.message_id
        last: bytes
        if header.framed:
            frame_length = header.frame_length
            expected = 1
            while True:
                marker = reader.u32("frame")
                if marker == FINAL_FRAME_MARKER:
                    seq = reader.u32("final frame")
                    if seq != expected:
                        raise MalformedMessageError(
                            f"final frame has sequence number {seq}, expected {expected}"
                        )
                    iv = reader.read(12, "final frame")
                    length = reader.u32("final frame")
                    if length > frame_length:
                        raise MalformedMessageError(
                            f"final frame of {length} bytes exceeds the frame length {frame_length}"
                        )
                    sealed = reader.read(length + TAG_LENGTH, "final frame")
                    aad = body_aad(message_id, BODY_AAD_FINAL, seq, length)
                    last = self._open(iv, sealed, aad, f"frame {seq} (final)")
                    break
                if marker != expected:
                    raise MalformedMessageError(
                        f"frame has sequence number {marker}, expected {expected}"
                    )
                iv = reader.read(12, f"frame {marker}")
                sealed = reader.read(frame_length + TAG_LENGTH, f"frame {marker}")
                aad = body_aad(message_id, BODY_AAD_FRAME, marker, frame_length)
                plaintext = self._open(iv, sealed, aad, f"frame {marker}")
                self.plaintext_bytes += len(plaintext)
                if on_progress is not None:
                    on_progress(len(plaintext))
                yield plaintext
                expected += 1
                if expected >= FINAL_FRAME_MARKER:
                    raise MalformedMessageError("too many frames")
        else:
            iv = reader.read(12, "body")
            length = reader.u64("body")
            if length > MAX_NON_FRAMED_LENGTH or length > self._max_frame:
                raise MalformedMessageError(
                    f"non-framed body of {length} bytes exceeds the allowed "
                    f"{min(self._max_frame, MAX_NON_FRAMED_LENGTH)}"
                )
            sealed = reader.read(length + TAG_LENGTH, "body")
            aad = body_aad(message_id, BODY_AAD_SINGLE, 1, length)
            last = self._open(iv, sealed, aad, "the message body")
        reader.observe = None
        if self._digest is not None and self._verification_key is not None:
            digest = self._digest.digest()
            length = reader.u16("footer")
            signature = reader.read(length, "footer")
            try:
                self._verification_key.verify(
                    signature, digest, _ecdsa(header.suite.signature_hash)
                )
            except InvalidSignature:
                raise AuthenticationError(
                    "the message signature does not verify (tampered or corrupt)"
                ) from None
        if not self._allow_trailing and not reader.at_eof():
            raise MalformedMessageError("unexpected data after the end of the message")
        self.plaintext_bytes += len(last)
        if on_progress is not None:
            on_progress(len(last))
        if last:
            yield last


class DecryptingReader(_IterReader):
    """Reading it yields the plaintext of the message ``source`` holds; the header (and the
    encryption context) is read and authenticated at construction."""

    def __init__(self, decryptor: MessageDecryptor) -> None:
        self.decryptor = decryptor
        super().__init__(decryptor.chunks())

    @property
    def header(self) -> MessageHeader:
        return self.decryptor.header

    @property
    def encryption_context(self) -> Mapping[str, str]:
        return self.decryptor.header.encryption_context
