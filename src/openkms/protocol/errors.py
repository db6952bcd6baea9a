"""The one place where an error becomes an HTTP status and a ``{"__type", "message"}`` body."""

from __future__ import annotations

import orjson

from openkms.errors import OpenKMSError


def error_body(exc: OpenKMSError) -> bytes:
    """AWS's error body. An error that AWS answers without a message (an empty ``message`` here:
    InvalidCiphertextException, KMSInvalidSignatureException, KMSInvalidMacException,
    UnknownOperationException, ...) has no ``message`` member at all, not an empty one."""
    if not exc.message:
        return orjson.dumps({"__type": exc.code})
    return orjson.dumps({"__type": exc.code, "message": exc.message})


def error_status(exc: OpenKMSError) -> int:
    return exc.status
