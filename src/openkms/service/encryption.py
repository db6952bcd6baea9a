"""Encrypt, Decrypt, ReEncrypt."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from openkms.domain import ciphertext
from openkms.domain.key import KeyRecord, require_usable_for_crypto
from openkms.errors import ClientError, ValidationException, invalid_ciphertext
from openkms.service import asymmetric_keys
from openkms.service.common import dry_run, refuse_recipient
from openkms.service.condition_keys import REENCRYPT_DESTINATION, REENCRYPT_SOURCE
from openkms.service.context import RequestContext
from openkms.service.runtime import Runtime
from openkms.service.symmetric import (
    SYMMETRIC_DEFAULT,
    is_symmetric,
    key_for_blob,
    open_blob,
    require_encrypt_decrypt,
    require_symmetric_algorithm,
    seal,
)

IGNORE_CIPHERTEXT = "IGNORE_CIPHERTEXT"


def _encrypt_with(
    rt: Runtime,
    key: KeyRecord,
    plaintext: bytes,
    context: dict[str, str] | None,
    algorithm: str | None,
    operation: str,
) -> tuple[bytes, str, str | None]:
    """(blob, algorithm used, material id) — the shared tail of Encrypt and ReEncrypt."""
    require_usable_for_crypto(key)
    require_encrypt_decrypt(key, operation)
    if is_symmetric(key):
        require_symmetric_algorithm(key, algorithm)
        blob, material_id = seal(rt, key, plaintext, context)
        return blob, SYMMETRIC_DEFAULT, material_id
    blob = asymmetric_keys.encrypt(rt, key, algorithm, plaintext, context)
    assert algorithm is not None
    return blob, algorithm, None


def encrypt(rt: Runtime, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    key = rt.resolve_key(ctx, req["KeyId"])
    rt.access.authorize_key(ctx, "kms:Encrypt", key, req)
    algorithm = req.get("EncryptionAlgorithm")
    require_usable_for_crypto(key)
    require_encrypt_decrypt(key, "Encrypt")
    if is_symmetric(key):
        require_symmetric_algorithm(key, algorithm)
    else:
        asymmetric_keys.check_encryption(key, algorithm, req.get("EncryptionContext"))
    dry_run(req)
    blob, used, _material_id = _encrypt_with(
        rt, key, req["Plaintext"], req.get("EncryptionContext"), algorithm, "Encrypt"
    )
    rt.note_usage(key, ctx)
    return {"CiphertextBlob": blob, "KeyId": key.arn, "EncryptionAlgorithm": used}


@dataclass(slots=True)
class _Source:
    """The decrypting side of Decrypt and ReEncrypt, checked and ready to open: its key
    resolved, authorized and in a usable state, its ciphertext parsed (symmetric)."""

    key: KeyRecord
    algorithm: str
    blob: bytes
    parsed: ciphertext.CiphertextBlob | None

    # Not frozen, and an explicit __init__ (compiled by mypyc): see ciphertext.CiphertextBlob.
    def __init__(
        self, key: KeyRecord, algorithm: str, blob: bytes, parsed: ciphertext.CiphertextBlob | None
    ) -> None:
        self.key = key
        self.algorithm = algorithm
        self.blob = blob
        self.parsed = parsed

    def __repr__(self) -> str:
        return f"_Source(key={self.key.arn!r}, algorithm={self.algorithm!r})"


def _check_source(
    rt: Runtime,
    ctx: RequestContext,
    *,
    blob: bytes,
    key_ref: str | None,
    context: dict[str, str] | None,
    algorithm: str | None,
    action: str,
    req: dict[str, Any],
) -> _Source:
    """Every check of Decrypt and of ReEncrypt's source side, before any DryRun answer; with
    DryRun and the IGNORE_CIPHERTEXT modifier the ciphertext is not looked at (the caller's
    ``dry_run`` must come before ``_open_source``)."""
    if algorithm not in (None, SYMMETRIC_DEFAULT):
        if key_ref is None:
            raise ValidationException(
                "KeyId is required when the encryption algorithm is " + str(algorithm)
            )
        key = rt.resolve_key(ctx, key_ref)
        rt.access.authorize_key(ctx, action, key, req)
        require_usable_for_crypto(key)
        require_encrypt_decrypt(key, "Decrypt")
        asymmetric_keys.check_encryption(key, algorithm, context)
        return _Source(key, algorithm, blob, None)
    if IGNORE_CIPHERTEXT in (req.get("DryRunModifiers") or []) and req.get("DryRun"):
        if key_ref is None:
            raise ValidationException("KeyId is required with the IGNORE_CIPHERTEXT modifier.")
        key = rt.resolve_key(ctx, key_ref)
        rt.access.authorize_key(ctx, action, key, req)
        require_usable_for_crypto(key)
        # Never opened: the caller's DryRun answer comes first.
        return _Source(key, SYMMETRIC_DEFAULT, blob, None)
    key, parsed = key_for_blob(rt, ctx, blob, key_ref)
    rt.access.authorize_key(ctx, action, key, req)
    require_usable_for_crypto(key)
    require_encrypt_decrypt(key, "Decrypt")
    if not is_symmetric(key):
        # A symmetric blob naming an asymmetric key is not a ciphertext of that key.
        raise invalid_ciphertext()
    return _Source(key, SYMMETRIC_DEFAULT, blob, parsed)


def _open_source(
    rt: Runtime, source: _Source, context: dict[str, str] | None
) -> tuple[bytes, str | None]:
    """(plaintext, material id) of a checked source."""
    if source.parsed is None:
        if source.algorithm == SYMMETRIC_DEFAULT:  # IGNORE_CIPHERTEXT: never reached
            raise invalid_ciphertext()
        return asymmetric_keys.decrypt(rt, source.key, source.algorithm, source.blob), None
    opened = open_blob(rt, source.key, source.parsed, context)
    return opened.plaintext, opened.material_id


def _require_ciphertext(req: dict[str, Any]) -> None:
    if "CiphertextBlob" not in req:
        raise ValidationException(
            "1 validation error detected: Value null at 'ciphertextBlob' failed to satisfy "
            "constraint: Member must not be null"
        )


def decrypt(rt: Runtime, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    refuse_recipient(req)
    _require_ciphertext(req)
    context = req.get("EncryptionContext")
    source = _check_source(
        rt,
        ctx,
        blob=req["CiphertextBlob"],
        key_ref=req.get("KeyId"),
        context=context,
        algorithm=req.get("EncryptionAlgorithm"),
        action="kms:Decrypt",
        req=req,
    )
    dry_run(req)
    plaintext, material_id = _open_source(rt, source, context)
    key = source.key
    rt.note_usage(key, ctx)
    result: dict[str, Any] = {
        "KeyId": key.arn,
        "Plaintext": plaintext,
        "EncryptionAlgorithm": source.algorithm,
    }
    if material_id is not None:
        result["KeyMaterialId"] = material_id
    return result


def re_encrypt(rt: Runtime, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    _require_ciphertext(req)
    # The source side first, as AWS: a ciphertext that SourceKeyId cannot decrypt is
    # IncorrectKeyException whatever the destination key is.
    source_context = req.get("SourceEncryptionContext")
    # kms:ReEncryptOnSameKey needs the destination on the source side's authorization: looked
    # up without effect here (an unknown destination is refused below, after the source side;
    # the destination's alias must not become the source side's kms:RequestAlias, nor its ARN
    # come first in the audit record's resources).
    alias_named = ctx.request_alias
    try:
        dest_arn: str | None = rt.resolve_key(ctx, req["DestinationKeyId"], record=False).arn
    except ClientError:
        dest_arn = None
    ctx.request_alias = alias_named
    source = _check_source(
        rt,
        ctx,
        blob=req["CiphertextBlob"],
        key_ref=req.get("SourceKeyId"),
        context=source_context,
        algorithm=req.get("SourceEncryptionAlgorithm"),
        action="kms:ReEncryptFrom",
        req={**req, REENCRYPT_DESTINATION: dest_arn},
    )
    destination = rt.resolve_key(ctx, req["DestinationKeyId"])
    rt.access.authorize_key(
        ctx, "kms:ReEncryptTo", destination, {**req, REENCRYPT_SOURCE: source.key.arn}
    )
    dest_algorithm = req.get("DestinationEncryptionAlgorithm")
    dest_context = req.get("DestinationEncryptionContext")
    require_usable_for_crypto(destination)
    require_encrypt_decrypt(destination, "ReEncrypt")
    if is_symmetric(destination):
        require_symmetric_algorithm(destination, dest_algorithm)
    else:
        asymmetric_keys.check_encryption(destination, dest_algorithm, dest_context)
    dry_run(req)
    plaintext, src_material = _open_source(rt, source, source_context)
    blob, dest_used, dest_material = _encrypt_with(
        rt, destination, plaintext, dest_context, dest_algorithm, "ReEncrypt"
    )
    rt.note_usage(source.key, ctx)
    rt.note_usage(destination, ctx)
    result: dict[str, Any] = {
        "CiphertextBlob": blob,
        "SourceKeyId": source.key.arn,
        "KeyId": destination.arn,
        "SourceEncryptionAlgorithm": source.algorithm,
        "DestinationEncryptionAlgorithm": dest_used,
    }
    if src_material is not None:
        result["SourceKeyMaterialId"] = src_material
    if dest_material is not None:
        result["DestinationKeyMaterialId"] = dest_material
    return result
