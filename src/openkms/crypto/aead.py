"""AES-256-GCM for symmetric KMS keys. Any failure is reported as ``InvalidCiphertextException``
with one fixed message, so that a caller learns nothing about why."""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from openkms.errors import invalid_ciphertext

IV_LEN = 12
TAG_LEN = 16

# IVs are drawn from os.urandom 64 at a time: one getrandom(2) system call (and one release of
# the GIL, which hands it to any waiting thread) per 64 seals instead of per seal. Each IV is
# still 96 bits of the kernel's CSPRNG, handed out once: ``list.pop`` is atomic, so two threads
# never get the same one, and a forked child drops what it inherited (the parent goes on
# handing those out; a GCM nonce used twice under one key would be fatal).
_IV_BATCH = 64
_ivs: list[bytes] = []


def _new_iv() -> bytes:
    try:
        return _ivs.pop()
    except IndexError:
        pool = os.urandom(IV_LEN * _IV_BATCH)
        fresh = [pool[i : i + IV_LEN] for i in range(0, len(pool), IV_LEN)]
        mine = fresh.pop()
        _ivs.extend(fresh)
        return mine


os.register_at_fork(after_in_child=_ivs.clear)


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
        iv = _new_iv()
        return iv, self._aead.encrypt(iv, plaintext, aad)

    def open(self, iv: bytes, sealed: bytes, aad: bytes) -> bytes:
        try:
            return self._aead.decrypt(iv, sealed, aad)
        except (InvalidTag, ValueError) as exc:
            raise invalid_ciphertext() from exc


def new_symmetric_material() -> bytes:
    return os.urandom(32)
