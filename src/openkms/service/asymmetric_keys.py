"""Asymmetric and HMAC key specs: the seam the key-spec issue fills in.

Until then every non-symmetric key spec answers UnsupportedOperationException, with a message
that names the spec, rather than half-working.
"""

from __future__ import annotations

from collections.abc import Mapping

from openkms.domain.key import KeyRecord
from openkms.errors import UnsupportedOperationException
from openkms.service.runtime import Runtime


def _unsupported(spec: str) -> UnsupportedOperationException:
    return UnsupportedOperationException(
        f"KeySpec {spec} is not supported by this openkms build yet; only SYMMETRIC_DEFAULT is."
    )


def check_spec_and_usage(spec: str, usage: str) -> str:
    raise _unsupported(spec)


def generate_material(spec: str) -> bytes:
    raise _unsupported(spec)


def check_encryption(
    key: KeyRecord, algorithm: str | None, context: Mapping[str, str] | None
) -> None:
    raise _unsupported(key.key_spec)


def encrypt(
    rt: Runtime,
    key: KeyRecord,
    algorithm: str | None,
    plaintext: bytes,
    context: Mapping[str, str] | None,
) -> bytes:
    raise _unsupported(key.key_spec)


def decrypt(rt: Runtime, key: KeyRecord, algorithm: str, blob: bytes) -> bytes:
    raise _unsupported(key.key_spec)
