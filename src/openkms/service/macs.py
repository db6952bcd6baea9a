"""GenerateMac, VerifyMac."""

from __future__ import annotations

from typing import Any

from openkms.crypto import mac
from openkms.domain.key import KeyRecord, require_usable_for_crypto
from openkms.service.asymmetric_keys import hmac_handle, require_usage
from openkms.service.common import dry_run
from openkms.service.context import RequestContext
from openkms.service.runtime import Runtime
from openkms.types import KeyUsageType, MacAlgorithmSpec


def _prepare(
    rt: Runtime, ctx: RequestContext, req: dict[str, Any], action: str, operation: str
) -> tuple[KeyRecord, MacAlgorithmSpec, mac.HmacKey]:
    key = rt.resolve_key(ctx, req["KeyId"])
    rt.access.authorize_key(ctx, action, key, req)
    require_usable_for_crypto(key)
    require_usage(key, KeyUsageType.GENERATE_VERIFY_MAC, operation)
    algorithm = MacAlgorithmSpec(req["MacAlgorithm"])
    handle = hmac_handle(rt, key)
    return key, algorithm, handle


def generate_mac(rt: Runtime, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    key, algorithm, handle = _prepare(rt, ctx, req, "kms:GenerateMac", "GenerateMac")
    tag = mac.generate_mac(handle, algorithm, req["Message"])
    dry_run(req)
    rt.note_usage(key, ctx)
    return {"KeyId": key.arn, "Mac": tag, "MacAlgorithm": algorithm.value}


def verify_mac(rt: Runtime, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    key, algorithm, handle = _prepare(rt, ctx, req, "kms:VerifyMac", "VerifyMac")
    dry_run(req)
    mac.verify_mac(handle, algorithm, req["Message"], req["Mac"])
    rt.note_usage(key, ctx)
    return {"KeyId": key.arn, "MacValid": True, "MacAlgorithm": algorithm.value}
