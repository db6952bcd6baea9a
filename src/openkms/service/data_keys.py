"""GenerateDataKey, GenerateDataKeyWithoutPlaintext."""

from __future__ import annotations

import os
from typing import Any

from openkms.domain.key import require_usable_for_crypto
from openkms.errors import InvalidKeyUsageException, ValidationException
from openkms.service.common import dry_run, refuse_recipient
from openkms.service.context import RequestContext
from openkms.service.runtime import Runtime
from openkms.service.symmetric import is_symmetric, require_encrypt_decrypt, seal

_SPEC_BYTES = {"AES_256": 32, "AES_128": 16}


def _data_key_length(req: dict[str, Any]) -> int:
    spec = req.get("KeySpec")
    count = req.get("NumberOfBytes")
    if spec is not None and count is not None:
        raise ValidationException("Please specify either number of bytes or key spec.")
    if spec is None and count is None:
        raise ValidationException("Please specify either number of bytes or key spec.")
    if spec is not None:
        return _SPEC_BYTES[spec]
    assert isinstance(count, int)
    return count


def _generate(
    rt: Runtime, ctx: RequestContext, req: dict[str, Any], action: str, operation: str
) -> dict[str, Any]:
    refuse_recipient(req)
    key = rt.resolve_key(ctx, req["KeyId"])
    rt.access.authorize_key(ctx, action, key, req)
    length = _data_key_length(req)
    require_usable_for_crypto(key)
    require_encrypt_decrypt(key, operation)
    if not is_symmetric(key):
        raise InvalidKeyUsageException(
            f"{key.arn} key usage is {key.key_usage} and key spec is {key.key_spec}, "
            f"which is not valid for {operation}."
        )
    dry_run(req)
    plaintext = os.urandom(length)
    blob, material_id = seal(rt, key, plaintext, req.get("EncryptionContext"))
    rt.note_usage(key, ctx)
    return {
        "CiphertextBlob": blob,
        "Plaintext": plaintext,
        "KeyId": key.arn,
        "KeyMaterialId": material_id,
    }


def generate_data_key(rt: Runtime, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    return _generate(rt, ctx, req, "kms:GenerateDataKey", "GenerateDataKey")


def generate_data_key_without_plaintext(
    rt: Runtime, ctx: RequestContext, req: dict[str, Any]
) -> dict[str, Any]:
    result = _generate(
        rt,
        ctx,
        req,
        "kms:GenerateDataKeyWithoutPlaintext",
        "GenerateDataKeyWithoutPlaintext",
    )
    del result["Plaintext"]
    return result
