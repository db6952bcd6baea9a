"""The symmetric core shared by Encrypt, Decrypt, ReEncrypt and the data-key operations: seal
under a key's current material, open a blob under the material it names."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from openkms.crypto.encryption_context import canonical_context
from openkms.domain import ciphertext
from openkms.domain.key import KeyRecord, require_usable_for_crypto
from openkms.errors import (
    IncorrectKeyException,
    InvalidKeyUsageException,
    KMSInternalException,
    invalid_ciphertext,
)
from openkms.service.context import RequestContext
from openkms.service.runtime import Runtime
from openkms.types import KeySpec, KeyUsageType

SYMMETRIC_DEFAULT = "SYMMETRIC_DEFAULT"
# The enums' values as plain constants: an Enum member's ``.value`` is a Python-level property,
# some 4,000 instructions each time a request checks a key.
_ENCRYPT_DECRYPT: Final = KeyUsageType.ENCRYPT_DECRYPT.value
_SYMMETRIC_SPEC: Final = KeySpec.SYMMETRIC_DEFAULT.value


def require_encrypt_decrypt(key: KeyRecord, operation: str) -> None:
    if key.key_usage != _ENCRYPT_DECRYPT:
        raise InvalidKeyUsageException(
            f"{key.arn} key usage is {key.key_usage} which is not valid for {operation}."
        )


def require_symmetric_algorithm(key: KeyRecord, algorithm: str | None) -> None:
    if algorithm not in (None, SYMMETRIC_DEFAULT):
        raise InvalidKeyUsageException(
            f"The encryption algorithm {algorithm} is not valid for {key.arn}, whose key spec "
            f"is {key.key_spec}."
        )


def is_symmetric(key: KeyRecord) -> bool:
    return key.key_spec == _SYMMETRIC_SPEC


def seal(
    rt: Runtime, key: KeyRecord, plaintext: bytes, context: Mapping[str, str] | None
) -> tuple[bytes, str]:
    """Returns (ciphertext blob, material id) under the key's current material."""
    material_id = key.current_material_id
    if key.custom_key_store_id is not None and material_id is not None:
        from openkms.service.key_store_keys import seal_in_store

        header = ciphertext.encode_header(key.account_id, key.key_id, material_id)
        return seal_in_store(rt, key, header, plaintext, context), material_id
    handle = None if material_id is None else rt.symmetric_key(key, material_id)
    if material_id is None or handle is None:
        raise KMSInternalException("The key has no current key material.")
    header = ciphertext.encode_header(key.account_id, key.key_id, material_id)
    iv, sealed = handle.seal(plaintext, header + canonical_context(context))
    return ciphertext.encode(header, iv, sealed), material_id


@dataclass(slots=True)
class Opened:
    key: KeyRecord
    plaintext: bytes
    material_id: str

    # Not frozen, and an explicit __init__ (compiled by mypyc): see ciphertext.CiphertextBlob.
    def __init__(self, key: KeyRecord, plaintext: bytes, material_id: str) -> None:
        self.key = key
        self.plaintext = plaintext
        self.material_id = material_id

    def __repr__(self) -> str:
        return f"Opened(key={self.key.arn!r}, material_id={self.material_id!r})"


def key_for_blob(
    rt: Runtime, ctx: RequestContext, blob: bytes, key_ref: str | None
) -> tuple[KeyRecord, ciphertext.CiphertextBlob]:
    parsed = ciphertext.decode(blob)
    arn = rt.key_arn_for(parsed.account_id, ctx.region, parsed.key_id)
    if key_ref is not None:
        named = rt.resolve_key(ctx, key_ref)
        if named.arn != arn:
            raise IncorrectKeyException(
                "The key ID in the request does not identify a CMK that can perform this operation."
            )
        return named, parsed
    key = rt.load_key(arn)
    if key is None:
        # A blob that names no key here is indistinguishable from garbage to the caller.
        raise invalid_ciphertext()
    ctx.resources.append(arn)
    return key, parsed


def open_blob(
    rt: Runtime,
    key: KeyRecord,
    parsed: ciphertext.CiphertextBlob,
    context: Mapping[str, str] | None,
) -> Opened:
    require_usable_for_crypto(key)
    if key.custom_key_store_id is not None:
        from openkms.service.key_store_keys import open_in_store

        return Opened(key, open_in_store(rt, key, parsed, context), parsed.material_id)
    handle = rt.symmetric_key(key, parsed.material_id)
    if handle is None:
        raise invalid_ciphertext()
    plaintext = handle.open(parsed.iv, parsed.sealed, parsed.header + canonical_context(context))
    return Opened(key, plaintext, parsed.material_id)
