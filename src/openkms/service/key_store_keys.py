"""The keys in custom key stores (docs/custom-key-stores.md has the details): CreateKey's
preparation of one, encrypting and decrypting through its store, GenerateRandom from a CloudHSM
token, and removing a purged key's token key.

- AWS_CLOUDHSM: an AES-256 key generated in the store's PKCS#11 token, never leaving it. The
  ciphertext blob has the usual format; its AES-GCM is computed by the token.
- EXTERNAL_KEY_STORE: double encryption, as AWS does it: AES-GCM under KMS key material first
  (wrapped by the root of trust as usual), then the external key through the XKS proxy. The
  blob's sealed part is ``len(xks_iv) | xks_iv | xks_tag | xks_ciphertext``; decrypting needs
  the proxy.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from openkms.crypto.aead import IV_LEN, TAG_LEN
from openkms.crypto.encryption_context import canonical_context
from openkms.domain import ciphertext
from openkms.domain.key import KeyRecord
from openkms.errors import (
    CustomKeyStoreInvalidStateException,
    DependencyTimeoutException,
    KeyUnavailableException,
    KMSInternalException,
    KMSInvalidStateException,
    OpenKMSError,
    UnsupportedOperationException,
    ValidationException,
    XksKeyAlreadyInUseException,
    XksKeyInvalidConfigurationException,
    XksKeyNotFoundException,
    invalid_ciphertext,
)
from openkms.keystores import StoreConnectionError
from openkms.service.context import RequestContext
from openkms.service.key_store_backends import (
    CURRENT_REQUEST,
    hsm_session,
    xks_client,
    xks_setup_error,
)
from openkms.service.key_store_records import (
    AWS_CLOUDHSM,
    CONNECTED,
    EXTERNAL_KEY_STORE,
    StoreRecord,
    get_store,
    keys_in_store,
)
from openkms.service.runtime import Runtime
from openkms.types import KeySpec, KeyUsageType, OriginType


# --- keys in a store -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class StoreKeyPlan:
    """What CreateKey records for a key in a custom key store."""

    store_id: str
    extra: dict[str, Any]
    needs_material: bool  # XKS keys also have KMS key material (double encryption)


def _store_for_new_key(
    rt: Runtime, ctx: RequestContext, store_id: str, store_type: str
) -> StoreRecord:
    store = get_store(rt, ctx.principal.account_id, ctx.region, store_id)
    if store.store_type != store_type:
        raise UnsupportedOperationException(
            f"Custom key store {store_id} is of type {store.store_type}; keys in it must have "
            f"Origin {store.store_type}."
        )
    if store.state != CONNECTED:
        raise CustomKeyStoreInvalidStateException(
            f"Custom key store {store_id} is not connected (its connection state is {store.state})."
        )
    return store


def plan_store_key(
    rt: Runtime,
    ctx: RequestContext,
    req: Mapping[str, Any],
    *,
    origin: str,
    spec: str,
    usage: str,
    key_id: str,
    arn: str,
) -> StoreKeyPlan | None:
    """Validates CreateKey's custom key store members and prepares the key in its store (the
    token key is generated, the external key checked). None for an ordinary key."""
    store_id = req.get("CustomKeyStoreId")
    xks_key_id = req.get("XksKeyId")
    in_store = origin in (OriginType.AWS_CLOUDHSM.value, OriginType.EXTERNAL_KEY_STORE.value)
    if xks_key_id is not None and origin != OriginType.EXTERNAL_KEY_STORE.value:
        raise ValidationException("XksKeyId is valid only with Origin EXTERNAL_KEY_STORE.")
    if not in_store:
        if store_id is not None:
            raise UnsupportedOperationException(
                "CustomKeyStoreId needs Origin AWS_CLOUDHSM or EXTERNAL_KEY_STORE."
            )
        return None
    if not store_id:
        raise ValidationException(f"CustomKeyStoreId is required with Origin {origin}.")
    if spec != KeySpec.SYMMETRIC_DEFAULT.value or usage != KeyUsageType.ENCRYPT_DECRYPT.value:
        raise UnsupportedOperationException(
            "Keys in a custom key store must be symmetric encryption keys (KeySpec "
            "SYMMETRIC_DEFAULT, KeyUsage ENCRYPT_DECRYPT)."
        )
    if req.get("MultiRegion"):
        raise UnsupportedOperationException("Keys in a custom key store cannot be multi-Region.")
    if origin == OriginType.AWS_CLOUDHSM.value:
        store = _store_for_new_key(rt, ctx, store_id, AWS_CLOUDHSM)
        label = f"openkms-{key_id}"
        try:
            hsm_session(rt, store).generate_key(label)
        except StoreConnectionError as exc:
            raise CustomKeyStoreInvalidStateException(exc.message) from None
        except Exception as exc:
            if type(exc).__name__ == "HsmUnavailable":
                raise KMSInternalException(
                    "The custom key store's token could not create the key."
                ) from None
            raise
        return StoreKeyPlan(
            store_id, {"hsm_key_label": label, "cloudhsm_cluster_id": store.cluster_id}, False
        )
    if not xks_key_id:
        raise ValidationException("XksKeyId is required with Origin EXTERNAL_KEY_STORE.")
    store = _store_for_new_key(rt, ctx, store_id, EXTERNAL_KEY_STORE)
    for key in keys_in_store(rt, store):
        if key.extra.get("xks_key_id") == xks_key_id:
            raise XksKeyAlreadyInUseException(
                f"The external key {xks_key_id} is already associated with KMS key {key.arn}."
            )
    _check_external_key(rt, ctx, store, xks_key_id, arn)
    return StoreKeyPlan(store_id, {"xks_key_id": xks_key_id}, True)


def _check_external_key(
    rt: Runtime, ctx: RequestContext, store: StoreRecord, xks_key_id: str, arn: str
) -> None:
    from openkms.keystores.xks import XksError

    try:
        meta = xks_client(rt, store).key_metadata(
            xks_key_id, "CreateKey", ctx.request_id, ctx.principal.arn, arn
        )
    except XksError as exc:
        if exc.name == "KeyNotFoundException":
            raise XksKeyNotFoundException(
                f"The external key store proxy found no external key {xks_key_id}."
            ) from None
        raise xks_setup_error(exc) from None
    except StoreConnectionError as exc:
        raise xks_setup_error(exc) from None
    usage = meta.get("keyUsage") or []
    if (
        meta.get("keySpec") != "AES_256"
        or not isinstance(usage, list)
        or "ENCRYPT" not in usage
        or "DECRYPT" not in usage
        or meta.get("keyStatus") != "ENABLED"
    ):
        raise XksKeyInvalidConfigurationException(
            f"The external key {xks_key_id} must be an enabled AES_256 key that can ENCRYPT and "
            "DECRYPT."
        )


def _key_store(rt: Runtime, key: KeyRecord) -> StoreRecord:
    assert key.custom_key_store_id is not None
    store = get_store(rt, key.account_id, key.region, key.custom_key_store_id)
    if store.state != CONNECTED:
        raise KMSInvalidStateException(f"{key.arn} is unavailable.")
    return store


def _request_meta(key: KeyRecord, operation: str) -> dict[str, str]:
    ctx = CURRENT_REQUEST.get()
    if ctx is None:
        return {
            "operation": operation,
            "request_id": os.urandom(16).hex(),
            "principal": f"arn:aws:iam::{key.account_id}:root",
            "key_arn": key.arn,
        }
    return {
        "operation": ctx.operation or operation,
        "request_id": ctx.request_id,
        "principal": ctx.principal.arn,
        "key_arn": key.arn,
    }


def _xks_crypto_error(exc: Exception, key: KeyRecord) -> OpenKMSError:
    from openkms.keystores.xks import XksError

    if isinstance(exc, XksError):
        if exc.name in ("InvalidCiphertextException", "AuthenticationTagMismatch"):
            return invalid_ciphertext()
        return KMSInvalidStateException(
            f"{key.arn}: the external key store proxy refused the request ({exc.name})."
        )
    if isinstance(exc, StoreConnectionError) and exc.code == "XKS_PROXY_TIMED_OUT":
        return DependencyTimeoutException("The external key store proxy did not answer in time.")
    message = exc.message if isinstance(exc, StoreConnectionError) else str(exc)
    return KMSInvalidStateException(f"{key.arn}: the external key store proxy failed: {message}")


def _xks_aad(aad: bytes) -> bytes:
    return hashlib.sha256(b"openkms:xks:v1:" + aad).digest()


def seal_in_store(
    rt: Runtime, key: KeyRecord, header: bytes, plaintext: bytes, context: Mapping[str, str] | None
) -> bytes:
    """The ciphertext blob of a key in a custom key store."""
    from openkms.keystores.xks import XksError

    store = _key_store(rt, key)
    aad = header + canonical_context(context)
    if store.store_type == AWS_CLOUDHSM:
        iv = os.urandom(IV_LEN)
        try:
            sealed = hsm_session(rt, store).encrypt(key.extra["hsm_key_label"], plaintext, iv, aad)
        except Exception as exc:
            raise _hsm_error(exc, key) from None
        return ciphertext.encode(header, iv, sealed)
    material_id = key.current_material_id
    handle = None if material_id is None else rt.symmetric_key(key, material_id)
    if handle is None:
        raise KMSInternalException("The key has no current key material.")
    iv, inner = handle.seal(plaintext, aad)
    meta = _request_meta(key, "Encrypt")
    try:
        outer = xks_client(rt, store).encrypt(key.extra["xks_key_id"], inner, _xks_aad(aad), **meta)
    except (XksError, StoreConnectionError) as exc:
        raise _xks_crypto_error(exc, key) from None
    if not 1 <= len(outer.iv) <= 255 or len(outer.tag) != TAG_LEN:
        raise _xks_crypto_error(
            StoreConnectionError("XKS_PROXY_INVALID_RESPONSE", "bad IV or tag length"), key
        )
    sealed = bytes([len(outer.iv)]) + outer.iv + outer.tag + outer.ciphertext
    return ciphertext.encode(header, iv, sealed)


def _hsm_error(exc: Exception, key: KeyRecord) -> OpenKMSError:
    name = type(exc).__name__
    if name == "HsmDataError":
        return invalid_ciphertext()
    if name == "HsmUnavailable" or isinstance(exc, StoreConnectionError):
        return KeyUnavailableException(f"{key.arn} is unavailable: its token cannot be used now.")
    raise exc


def open_in_store(
    rt: Runtime,
    key: KeyRecord,
    parsed: ciphertext.CiphertextBlob,
    context: Mapping[str, str] | None,
) -> bytes:
    from openkms.keystores.xks import Encrypted, XksError

    store = _key_store(rt, key)
    if parsed.material_id != key.current_material_id and store.store_type == AWS_CLOUDHSM:
        raise invalid_ciphertext()
    aad = parsed.header + canonical_context(context)
    if store.store_type == AWS_CLOUDHSM:
        try:
            plaintext: bytes = hsm_session(rt, store).decrypt(
                key.extra["hsm_key_label"], parsed.sealed, parsed.iv, aad
            )
        except Exception as exc:
            raise _hsm_error(exc, key) from None
        return plaintext
    handle = rt.symmetric_key(key, parsed.material_id)
    if handle is None:
        raise invalid_ciphertext()
    sealed = parsed.sealed
    iv_len = sealed[0]
    if iv_len == 0 or len(sealed) < 1 + iv_len + TAG_LEN:
        raise invalid_ciphertext()
    outer = Encrypted(
        ciphertext=sealed[1 + iv_len + TAG_LEN :],
        iv=sealed[1 : 1 + iv_len],
        tag=sealed[1 + iv_len : 1 + iv_len + TAG_LEN],
    )
    meta = _request_meta(key, "Decrypt")
    try:
        inner = xks_client(rt, store).decrypt(key.extra["xks_key_id"], outer, _xks_aad(aad), **meta)
    except (XksError, StoreConnectionError) as exc:
        raise _xks_crypto_error(exc, key) from None
    return handle.open(parsed.iv, inner, aad)


def random_from_store(rt: Runtime, ctx: RequestContext, store_id: str, count: int) -> bytes:
    """GenerateRandom with CustomKeyStoreId: the CloudHSM store's token generates the bytes."""
    store = get_store(rt, ctx.principal.account_id, ctx.region, store_id)
    if store.store_type != AWS_CLOUDHSM:
        raise UnsupportedOperationException(
            "GenerateRandom with a CustomKeyStoreId needs an AWS_CLOUDHSM key store; external "
            "key stores do not generate random bytes."
        )
    if store.state != CONNECTED:
        raise CustomKeyStoreInvalidStateException(
            f"Custom key store {store_id} is not connected (its connection state is {store.state})."
        )
    try:
        out: bytes = hsm_session(rt, store).random(count)
    except StoreConnectionError as exc:
        raise CustomKeyStoreInvalidStateException(exc.message) from None
    except Exception as exc:
        if type(exc).__name__ == "HsmUnavailable":
            raise KMSInternalException("The custom key store's token is not available.") from None
        raise
    return out


def delete_store_key_material(rt: Runtime, key: KeyRecord) -> None:
    """After a key in a CloudHSM store is purged: its token key goes too (best effort; a store
    that is not connected keeps it, as an orphan the operator may remove)."""
    label = key.extra.get("hsm_key_label")
    if not label or key.custom_key_store_id is None:
        return
    try:
        store = get_store(rt, key.account_id, key.region, key.custom_key_store_id)
        if store.state == CONNECTED:
            hsm_session(rt, store).delete_key(label)
    except Exception:  # noqa: S110 - best effort, the key record is gone already
        pass
