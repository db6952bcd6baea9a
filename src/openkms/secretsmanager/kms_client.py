"""The in-process KMS client through which Secrets Manager encrypts and decrypts, acting on
behalf of the caller, as AWS's services do (forward access sessions).

Each call runs the KMS operation of the service layer (``protocol.operations``: the same
handler, authorization and key-state rules a direct call gets) with a request context derived
from the caller's: the same principal, so the caller's own identity policies, the key policy
and grants decide; ``via_service`` set, so ``kms:ViaService`` is
``secretsmanager.<region>.amazonaws.com`` and ``aws:ViaAWSService`` is true; no source IP. Each
call leaves its own KMS audit record (eventSource kms.amazonaws.com) whose userIdentity says
``invokedBy: secretsmanager.amazonaws.com`` and whose source is the service, as CloudTrail
shows it. Neither the data key nor the value ever enters a record.

KMS's answers are translated into Secrets Manager's: a refusal becomes AccessDeniedException
"Access to KMS is not allowed"; a KmsKeyId that names no key InvalidParameterException ("The
operation failed because of an invalid KMS key: ..."); a key that is disabled or pending
deletion (or gone, when reading) an EncryptionFailure or DecryptionFailure.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from openkms.audit import is_read_only
from openkms.audit.events import build_record, event_id
from openkms.context import RequestContext
from openkms.domain.key import require_usable_for_crypto
from openkms.errors import (
    AccessDeniedException,
    NotFoundException,
    OpenKMSError,
    invalid_ciphertext,
)
from openkms.protocol.operations import handler_for
from openkms.secretsmanager.deps import SecretsDeps
from openkms.secretsmanager.errors import (
    DecryptionFailure,
    EncryptionFailure,
    InvalidParameterException,
)
from openkms.service.key_store_backends import CURRENT_REQUEST
from openkms.service.symmetric import is_symmetric, key_for_blob, require_encrypt_decrypt

log = logging.getLogger("openkms.secretsmanager")

SERVICE_PRINCIPAL = "secretsmanager.amazonaws.com"
KMS_DENIED = "Access to KMS is not allowed"
ENCRYPT_FAILED = (
    "Secrets Manager can't encrypt the protected secret text using the provided KMS key. "
    "Check that the KMS key is available, enabled, and not in an invalid state. For more "
    "information, see Key states of KMS keys."
)
DECRYPT_FAILED = (
    "Secrets Manager can't decrypt the protected secret text using the provided KMS key. "
    "Check that the KMS key is available, enabled, and not in an invalid state. For more "
    "information, see Key states of KMS keys."
)


@dataclass(frozen=True, slots=True)
class DataKey:
    plaintext: bytes = field(repr=False)
    blob: bytes = field(repr=False)
    key_arn: str = ""


def via_service(region: str) -> str:
    return f"secretsmanager.{region}.amazonaws.com"


def _derived(ctx: RequestContext, operation: str) -> RequestContext:
    return RequestContext(
        principal=ctx.principal,
        region=ctx.region,
        request_id=event_id(),
        now=ctx.now,
        operation=operation,
        source_ip="",
        user_agent=SERVICE_PRINCIPAL,
        secure_transport=ctx.secure_transport,
        via_service=via_service(ctx.region),
    )


def _audit(
    deps: SecretsDeps,
    kctx: RequestContext,
    params: dict[str, Any],
    error: OpenKMSError | None,
) -> None:
    if deps.audit is None:
        return
    record = build_record(
        ctx=kctx,
        operation=kctx.operation,
        request_params=params,
        response=None,
        error_code=None if error is None else error.code,
        error_message=None if error is None else error.message,
        request_id=kctx.request_id,
        event_time=kctx.now,
        region=kctx.region,
        source_ip=SERVICE_PRINCIPAL,
        user_agent=SERVICE_PRINCIPAL,
        read_only=is_read_only(kctx.operation),
        resources=kctx.resources,
        account_id=kctx.principal.account_id,
    )
    record["userIdentity"] = _invoked_by(record["userIdentity"])
    deps.audit(record)


# The caller's userIdentity with invokedBy, per userIdentity object (build_record shares one per
# principal and never changes it); bounded like build_record's own.
_INVOKED: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}
_INVOKED_LIMIT = 4096


def _invoked_by(identity: dict[str, Any]) -> dict[str, Any]:
    found = _INVOKED.get(id(identity))
    # The identity object itself is kept in the entry, so its id cannot be reused meanwhile.
    if found is not None and found[0] is identity:
        return found[1]
    invoked = {**identity, "invokedBy": SERVICE_PRINCIPAL}
    if len(_INVOKED) >= _INVOKED_LIMIT:
        _INVOKED.clear()
    _INVOKED[id(identity)] = (identity, invoked)
    return invoked


def _call(
    deps: SecretsDeps, ctx: RequestContext, operation: str, params: dict[str, Any], failure: str
) -> dict[str, Any]:
    kctx = _derived(ctx, operation)
    error: OpenKMSError | None = None
    token = CURRENT_REQUEST.set(kctx)  # the request the custom key stores' backends describe
    try:
        return handler_for(operation)(deps.runtime, kctx, params)
    except AccessDeniedException as denied:
        # One name per caught type: mypyc types an except variable once per function.
        error = denied
        raise AccessDeniedException(KMS_DENIED) from denied
    except OpenKMSError as failed:
        error = failed
        if failed.server_fault:
            raise
        if failure == "encrypt" and isinstance(failed, NotFoundException):
            # A KmsKeyId that names no key: AWS's wording around KMS's own message.
            raise InvalidParameterException(
                f"The operation failed because of an invalid KMS key: {failed.message}"
            ) from failed
        if failure == "encrypt":
            raise EncryptionFailure(ENCRYPT_FAILED) from failed
        raise DecryptionFailure(DECRYPT_FAILED) from failed
    finally:
        CURRENT_REQUEST.reset(token)
        _audit(deps, kctx, {k: v for k, v in params.items() if k != "CiphertextBlob"}, error)


def generate_data_key(
    deps: SecretsDeps, ctx: RequestContext, key_ref: str, context: dict[str, str]
) -> DataKey:
    result = _call(
        deps,
        ctx,
        "GenerateDataKey",
        {"KeyId": key_ref, "KeySpec": "AES_256", "EncryptionContext": context},
        "encrypt",
    )
    return DataKey(result["Plaintext"], result["CiphertextBlob"], str(result["KeyId"]))


def decrypt(
    deps: SecretsDeps, ctx: RequestContext, blob: bytes, context: dict[str, str]
) -> tuple[bytes, str]:
    """(data key, ARN of the key that decrypted it)."""
    result = _call(
        deps, ctx, "Decrypt", {"CiphertextBlob": blob, "EncryptionContext": context}, "decrypt"
    )
    return result["Plaintext"], str(result["KeyId"])


def describe_key(deps: SecretsDeps, ctx: RequestContext, key_ref: str) -> dict[str, Any]:
    """KeyMetadata of ``key_ref`` as the caller may see it (for re-encryption checks)."""
    result = _call(deps, ctx, "DescribeKey", {"KeyId": key_ref}, "encrypt")
    metadata: dict[str, Any] = result["KeyMetadata"]
    return metadata


def check_decrypt(
    deps: SecretsDeps, ctx: RequestContext, blob: bytes, context: dict[str, str]
) -> bool:
    """Decrypt's checks on the caller's behalf without opening the blob, for a value already
    decrypted in this process (``read_cache``): the key the blob names loaded, ``kms:Decrypt``
    authorized with the encryption context, its state and usage checked, the use noted and the
    KMS audit record written, exactly as a Decrypt leaves it. Raises as ``decrypt`` does.

    False (nothing checked, nothing recorded) for a key in a custom key store: its store
    decrypts, and may refuse, every time, so the caller must run ``decrypt``. The checks are
    those of ``service.encryption``'s Decrypt (``_check_source``) for a symmetric blob."""
    rt = deps.runtime
    kctx = _derived(ctx, "Decrypt")
    params: dict[str, Any] = {"CiphertextBlob": blob, "EncryptionContext": context}
    error: OpenKMSError | None = None
    try:
        key, _parsed = key_for_blob(rt, kctx, blob, None)
        if key.custom_key_store_id is not None:
            return False
        rt.access.authorize_key(kctx, "kms:Decrypt", key, params)
        require_usable_for_crypto(key)
        require_encrypt_decrypt(key, "Decrypt")
        if not is_symmetric(key):
            raise invalid_ciphertext()
        rt.note_usage(key, kctx)
        _audit(deps, kctx, {"EncryptionContext": context}, None)
        return True
    except AccessDeniedException as denied:
        error = denied
        raise AccessDeniedException(KMS_DENIED) from denied
    except OpenKMSError as failed:
        error = failed
        if failed.server_fault:
            raise
        raise DecryptionFailure(DECRYPT_FAILED) from failed
    finally:
        if error is not None:
            _audit(deps, kctx, {"EncryptionContext": context}, error)
