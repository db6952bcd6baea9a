"""The symmetric ciphertext blob (format version 1; specified in docs/formats/ciphertext.md).

    version      1 byte   0x01
    account id   12 bytes ASCII digits
    key id len   1 byte
    key id       ASCII (a UUID, or mrk- and 32 hex digits)
    material id  32 bytes (the KeyMaterialId, hex-decoded)
    iv           12 bytes
    ciphertext   AES-256-GCM ciphertext || 16-byte tag

The AAD is every byte before the IV followed by the canonical encryption context, so a blob cannot
be moved to another key, material version or context. The region is not in the blob: a
multi-Region key shares its id and material across Regions, so the blob decrypts in each.
"""

from __future__ import annotations

from dataclasses import dataclass

from openkms.crypto.aead import IV_LEN, TAG_LEN
from openkms.errors import invalid_ciphertext

VERSION = 1
_ACCOUNT_LEN = 12
_MATERIAL_LEN = 32


@dataclass(frozen=True, slots=True)
class CiphertextBlob:
    account_id: str
    key_id: str
    material_id: str  # 64 hex characters
    header: bytes  # everything before the IV: the AAD prefix
    iv: bytes
    sealed: bytes

    def __repr__(self) -> str:
        return f"CiphertextBlob(key_id={self.key_id!r}, material_id={self.material_id!r})"


def encode_header(account_id: str, key_id: str, material_id: str) -> bytes:
    kid = key_id.encode("ascii")
    return (
        bytes([VERSION])
        + account_id.encode("ascii")
        + bytes([len(kid)])
        + kid
        + bytes.fromhex(material_id)
    )


def encode(header: bytes, iv: bytes, sealed: bytes) -> bytes:
    return header + iv + sealed


def decode(blob: bytes) -> CiphertextBlob:
    """Parses a blob; anything malformed is ``InvalidCiphertextException``."""
    try:
        if blob[0] != VERSION:
            raise invalid_ciphertext()
        account = blob[1 : 1 + _ACCOUNT_LEN].decode("ascii")
        pos = 1 + _ACCOUNT_LEN
        kid_len = blob[pos]
        pos += 1
        key_id = blob[pos : pos + kid_len].decode("ascii")
        pos += kid_len
        material = blob[pos : pos + _MATERIAL_LEN]
        pos += _MATERIAL_LEN
        iv = blob[pos : pos + IV_LEN]
        sealed = blob[pos + IV_LEN :]
    except (IndexError, UnicodeDecodeError) as exc:
        raise invalid_ciphertext() from exc
    if (
        not account.isdigit()
        or len(account) != _ACCOUNT_LEN
        or len(key_id) != kid_len
        or len(material) != _MATERIAL_LEN
        or len(iv) != IV_LEN
        or len(sealed) < TAG_LEN
    ):
        raise invalid_ciphertext()
    return CiphertextBlob(account, key_id, material.hex(), blob[:pos], iv, sealed)
