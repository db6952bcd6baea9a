"""Encoding and decoding of the AWS Encryption SDK message format (header, body, footer).

Big-endian throughout. A message is ``header body ‖ header authentication ‖ body [‖ footer]``;
``docs/formats/envelope.md`` has the field tables. This module does no cryptography beyond
building the byte strings that the AEAD authenticates; ``stream`` does the rest.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import BinaryIO

from openkms.envelope.errors import (
    EncryptionContextError,
    MalformedMessageError,
    TruncatedMessageError,
    UnsupportedSuiteError,
)
from openkms.envelope.suites import IV_LENGTH, TAG_LENGTH, AlgorithmSuite, suite_by_id

__all__ = [
    "CONTENT_FRAMED",
    "CONTENT_NON_FRAMED",
    "PUBLIC_KEY_CONTEXT_KEY",
    "EncryptedDataKey",
    "MessageHeader",
    "body_aad",
    "frame_iv",
    "parse_encryption_context",
    "read_header",
    "serialize_encryption_context",
]

PUBLIC_KEY_CONTEXT_KEY = "aws-crypto-public-key"
RESERVED_CONTEXT_PREFIX = "aws-crypto-"
TYPE_CUSTOMER_AED = 0x80
CONTENT_NON_FRAMED = 0x01
CONTENT_FRAMED = 0x02
FINAL_FRAME_MARKER = 0xFFFFFFFF
MAX_FRAME_LENGTH = 2**32 - 1
MAX_NON_FRAMED_LENGTH = 2**36 - 32

BODY_AAD_FRAME = b"AWSKMSEncryptionClient Frame"
BODY_AAD_FINAL = b"AWSKMSEncryptionClient Final Frame"
BODY_AAD_SINGLE = b"AWSKMSEncryptionClient Single Block"

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_AAD_TAIL = struct.Struct(">IQ")


# --- encryption context --------------------------------------------------------------------------
def serialize_encryption_context(context: Mapping[str, str]) -> bytes:
    """The key-value pairs, sorted by the UTF-8 bytes of their keys: count, then for each pair
    key length, key, value length, value (all lengths UInt16). Empty context → empty bytes."""
    if not context:
        return b""
    pairs = sorted((k.encode("utf-8"), v.encode("utf-8")) for k, v in context.items())
    if len(pairs) > 0xFFFF:
        raise EncryptionContextError("the encryption context has more than 65535 pairs")
    out = bytearray(_U16.pack(len(pairs)))
    for key, value in pairs:
        if len(key) > 0xFFFF or len(value) > 0xFFFF:
            raise EncryptionContextError("an encryption context key or value exceeds 65535 bytes")
        out += _U16.pack(len(key)) + key + _U16.pack(len(value)) + value
    if len(out) > 0xFFFF:
        raise EncryptionContextError(
            f"the serialized encryption context is {len(out)} bytes (at most 65535)"
        )
    return bytes(out)


def parse_encryption_context(data: bytes) -> dict[str, str]:
    """Inverse of :func:`serialize_encryption_context`: rejects duplicates, bad UTF-8, a zero
    count and trailing bytes."""
    if not data:
        return {}
    reader = _BytesCursor(data, "encryption context")
    count = reader.u16()
    if count == 0:
        raise MalformedMessageError("the encryption context has a zero pair count")
    context: dict[str, str] = {}
    for _ in range(count):
        key = _utf8(reader.take(reader.u16()), "encryption context key")
        value = _utf8(reader.take(reader.u16()), "encryption context value")
        if key in context:
            raise MalformedMessageError(f"duplicate encryption context key {key!r}")
        context[key] = value
    if reader.remaining:
        raise MalformedMessageError("trailing bytes after the encryption context pairs")
    return context


def _utf8(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedMessageError(f"{what} is not valid UTF-8") from None


class _BytesCursor:
    def __init__(self, data: bytes, what: str) -> None:
        self._data = data
        self._pos = 0
        self._what = what

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def take(self, n: int) -> bytes:
        if self._pos + n > len(self._data):
            raise MalformedMessageError(f"the {self._what} is shorter than its lengths say")
        out = self._data[self._pos : self._pos + n]
        self._pos += n
        return out

    def u16(self) -> int:
        value: int = _U16.unpack(self.take(2))[0]
        return value


# --- encrypted data keys -------------------------------------------------------------------------
@dataclass(frozen=True)
class EncryptedDataKey:
    """One wrapped copy of the data key: for KMS, provider ``aws-kms``, provider info the KMS
    key ARN, and the KMS ciphertext blob."""

    provider_id: str
    provider_info: bytes
    ciphertext: bytes = field(repr=False)

    def serialize(self) -> bytes:
        pid = self.provider_id.encode("utf-8")
        for part in (pid, self.provider_info, self.ciphertext):
            if len(part) > 0xFFFF:
                raise MalformedMessageError("an encrypted data key field exceeds 65535 bytes")
        return (
            _U16.pack(len(pid))
            + pid
            + _U16.pack(len(self.provider_info))
            + self.provider_info
            + _U16.pack(len(self.ciphertext))
            + self.ciphertext
        )


# --- header --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MessageHeader:
    """A parsed (or to-be-written) message header. ``body`` holds the exact header-body bytes
    the header tag authenticates."""

    version: int
    suite: AlgorithmSuite
    message_id: bytes
    encryption_context: Mapping[str, str]
    encrypted_data_keys: tuple[EncryptedDataKey, ...]
    content_type: int
    frame_length: int
    suite_data: bytes = b""  # the commit key for version 2 committing suites
    header_iv: bytes = b""  # version 1 only
    header_tag: bytes = b""
    body: bytes = field(default=b"", repr=False)

    @property
    def framed(self) -> bool:
        return self.content_type == CONTENT_FRAMED

    @property
    def signed(self) -> bool:
        return self.suite.signed

    def serialize_body(self) -> bytes:
        """The header body (everything the header tag authenticates)."""
        suite = self.suite
        context = serialize_encryption_context(self.encryption_context)
        if not self.encrypted_data_keys:
            raise MalformedMessageError("a message needs at least one encrypted data key")
        if len(self.encrypted_data_keys) > 0xFFFF:
            raise MalformedMessageError("more than 65535 encrypted data keys")
        edks = _U16.pack(len(self.encrypted_data_keys)) + b"".join(
            edk.serialize() for edk in self.encrypted_data_keys
        )
        if len(self.message_id) != suite.message_id_length:
            raise MalformedMessageError("message id of the wrong length for its suite")
        if self.version == 2:
            if len(self.suite_data) != suite.suite_data_length:
                raise MalformedMessageError("suite data of the wrong length")
            return b"".join(
                (
                    b"\x02",
                    suite.id_bytes,
                    self.message_id,
                    _U16.pack(len(context)),
                    context,
                    edks,
                    bytes((self.content_type,)),
                    _U32.pack(self.frame_length),
                    self.suite_data,
                )
            )
        return b"".join(
            (
                b"\x01",
                bytes((TYPE_CUSTOMER_AED,)),
                suite.id_bytes,
                self.message_id,
                _U16.pack(len(context)),
                context,
                edks,
                bytes((self.content_type,)),
                b"\x00\x00\x00\x00",
                bytes((IV_LENGTH,)),
                _U32.pack(self.frame_length),
            )
        )

    def serialize_auth(self) -> bytes:
        """The header authentication: IV (version 1) and tag."""
        if self.version == 1:
            return self.header_iv + self.header_tag
        return self.header_tag


def header_auth_iv() -> bytes:
    return bytes(IV_LENGTH)


def frame_iv(sequence_number: int) -> bytes:
    """The IV of a frame: its sequence number, big-endian, left-padded with zeros."""
    return sequence_number.to_bytes(IV_LENGTH, "big")


def body_aad(message_id: bytes, kind: bytes, sequence_number: int, content_length: int) -> bytes:
    return message_id + kind + _AAD_TAIL.pack(sequence_number, content_length)


# --- reading -------------------------------------------------------------------------------------
class ExactReader:
    """Reads exact byte counts from a binary stream; a short read is a truncated message.
    ``observe`` (when set) sees every byte read, in order (for the signature hash)."""

    def __init__(self, stream: BinaryIO, observe: Callable[[bytes], None] | None = None) -> None:
        self._stream = stream
        self.observe = observe
        self.consumed = 0

    def read(self, n: int, what: str) -> bytes:
        if n == 0:
            return b""
        data = self._stream.read(n)
        if data is None:
            data = b""
        elif not isinstance(data, bytes):
            data = bytes(data)
        if len(data) < n:
            parts = [data]
            got = len(data)
            while got < n:
                more = self._stream.read(n - got)
                if not more:
                    raise TruncatedMessageError(
                        f"the message ends inside the {what}, after {self.consumed + got} bytes"
                    )
                parts.append(more)
                got += len(more)
            data = b"".join(parts)
        self.consumed += n
        if self.observe is not None:
            self.observe(data)
        return data

    def u8(self, what: str) -> int:
        return self.read(1, what)[0]

    def u16(self, what: str) -> int:
        value: int = _U16.unpack(self.read(2, what))[0]
        return value

    def u32(self, what: str) -> int:
        value: int = _U32.unpack(self.read(4, what))[0]
        return value

    def u64(self, what: str) -> int:
        value: int = _U64.unpack(self.read(8, what))[0]
        return value

    def at_eof(self) -> bool:
        """True when the stream has no more bytes (consumes one byte if it has)."""
        return not self._stream.read(1)


def read_header(reader: ExactReader, max_encrypted_data_keys: int | None = None) -> MessageHeader:
    """Parses a header (body and authentication) from ``reader``. Checks structure only; the
    tag and commitment are checked by the decryptor once it has the data key."""
    parts: list[bytes] = []

    def take(n: int, what: str) -> bytes:
        data = reader.read(n, what)
        parts.append(data)
        return data

    def u16(what: str) -> int:
        value: int = _U16.unpack(take(2, what))[0]
        return value

    first = take(1, "header")
    version = first[0]
    if version not in (1, 2):
        if version == 0x80 or first == b"":
            raise MalformedMessageError("not an AWS Encryption SDK message (bad version byte)")
        raise MalformedMessageError(
            f"not an AWS Encryption SDK message: unknown format version 0x{version:02x}"
        )
    if version == 1:
        msg_type = take(1, "header")[0]
        if msg_type != TYPE_CUSTOMER_AED:
            raise MalformedMessageError(f"unknown message type 0x{msg_type:02x}")
    suite_id = u16("header")
    try:
        suite = suite_by_id(suite_id)
    except UnsupportedSuiteError:
        raise MalformedMessageError(f"unknown algorithm suite 0x{suite_id:04x}") from None
    if suite.message_version != version:
        raise MalformedMessageError(
            f"suite {suite.name} belongs to message format version {suite.message_version}, "
            f"not {version}"
        )
    message_id = take(suite.message_id_length, "header")
    context_length = u16("header")
    context = parse_encryption_context(take(context_length, "encryption context"))
    edk_count = u16("header")
    if edk_count == 0:
        raise MalformedMessageError("the message has no encrypted data keys")
    if max_encrypted_data_keys is not None and edk_count > max_encrypted_data_keys:
        raise MalformedMessageError(
            f"the message has {edk_count} encrypted data keys, more than the allowed "
            f"{max_encrypted_data_keys}"
        )
    edks = []
    for _ in range(edk_count):
        provider_id = _utf8(take(u16("header"), "encrypted data key"), "key provider id")
        provider_info = take(u16("header"), "encrypted data key")
        ciphertext = take(u16("header"), "encrypted data key")
        edks.append(EncryptedDataKey(provider_id, provider_info, ciphertext))
    content_type = take(1, "header")[0]
    if content_type not in (CONTENT_FRAMED, CONTENT_NON_FRAMED):
        raise MalformedMessageError(f"unknown content type 0x{content_type:02x}")
    suite_data = b""
    if version == 1:
        if take(4, "header") != b"\x00\x00\x00\x00":
            raise MalformedMessageError("the header's reserved field is not zero")
        iv_length = take(1, "header")[0]
        if iv_length != IV_LENGTH:
            raise MalformedMessageError(f"IV length {iv_length} does not match the suite (12)")
        frame_length: int = _U32.unpack(take(4, "header"))[0]
    else:
        frame_length = _U32.unpack(take(4, "header"))[0]
        suite_data = take(suite.suite_data_length, "header")
    if content_type == CONTENT_NON_FRAMED and frame_length != 0:
        raise MalformedMessageError("a non-framed message must have frame length 0")
    if content_type == CONTENT_FRAMED and frame_length == 0:
        raise MalformedMessageError("a framed message cannot have frame length 0")
    body = b"".join(parts)
    header_iv = reader.read(IV_LENGTH, "header authentication") if version == 1 else b""
    header_tag = reader.read(TAG_LENGTH, "header authentication")
    return MessageHeader(
        version=version,
        suite=suite,
        message_id=message_id,
        encryption_context=context,
        encrypted_data_keys=tuple(edks),
        content_type=content_type,
        frame_length=frame_length,
        suite_data=suite_data,
        header_iv=header_iv,
        header_tag=header_tag,
        body=body,
    )


def pack_u16(value: int) -> bytes:
    return _U16.pack(value)


def pack_u32(value: int) -> bytes:
    return _U32.pack(value)


def pack_u64(value: int) -> bytes:
    return _U64.pack(value)
