"""DeriveSharedSecret, Encapsulate, Decapsulate."""

from __future__ import annotations

from typing import Any

from openkms.crypto import agreement, kem
from openkms.domain.key import require_usable_for_crypto
from openkms.service.asymmetric_keys import private_handle, require_usage
from openkms.service.common import dry_run, refuse_recipient
from openkms.service.context import RequestContext
from openkms.service.runtime import Runtime
from openkms.types import EncapsulationAlgorithmSpec, KeyAgreementAlgorithmSpec, KeyUsageType


def derive_shared_secret(rt: Runtime, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    refuse_recipient(req)
    key = rt.resolve_key(ctx, req["KeyId"])
    rt.access.authorize_key(ctx, "kms:DeriveSharedSecret", key, req)
    require_usable_for_crypto(key)
    require_usage(key, KeyUsageType.KEY_AGREEMENT, "DeriveSharedSecret")
    algorithm = KeyAgreementAlgorithmSpec(req["KeyAgreementAlgorithm"])
    handle = private_handle(rt, key)
    secret = agreement.derive_shared_secret(handle, algorithm, req["PublicKey"])
    dry_run(req)
    rt.note_usage(key, ctx)
    return {
        "KeyId": key.arn,
        "SharedSecret": secret,
        "KeyAgreementAlgorithm": algorithm.value,
        "KeyOrigin": key.origin,
    }


def encapsulate(rt: Runtime, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    key = rt.resolve_key(ctx, req["KeyId"])
    rt.access.authorize_key(ctx, "kms:Encapsulate", key, req)
    require_usable_for_crypto(key)
    require_usage(key, KeyUsageType.ENCAPSULATE_DECAPSULATE, "Encapsulate")
    algorithm = EncapsulationAlgorithmSpec(req["EncapsulationAlgorithm"])
    handle = private_handle(rt, key)
    dry_run(req)
    result = kem.encapsulate(handle, algorithm)
    rt.note_usage(key, ctx)
    return {
        "KeyId": key.arn,
        "SharedSecret": result.shared_secret,
        "SharedSecretCiphertextBlob": result.ciphertext,
        "EncapsulationAlgorithm": algorithm.value,
    }


def decapsulate(rt: Runtime, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    key = rt.resolve_key(ctx, req["KeyId"])
    rt.access.authorize_key(ctx, "kms:Decapsulate", key, req)
    require_usable_for_crypto(key)
    require_usage(key, KeyUsageType.ENCAPSULATE_DECAPSULATE, "Decapsulate")
    algorithm = EncapsulationAlgorithmSpec(req["EncapsulationAlgorithm"])
    handle = private_handle(rt, key)
    dry_run(req)
    secret = kem.decapsulate(handle, req["SharedSecretCiphertextBlob"], algorithm)
    rt.note_usage(key, ctx)
    return {"KeyId": key.arn, "SharedSecret": secret, "EncapsulationAlgorithm": algorithm.value}
