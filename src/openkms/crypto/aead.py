"""AES-256-GCM for symmetric KMS keys. Any failure is reported as ``InvalidCiphertextException``
with one fixed message, so that a caller learns nothing about why."""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from openkms.errors import invalid_ciphertext

IV_LEN = 12
TAG_LEN = 16


class SymmetricKey:
    """An unwrapped AES-256 key ready for use; its bytes never appear in a repr."""

    __slots__ = ("_aead",)

    def __init__(self, material: bytes) -> None:
        if len(material) != 32:
            raise ValueError("symmetric key material must be 32 bytes")
        self._aead = AESGCM(material)

    def __repr__(self) -> str:
        return "SymmetricKey(<redacted>)"

    def seal(self, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
        """Returns (iv, ciphertext||tag)."""
        iv = os.urandom(IV_LEN)
        return iv, self._aead.encrypt(iv, plaintext, aad)

    def open(self, iv: bytes, sealed: bytes, aad: bytes) -> bytes:
        try:
            return self._aead.decrypt(iv, sealed, aad)
        except (InvalidTag, ValueError) as exc:
            raise invalid_ciphertext() from exc


def new_symmetric_material() -> bytes:
    return os.urandom(32)
