"""The one place where an error becomes an HTTP status and a ``{"__type", "message"}`` body."""

from __future__ import annotations

import orjson

from openkms.errors import OpenKMSError


def error_body(exc: OpenKMSError) -> bytes:
    return orjson.dumps({"__type": exc.code, "message": exc.message})


def error_status(exc: OpenKMSError) -> int:
    return exc.status
