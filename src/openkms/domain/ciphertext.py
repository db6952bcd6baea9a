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
from typing import Final

from openkms.crypto.aead import IV_LEN, TAG_LEN
from openkms.errors import invalid_ciphertext

VERSION = 1
_ACCOUNT_LEN = 12
_MATERIAL_LEN = 32


# Not frozen, with an explicit __init__ that mypyc compiles: one is made per Decrypt, and a
# frozen dataclass's generated __init__ is a Python function paying object.__setattr__ per field.
@dataclass(slots=True)
class CiphertextBlob:
    account_id: str
    key_id: str
    material_id: str  # 64 hex characters
    header: bytes  # everything before the IV: the AAD prefix
    iv: bytes
    sealed: bytes

    def __init__(
        self,
        account_id: str,
        key_id: str,
        material_id: str,
        header: bytes,
        iv: bytes,
        sealed: bytes,
    ) -> None:
        self.account_id = account_id
        self.key_id = key_id
        self.material_id = material_id
        self.header = header
        self.iv = iv
        self.sealed = sealed

    def __repr__(self) -> str:
        return f"CiphertextBlob(key_id={self.key_id!r}, material_id={self.material_id!r})"


# (account id, key id, material id) -> header: the same few keys seal every request. Bounded.
_HEADERS: dict[tuple[str, str, str], bytes] = {}
_HEADERS_LIMIT: Final = 4096


def encode_header(account_id: str, key_id: str, material_id: str) -> bytes:
    ident = (account_id, key_id, material_id)
    header = _HEADERS.get(ident)
    if header is not None:
        return header
    kid = key_id.encode("ascii")
    header = (
        bytes([VERSION])
        + account_id.encode("ascii")
        + bytes([len(kid)])
        + kid
        + bytes.fromhex(material_id)
    )
    if len(_HEADERS) >= _HEADERS_LIMIT:
        _HEADERS.clear()
    _HEADERS[ident] = header
    return header


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
