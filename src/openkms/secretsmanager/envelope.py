"""How a secret version's value is kept: envelope encryption under a KMS key, as AWS does it.

Each version has its own 256-bit data key from ``GenerateDataKey`` (through ``kms_client``, on
the caller's behalf) with the encryption context ``{"SecretARN": <arn>, "SecretVersionId":
<version id>}``; the value is sealed with it (AES-256-GCM, pyca/cryptography through
``openkms.crypto.aead``) and the data key is kept only as the KMS ciphertext blob. Reading the
value takes a ``Decrypt`` with the same context, so a version cannot be moved to another secret
or version, and a caller without ``kms:Decrypt`` on the key cannot read it.

Format (version 1)::

    0x01 | kind (0x01 string, 0x02 binary) | u16 length of the blob | data key blob
         | 12-byte IV | AES-GCM ciphertext || 16-byte tag

The AAD is the header (version, kind, blob) with the ARN and version id, so neither the kind
nor the key blob can be swapped.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from openkms.crypto.aead import IV_LEN, SymmetricKey
from openkms.errors import InvalidCiphertextException

FORMAT = 1
STRING = 1
BINARY = 2


@dataclass(frozen=True, slots=True)
class SecretValue:
    """A decrypted value: SecretString (text) or SecretBinary (bytes); never in a repr."""

    string: str | None = field(default=None, repr=False)
    binary: bytes | None = field(default=None, repr=False)


def context_for(secret_arn: str, version_id: str) -> dict[str, str]:
    return {"SecretARN": secret_arn, "SecretVersionId": version_id}


def _aad(header: bytes, secret_arn: str, version_id: str) -> bytes:
    return header + b"\x00" + secret_arn.encode() + b"\x00" + version_id.encode()


def seal(
    value: SecretValue, data_key: bytes, key_blob: bytes, secret_arn: str, version_id: str
) -> bytes:
    kind = STRING if value.string is not None else BINARY
    plaintext = value.string.encode() if value.string is not None else (value.binary or b"")
    header = struct.pack(">BBH", FORMAT, kind, len(key_blob)) + key_blob
    iv, sealed = SymmetricKey(data_key).seal(plaintext, _aad(header, secret_arn, version_id))
    return header + iv + sealed


def key_blob_of(stored: bytes) -> bytes:
    """The KMS ciphertext blob of the version's data key."""
    if len(stored) < 4 or stored[0] != FORMAT:
        raise InvalidCiphertextException("")
    (length,) = struct.unpack(">H", stored[2:4])
    if len(stored) < 4 + length + IV_LEN:
        raise InvalidCiphertextException("")
    return stored[4 : 4 + length]


def open_value(stored: bytes, data_key: bytes, secret_arn: str, version_id: str) -> SecretValue:
    blob = key_blob_of(stored)
    kind = stored[1]
    header_end = 4 + len(blob)
    iv = stored[header_end : header_end + IV_LEN]
    sealed = stored[header_end + IV_LEN :]
    plaintext = SymmetricKey(data_key).open(
        iv, sealed, _aad(stored[:header_end], secret_arn, version_id)
    )
    if kind == STRING:
        return SecretValue(string=plaintext.decode())
    return SecretValue(binary=plaintext)
