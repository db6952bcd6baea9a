"""GenerateDataKeyPair, GenerateDataKeyPairWithoutPlaintext: a fresh asymmetric pair whose private
key (PKCS#8 DER) is returned encrypted under a symmetric KMS key, with its encryption context."""

from __future__ import annotations

from typing import Any

from openkms.crypto import asymmetric, keyspecs
from openkms.domain.key import require_usable_for_crypto
from openkms.errors import InvalidKeyUsageException, UnsupportedOperationException
from openkms.service.common import dry_run, refuse_recipient
from openkms.service.context import RequestContext
from openkms.service.runtime import Runtime
from openkms.service.symmetric import is_symmetric, require_encrypt_decrypt, seal
from openkms.types import DataKeyPairSpec


def _generate(
    rt: Runtime, ctx: RequestContext, req: dict[str, Any], action: str, operation: str
) -> dict[str, Any]:
    refuse_recipient(req)
    key = rt.resolve_key(ctx, req["KeyId"])
    rt.access.authorize_key(ctx, action, key, req)
    require_usable_for_crypto(key)
    require_encrypt_decrypt(key, operation)
    if not is_symmetric(key):
        raise InvalidKeyUsageException(
            f"{key.arn} key spec is {key.key_spec}, which is not valid for {operation}."
        )
    pair = keyspecs.data_key_pair_info(DataKeyPairSpec(req["KeyPairSpec"]))
    if pair.unsupported_reason is not None:
        raise UnsupportedOperationException(pair.unsupported_reason)
    dry_run(req)
    private = asymmetric.generate_private_key(pair.key_spec)
    public = asymmetric.public_key_der(
        asymmetric.load_private_key(pair.key_spec, private, trusted=True)
    )
    blob, material_id = seal(rt, key, private, req.get("EncryptionContext"))
    rt.note_usage(key, ctx)
    return {
        "KeyId": key.arn,
        "KeyPairSpec": pair.data_key_pair_spec.value,
        "PublicKey": public,
        "PrivateKeyPlaintext": private,
        "PrivateKeyCiphertextBlob": blob,
        "KeyMaterialId": material_id,
    }


def generate_data_key_pair(rt: Runtime, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    return _generate(rt, ctx, req, "kms:GenerateDataKeyPair", "GenerateDataKeyPair")


def generate_data_key_pair_without_plaintext(
    rt: Runtime, ctx: RequestContext, req: dict[str, Any]
) -> dict[str, Any]:
    result = _generate(
        rt,
        ctx,
        req,
        "kms:GenerateDataKeyPairWithoutPlaintext",
        "GenerateDataKeyPairWithoutPlaintext",
    )
    del result["PrivateKeyPlaintext"]
    return result
