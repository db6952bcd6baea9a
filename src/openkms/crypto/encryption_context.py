"""Canonical serialization of an encryption context, the AAD that binds it to a ciphertext.

Pairs sorted by the UTF-8 bytes of the key; a 2-byte count, then for each pair the key and the
value, each as a 2-byte length and its UTF-8 bytes. An empty context is the empty string, so
``{}`` and no context are the same context, as in AWS KMS.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Final

# The 2-byte big-endian lengths of short strings, precomputed: the lengths of a typical context's
# keys and values are all below 256.
_U16: Final = tuple(struct.pack(">H", n) for n in range(256))


def _u16(n: int) -> bytes:
    return _U16[n] if n < 256 else struct.pack(">H", n)


def canonical_context(context: Mapping[str, str] | None) -> bytes:
    if not context:
        return b""
    items = sorted([(k.encode("utf-8"), v.encode("utf-8")) for k, v in context.items()])
    out = [_u16(len(items))]
    for key, value in items:
        out += (_u16(len(key)), key, _u16(len(value)), value)
    return b"".join(out)
