"""Sign, Verify, GetPublicKey."""

from __future__ import annotations

from typing import Any

from openkms.crypto import asymmetric, keyspecs
from openkms.domain.key import require_usable_for_crypto
from openkms.errors import KMSInvalidSignatureException, UnsupportedOperationException
from openkms.service.asymmetric_keys import private_handle, require_usage
from openkms.service.common import dry_run
from openkms.service.context import RequestContext
from openkms.service.runtime import Runtime
from openkms.types import KeySpec, KeyUsageType, MessageType, SigningAlgorithmSpec


def _prepare(
    rt: Runtime, ctx: RequestContext, req: dict[str, Any], action: str, operation: str
) -> tuple[Any, SigningAlgorithmSpec, MessageType]:
    key = rt.resolve_key(ctx, req["KeyId"])
    rt.access.authorize_key(ctx, action, key, req)
    require_usable_for_crypto(key)
    require_usage(key, KeyUsageType.SIGN_VERIFY, operation)
    algorithm = SigningAlgorithmSpec(req["SigningAlgorithm"])
    message_type = MessageType(req.get("MessageType") or "RAW")
    asymmetric.check_signing_request(KeySpec(key.key_spec), algorithm, req["Message"], message_type)
    dry_run(req)
    return key, algorithm, message_type


def sign(rt: Runtime, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    key, algorithm, message_type = _prepare(rt, ctx, req, "kms:Sign", "Sign")
    signature = asymmetric.sign(private_handle(rt, key), algorithm, req["Message"], message_type)
    rt.note_usage(key, ctx)
    return {"KeyId": key.arn, "Signature": signature, "SigningAlgorithm": algorithm.value}


def verify(rt: Runtime, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    key, algorithm, message_type = _prepare(rt, ctx, req, "kms:Verify", "Verify")
    valid = asymmetric.verify(
        private_handle(rt, key), algorithm, req["Message"], req["Signature"], message_type
    )
    rt.note_usage(key, ctx)
    if not valid:
        raise KMSInvalidSignatureException("")
    return {"KeyId": key.arn, "SignatureValid": True, "SigningAlgorithm": algorithm.value}


def get_public_key(rt: Runtime, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    key = rt.resolve_key(ctx, req["KeyId"])
    rt.access.authorize_key(ctx, "kms:GetPublicKey", key, req)
    require_usable_for_crypto(key)
    info = keyspecs.spec_info(KeySpec(key.key_spec))
    if info.symmetric:
        raise UnsupportedOperationException(
            f"{key.arn} key usage is {key.key_usage} and key spec is {key.key_spec}, which is "
            "not valid for GetPublicKey."
        )
    result: dict[str, Any] = {
        "KeyId": key.arn,
        "PublicKey": asymmetric.public_key_der(private_handle(rt, key)),
        "KeySpec": key.key_spec,
        "KeyUsage": key.key_usage,
    }
    if info.customer_master_key_spec is not None:
        result["CustomerMasterKeySpec"] = info.customer_master_key_spec.value
    result.update(info.algorithms_for(KeyUsageType(key.key_usage)).metadata_fields())
    return result
