"""JSON 1.1 bodies in and out. Blobs are base64 only here, at the wire."""

from __future__ import annotations

import base64
from binascii import b2a_base64
from typing import Any

import orjson

from openkms.errors import SerializationException


def decode_body(body: bytes) -> object:
    if not body:
        return {}
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise SerializationException("Start of structure or map found where not expected.") from exc


def _default(value: object) -> object:
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"cannot encode {type(value).__name__}")


def encode(result: dict[str, Any]) -> bytes:
    # The blobs of the cryptographic operations are top-level members: encoded here, in one
    # pass, rather than by orjson calling back into Python (``_default``) for each of them.
    # ``_default`` still handles any nested deeper.
    flat = {
        name: b2a_base64(value, newline=False).decode("ascii") if type(value) is bytes else value
        for name, value in result.items()
    }
    return orjson.dumps(flat, default=_default)
