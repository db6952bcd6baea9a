"""A root of trust held as a 256-bit AES key in process memory (file and memory backends).

Blob format: ``0x01 | nonce(12) | AES-256-GCM(ciphertext || tag)``, AAD as given.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from openkms.rootoftrust.base import RootOfTrustError

_VERSION = b"\x01"
_NONCE_LEN = 12


class AesGcmRoot:
    name = "aes-gcm"

    def __init__(self, root_key: bytes) -> None:
        if len(root_key) != 32:
            raise ValueError("the root key must be 32 bytes")
        self._aead = AESGCM(root_key)
        # The check value is an HMAC of a fixed label, so it reveals nothing about the key.
        self._check = hmac.new(
            root_key, b"openkms root key check value", hashlib.sha256
        ).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(check_value={self._check!r})"

    def wrap(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(_NONCE_LEN)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext, _VERSION + aad)

    def unwrap(self, wrapped: bytes, aad: bytes) -> bytes:
        if len(wrapped) < 1 + _NONCE_LEN + 16 or wrapped[:1] != _VERSION:
            raise RootOfTrustError("unwrap failed")
        nonce = wrapped[1 : 1 + _NONCE_LEN]
        try:
            return self._aead.decrypt(nonce, wrapped[1 + _NONCE_LEN :], _VERSION + aad)
        except InvalidTag as exc:
            raise RootOfTrustError("unwrap failed") from exc

    def check_value(self) -> str:
        return self._check
