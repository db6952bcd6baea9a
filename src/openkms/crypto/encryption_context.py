"""Canonical serialization of an encryption context, the AAD that binds it to a ciphertext.

Pairs sorted by the UTF-8 bytes of the key; a 2-byte count, then for each pair the key and the
value, each as a 2-byte length and its UTF-8 bytes. An empty context is the empty string, so
``{}`` and no context are the same context, as in AWS KMS.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping


def canonical_context(context: Mapping[str, str] | None) -> bytes:
    if not context:
        return b""
    items = sorted((k.encode("utf-8"), v.encode("utf-8")) for k, v in context.items())
    out = [struct.pack(">H", len(items))]
    for key, value in items:
        out.append(struct.pack(">H", len(key)))
        out.append(key)
        out.append(struct.pack(">H", len(value)))
        out.append(value)
    return b"".join(out)
