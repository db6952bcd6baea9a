"""Custom key stores: CreateCustomKeyStore, DescribeCustomKeyStores, UpdateCustomKeyStore,
ConnectCustomKeyStore, DisconnectCustomKeyStore, DeleteCustomKeyStore; and the keys in them.

A store is a ``kms-custom-key-store`` document (scope: the account id) holding its settings,
its ConnectionState and its secret (the CloudHSM KeyStorePassword, or the XKS proxy's secret
access key) wrapped by the root of trust. Connecting is synchronous here (AWS's CONNECTING is
over by the time ConnectCustomKeyStore answers): the store is CONNECTED, or FAILED with AWS's
ConnectionErrorCode. While a store is not connected its keys are ``Unavailable`` (their own
Enabled/Disabled state is kept in the key record's ``extra`` and comes back on connecting).

Keys (docs/custom-key-stores.md has the details):

- AWS_CLOUDHSM: an AES-256 key generated in the store's PKCS#11 token, never leaving it. The
  ciphertext blob has the usual format; its AES-GCM is computed by the token.
- EXTERNAL_KEY_STORE: double encryption, as AWS does it: AES-GCM under KMS key material first
  (wrapped by the root of trust as usual), then the external key through the XKS proxy. The
  blob's sealed part is ``len(xks_iv) | xks_iv | xks_tag | xks_ciphertext``; decrypting needs
  the proxy.
"""

from __future__ import annotations

import base64
import contextvars
import dataclasses
import hashlib
import os
import secrets
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from openkms.config import ClusterConfig
from openkms.crypto.aead import IV_LEN, TAG_LEN
from openkms.crypto.encryption_context import canonical_context
from openkms.domain import ciphertext
from openkms.domain.key import KeyRecord
from openkms.errors import (
    CloudHsmClusterInUseException,
    CloudHsmClusterNotFoundException,
    CloudHsmClusterNotRelatedException,
    CustomKeyStoreHasCMKsException,
    CustomKeyStoreInvalidStateException,
    CustomKeyStoreNameInUseException,
    CustomKeyStoreNotFoundException,
    DependencyTimeoutException,
    IncorrectTrustAnchorException,
    KeyUnavailableException,
    KMSInternalException,
    KMSInvalidStateException,
    LimitExceededException,
    OpenKMSError,
    UnsupportedOperationException,
    ValidationException,
    XksKeyAlreadyInUseException,
    XksKeyInvalidConfigurationException,
    XksKeyNotFoundException,
    XksProxyIncorrectAuthenticationCredentialException,
    XksProxyInvalidConfigurationException,
    XksProxyInvalidResponseException,
    XksProxyUriInUseException,
    XksProxyUriUnreachableException,
    invalid_ciphertext,
)
from openkms.keystores import StoreConnectionError, keystore_settings
from openkms.rootoftrust.aad import CUSTOM_KEY_STORE_KIND, custom_key_store_secret_aad
from openkms.rootoftrust.base import RootOfTrustError
from openkms.service.common import decode_marker, page
from openkms.service.context import RequestContext
from openkms.service.runtime import Runtime
from openkms.storage.base import StorageConflict
from openkms.types import KeySpec, KeyState, KeyUsageType, OriginType

KIND = CUSTOM_KEY_STORE_KIND
AWS_CLOUDHSM = "AWS_CLOUDHSM"
EXTERNAL_KEY_STORE = "EXTERNAL_KEY_STORE"
PUBLIC_ENDPOINT = "PUBLIC_ENDPOINT"
CONNECTED = "CONNECTED"
DISCONNECTED = "DISCONNECTED"
FAILED = "FAILED"
DISCONNECTING = "DISCONNECTING"
MAX_STORES = 10  # per account and Region
_SAVED_STATE = "state_when_available"

CURRENT_REQUEST: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "openkms_current_request", default=None
)

Handler = Callable[[Runtime, RequestContext, dict[str, Any]], dict[str, Any]]


def with_request(handler: Handler) -> Handler:
    """Makes the request context visible to the key stores (XKS requestMetadata)."""

    def wrapped(rt: Runtime, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
        token = CURRENT_REQUEST.set(ctx)
        try:
            return handler(rt, ctx, req)
        finally:
            CURRENT_REQUEST.reset(token)

    wrapped.__name__ = getattr(handler, "__name__", "handler")
    wrapped.__doc__ = handler.__doc__
    return wrapped


# --- the store record ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class StoreRecord:
    store_id: str
    account_id: str
    region: str
    name: str
    store_type: str
    created_at: float
    state: str = DISCONNECTED
    error_code: str | None = None
    cluster_id: str | None = None
    trust_anchor: str | None = None
    wrapped_password: str | None = None  # base64, wrapped by the root of trust
    xks_endpoint: str | None = None
    xks_path: str | None = None
    xks_connectivity: str | None = None
    xks_access_key_id: str | None = None
    wrapped_xks_secret: str | None = None  # base64, wrapped by the root of trust

    def __repr__(self) -> str:
        return f"StoreRecord(id={self.store_id!r}, type={self.store_type}, state={self.state})"

    def to_json(self) -> str:
        return orjson.dumps(dataclasses.asdict(self)).decode()

    @classmethod
    def from_json(cls, text: str) -> StoreRecord:
        doc = orjson.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in doc.items() if k in known})

    def with_changes(self, **changes: Any) -> StoreRecord:
        return dataclasses.replace(self, **changes)


def _wrap(rt: Runtime, account: str, store_id: str, what: str, secret: str) -> str:
    wrapped = rt.root.wrap(secret.encode(), custom_key_store_secret_aad(account, store_id, what))
    return base64.b64encode(wrapped).decode("ascii")


def _unwrap(rt: Runtime, store: StoreRecord, what: str, wrapped: str | None) -> str:
    if wrapped is None:
        raise KMSInternalException("The custom key store has no stored credential.")
    try:
        return rt.root.unwrap(
            base64.b64decode(wrapped),
            custom_key_store_secret_aad(store.account_id, store.store_id, what),
        ).decode()
    except (RootOfTrustError, ValueError) as exc:
        raise KMSInternalException(
            "The custom key store's credential could not be unwrapped."
        ) from exc


def new_store_id() -> str:
    return "cks-" + secrets.token_hex(9)[:17]


def _save(rt: Runtime, store: StoreRecord, *, create: bool = False) -> None:
    rt.storage.put_document(
        KIND, store.account_id, store.store_id, store.to_json(), rt.clock.now(), create_only=create
    )


def _all_stores(rt: Runtime, account: str, region: str) -> list[StoreRecord]:
    out: list[StoreRecord] = []
    after: str | None = None
    while True:
        batch = rt.storage.list_documents(KIND, account, after=after, limit=500)
        for _name, doc in batch:
            store = StoreRecord.from_json(doc)
            if store.region == region:
                out.append(store)
        if len(batch) < 500:
            return out
        after = batch[-1][0]


def get_store(rt: Runtime, account: str, region: str, store_id: str) -> StoreRecord:
    text = rt.storage.get_document(KIND, account, store_id)
    store = None if text is None else StoreRecord.from_json(text)
    if store is None or store.region != region:
        raise CustomKeyStoreNotFoundException(
            f"Custom key store with ID {store_id} does not exist in this account and Region."
        )
    return store


def _keys_in_store(rt: Runtime, store: StoreRecord) -> Iterator[KeyRecord]:
    after: str | None = None
    while True:
        batch = rt.storage.list_keys(store.account_id, store.region, after, 500)
        for key in batch:
            if key.custom_key_store_id == store.store_id:
                yield key
        if len(batch) < 500:
            return
        after = batch[-1].key_id


def _set_keys_available(rt: Runtime, store: StoreRecord, available: bool) -> None:
    """Inside a transaction: the store's keys become Unavailable, or get their state back."""
    for key in list(_keys_in_store(rt, store)):
        if available and key.state == KeyState.UNAVAILABLE.value:
            extra = dict(key.extra)
            state = extra.pop(_SAVED_STATE, KeyState.ENABLED.value)
            rt.storage.update_key(key.with_changes(state=state, extra=extra))
        elif not available and key.state in (KeyState.ENABLED.value, KeyState.DISABLED.value):
            extra = {**key.extra, _SAVED_STATE: key.state}
            rt.storage.update_key(key.with_changes(state=KeyState.UNAVAILABLE.value, extra=extra))
        else:
            continue
        rt.forget_key(key.arn)


# --- back ends -----------------------------------------------------------------------------------
_HSM_STORES: dict[tuple[str, str], tuple[str, Any]] = {}


def _cluster(rt: Runtime, cluster_id: str) -> ClusterConfig:
    cluster = keystore_settings(rt).clusters.get(cluster_id)
    if cluster is None:
        raise CloudHsmClusterNotFoundException(
            f"CloudHSM cluster {cluster_id} is not configured on this openkms server "
            "(custom_key_store_clusters)."
        )
    return cluster


def _hsm(rt: Runtime, store: StoreRecord) -> Any:
    """The CloudHsmStore of a store (one per process, rebuilt when its password changes)."""
    from openkms.keystores.cloudhsm import CloudHsmStore

    ident = (store.account_id, store.store_id)
    cached = _HSM_STORES.get(ident)
    if cached is not None and cached[0] == store.wrapped_password:
        return cached[1]
    assert store.cluster_id is not None
    try:
        cluster = _cluster(rt, store.cluster_id)
    except CloudHsmClusterNotFoundException as exc:
        raise StoreConnectionError("CLUSTER_NOT_FOUND", exc.message) from None
    pin = _unwrap(rt, store, "password", store.wrapped_password)
    hsm = CloudHsmStore(cluster, pin)
    _HSM_STORES[ident] = (store.wrapped_password or "", hsm)
    return hsm


def _xks(rt: Runtime, store: StoreRecord, secret: str | None = None) -> Any:
    from openkms.keystores.xks import XksClient

    settings = keystore_settings(rt)
    assert store.xks_endpoint and store.xks_path and store.xks_access_key_id
    if secret is None:
        secret = _unwrap(rt, store, "xks-secret", store.wrapped_xks_secret)
    return XksClient(
        uri_endpoint=store.xks_endpoint,
        uri_path=store.xks_path,
        access_key_id=store.xks_access_key_id,
        secret_access_key=secret,
        region=store.region,
        ca_file=settings.xks_ca_file,
        timeout=settings.xks_timeout_seconds,
    )


def _xks_setup_error(exc: Exception) -> OpenKMSError:
    """A proxy failure while creating or updating a store, as AWS names it."""
    from openkms.keystores.xks import XksError

    if isinstance(exc, XksError):
        if exc.name in ("AuthenticationFailedException", "AccessDeniedException"):
            return XksProxyIncorrectAuthenticationCredentialException(
                "The external key store proxy rejected KMS's authentication credential."
            )
        if exc.name == "InvalidUriPathException":
            return XksProxyInvalidConfigurationException(
                "The external key store proxy does not serve the XksProxyUriPath given."
            )
        return XksProxyInvalidResponseException(
            f"The external key store proxy answered {exc.name}."
        )
    if isinstance(exc, StoreConnectionError):
        if exc.code == "XKS_PROXY_INVALID_RESPONSE":
            return XksProxyInvalidResponseException(exc.message)
        return XksProxyUriUnreachableException(
            f"KMS cannot reach the external key store proxy: {exc.message}"
        )
    raise exc


def _check_xks_health(rt: Runtime, ctx: RequestContext, store: StoreRecord, secret: str) -> None:
    from openkms.keystores.xks import XksError

    try:
        _xks(rt, store, secret).health(ctx.operation or "CreateCustomKeyStore", ctx.request_id)
    except (XksError, StoreConnectionError) as exc:
        raise _xks_setup_error(exc) from None


def _connect(rt: Runtime, ctx: RequestContext, store: StoreRecord) -> tuple[str, str | None]:
    """(ConnectionState, ConnectionErrorCode) after trying to connect."""
    from openkms.keystores.xks import XksError

    try:
        if store.store_type == AWS_CLOUDHSM:
            _hsm(rt, store).connect()
        else:
            _xks(rt, store).health("ConnectCustomKeyStore", ctx.request_id)
    except StoreConnectionError as exc:
        return FAILED, exc.code
    except XksError as exc:
        if exc.name == "AccessDeniedException":
            return FAILED, "XKS_PROXY_ACCESS_DENIED"
        if exc.name == "AuthenticationFailedException":
            return FAILED, "INVALID_CREDENTIALS"
        if exc.name == "InvalidUriPathException":
            return FAILED, "XKS_PROXY_INVALID_CONFIGURATION"
        return FAILED, "XKS_PROXY_INVALID_RESPONSE"
    return CONNECTED, None


# --- the six operations --------------------------------------------------------------------------
def _entry(store: StoreRecord) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "CustomKeyStoreId": store.store_id,
        "CustomKeyStoreName": store.name,
        "CustomKeyStoreType": store.store_type,
        "ConnectionState": store.state,
        "CreationDate": store.created_at,
    }
    if store.state == FAILED and store.error_code:
        entry["ConnectionErrorCode"] = store.error_code
    if store.store_type == AWS_CLOUDHSM:
        entry["CloudHsmClusterId"] = store.cluster_id
        if store.trust_anchor:
            entry["TrustAnchorCertificate"] = store.trust_anchor
    else:
        entry["XksProxyConfiguration"] = {
            "Connectivity": store.xks_connectivity,
            "AccessKeyId": store.xks_access_key_id,
            "UriEndpoint": store.xks_endpoint,
            "UriPath": store.xks_path,
        }
    return entry


_CLOUDHSM_FIELDS = ("CloudHsmClusterId", "TrustAnchorCertificate", "KeyStorePassword")
_XKS_FIELDS = (
    "XksProxyUriEndpoint",
    "XksProxyUriPath",
    "XksProxyVpcEndpointServiceName",
    "XksProxyVpcEndpointServiceOwner",
    "XksProxyAuthenticationCredential",
    "XksProxyConnectivity",
)


def _refuse_fields(req: Mapping[str, Any], names: tuple[str, ...], store_type: str) -> None:
    for name in names:
        if req.get(name) is not None:
            raise ValidationException(
                f"{name} is not valid for a custom key store of type {store_type}."
            )


def _require(req: Mapping[str, Any], names: tuple[str, ...], store_type: str) -> None:
    for name in names:
        if not req.get(name):
            raise ValidationException(
                f"{name} is required for a custom key store of type {store_type}."
            )


def _check_connectivity(req: Mapping[str, Any]) -> None:
    connectivity = req.get("XksProxyConnectivity")
    if connectivity not in (None, PUBLIC_ENDPOINT) or req.get("XksProxyVpcEndpointServiceName"):
        raise UnsupportedOperationException(
            "XksProxyConnectivity VPC_ENDPOINT_SERVICE is not supported by openkms: external key "
            "store proxies are reached at a public (HTTPS) endpoint only."
        )


def _check_trust_anchor(cluster: ClusterConfig, anchor: str | None) -> None:
    if cluster.trust_anchor_certificate is None or anchor is None:
        return
    if "".join(anchor.split()) != "".join(cluster.trust_anchor_certificate.split()):
        raise IncorrectTrustAnchorException(
            f"The TrustAnchorCertificate is not the trust anchor certificate of cluster "
            f"{cluster.cluster_id}."
        )


def _name_in_use(name: str) -> CustomKeyStoreNameInUseException:
    return CustomKeyStoreNameInUseException(
        f"A custom key store with name {name} already exists in this account and Region."
    )


def create_custom_key_store(
    rt: Runtime, ctx: RequestContext, req: dict[str, Any]
) -> dict[str, Any]:
    rt.access.authorize_account(ctx, "kms:CreateCustomKeyStore", "*", req)
    account, region = ctx.principal.account_id, ctx.region
    store_type = req.get("CustomKeyStoreType") or AWS_CLOUDHSM
    name = req["CustomKeyStoreName"]
    store_id = new_store_id()
    store = StoreRecord(store_id, account, region, name, store_type, ctx.now)
    existing = _all_stores(rt, account, region)
    if any(s.name == name for s in existing):
        raise _name_in_use(name)
    if len(existing) >= MAX_STORES:
        raise LimitExceededException(
            f"An account can have at most {MAX_STORES} custom key stores in each Region."
        )
    if store_type == AWS_CLOUDHSM:
        _refuse_fields(req, _XKS_FIELDS, store_type)
        _require(req, _CLOUDHSM_FIELDS, store_type)
        cluster = _cluster(rt, req["CloudHsmClusterId"])
        if any(s.cluster_id == cluster.cluster_id for s in existing):
            raise CloudHsmClusterInUseException(
                f"CloudHSM cluster {cluster.cluster_id} is already associated with a custom key "
                "store."
            )
        _check_trust_anchor(cluster, req["TrustAnchorCertificate"])
        store = store.with_changes(
            cluster_id=cluster.cluster_id,
            trust_anchor=req["TrustAnchorCertificate"],
            wrapped_password=_wrap(rt, account, store_id, "password", req["KeyStorePassword"]),
        )
    else:
        _refuse_fields(req, _CLOUDHSM_FIELDS, store_type)
        _check_connectivity(req)
        _require(
            req,
            ("XksProxyUriEndpoint", "XksProxyUriPath", "XksProxyAuthenticationCredential"),
            store_type,
        )
        endpoint, path = req["XksProxyUriEndpoint"], req["XksProxyUriPath"]
        if any(s.xks_endpoint == endpoint and s.xks_path == path for s in existing):
            raise XksProxyUriInUseException(
                f"The XksProxyUriEndpoint {endpoint} with XksProxyUriPath {path} is already "
                "used by another external key store in this account and Region."
            )
        credential = req["XksProxyAuthenticationCredential"]
        secret = credential["RawSecretAccessKey"]
        store = store.with_changes(
            xks_endpoint=endpoint,
            xks_path=path,
            xks_connectivity=PUBLIC_ENDPOINT,
            xks_access_key_id=credential["AccessKeyId"],
            wrapped_xks_secret=_wrap(rt, account, store_id, "xks-secret", secret),
        )
        _check_xks_health(rt, ctx, store, secret)
    try:
        _save(rt, store, create=True)
    except StorageConflict:
        raise KMSInternalException("Custom key store id collision; retry.") from None
    return {"CustomKeyStoreId": store_id}


def describe_custom_key_stores(
    rt: Runtime, ctx: RequestContext, req: dict[str, Any]
) -> dict[str, Any]:
    rt.access.authorize_account(ctx, "kms:DescribeCustomKeyStores", "*", req)
    account, region = ctx.principal.account_id, ctx.region
    store_id, name = req.get("CustomKeyStoreId"), req.get("CustomKeyStoreName")
    if store_id is not None:
        stores = [get_store(rt, account, region, store_id)]
        if name is not None and stores[0].name != name:
            raise CustomKeyStoreNotFoundException(
                f"Custom key store with ID {store_id} and name {name} does not exist."
            )
    else:
        stores = sorted(_all_stores(rt, account, region), key=lambda s: s.store_id)
        if name is not None:
            stores = [s for s in stores if s.name == name]
            if not stores:
                raise CustomKeyStoreNotFoundException(
                    f"Custom key store with name {name} does not exist in this account and Region."
                )
    limit = req.get("Limit") or 1000
    after = decode_marker(req.get("Marker"))
    if after is not None:
        stores = [s for s in stores if s.store_id > after]
    result: dict[str, Any] = {"CustomKeyStores": [_entry(s) for s in stores[:limit]]}
    result.update(page(stores[: limit + 1], limit, lambda s: s.store_id))
    return result


def update_custom_key_store(
    rt: Runtime, ctx: RequestContext, req: dict[str, Any]
) -> dict[str, Any]:
    rt.access.authorize_account(ctx, "kms:UpdateCustomKeyStore", "*", req)
    account, region = ctx.principal.account_id, ctx.region
    store = get_store(rt, account, region, req["CustomKeyStoreId"])
    new_name = req.get("NewCustomKeyStoreName")
    if new_name is not None and new_name != store.name:
        if any(s.name == new_name for s in _all_stores(rt, account, region)):
            raise _name_in_use(new_name)
        store = store.with_changes(name=new_name)
    not_disconnected = CustomKeyStoreInvalidStateException(
        f"Custom key store {store.store_id} must be disconnected to update these properties "
        f"(its connection state is {store.state})."
    )
    if store.store_type == AWS_CLOUDHSM:
        _refuse_fields(req, _XKS_FIELDS, store.store_type)
        changes_cluster = any(req.get(n) is not None for n in _CLOUDHSM_FIELDS)
        if store.state != DISCONNECTED and (changes_cluster or new_name is not None):
            raise not_disconnected
        if req.get("CloudHsmClusterId"):
            cluster = _cluster(rt, req["CloudHsmClusterId"])
            assert store.cluster_id is not None
            old = keystore_settings(rt).clusters.get(store.cluster_id)
            if old is not None and (old.module, old.token_label) != (
                cluster.module,
                cluster.token_label,
            ):
                raise CloudHsmClusterNotRelatedException(
                    f"CloudHSM cluster {cluster.cluster_id} is not related to the custom key "
                    f"store's cluster {store.cluster_id} (it is not the same token)."
                )
            store = store.with_changes(cluster_id=cluster.cluster_id)
        if req.get("KeyStorePassword"):
            store = store.with_changes(
                wrapped_password=_wrap(
                    rt, account, store.store_id, "password", req["KeyStorePassword"]
                )
            )
    else:
        _refuse_fields(req, _CLOUDHSM_FIELDS, store.store_type)
        _check_connectivity(req)
        endpoint = req.get("XksProxyUriEndpoint")
        if (
            endpoint is not None or req.get("XksProxyConnectivity") is not None
        ) and store.state != DISCONNECTED:
            raise not_disconnected
        path = req.get("XksProxyUriPath")
        new_endpoint, new_path = endpoint or store.xks_endpoint, path or store.xks_path
        if (new_endpoint, new_path) != (store.xks_endpoint, store.xks_path):
            others = [s for s in _all_stores(rt, account, region) if s.store_id != store.store_id]
            if any(s.xks_endpoint == new_endpoint and s.xks_path == new_path for s in others):
                raise XksProxyUriInUseException(
                    f"The XksProxyUriEndpoint {new_endpoint} with XksProxyUriPath {new_path} is "
                    "already used by another external key store in this account and Region."
                )
        store = store.with_changes(xks_endpoint=new_endpoint, xks_path=new_path)
        credential = req.get("XksProxyAuthenticationCredential")
        secret = None
        if credential is not None:
            secret = credential["RawSecretAccessKey"]
            store = store.with_changes(
                xks_access_key_id=credential["AccessKeyId"],
                wrapped_xks_secret=_wrap(rt, account, store.store_id, "xks-secret", secret),
            )
        if store.state == CONNECTED and (credential is not None or path is not None):
            if secret is None:
                secret = _unwrap(rt, store, "xks-secret", store.wrapped_xks_secret)
            _check_xks_health(rt, ctx, store, secret)
    _save(rt, store)
    return {}


def connect_custom_key_store(
    rt: Runtime, ctx: RequestContext, req: dict[str, Any]
) -> dict[str, Any]:
    rt.access.authorize_account(ctx, "kms:ConnectCustomKeyStore", "*", req)
    account, region = ctx.principal.account_id, ctx.region
    store = get_store(rt, account, region, req["CustomKeyStoreId"])
    if store.state in (DISCONNECTING, FAILED):
        raise CustomKeyStoreInvalidStateException(
            f"Custom key store {store.store_id} is {store.state}; disconnect it before "
            "connecting it again."
        )
    if store.state == CONNECTED:
        return {}
    state, code = _connect(rt, ctx, store)
    with rt.storage.transaction():
        fresh = get_store(rt, account, region, store.store_id)
        _save(rt, fresh.with_changes(state=state, error_code=code))
        if state == CONNECTED:
            _set_keys_available(rt, fresh, True)
    return {}


def disconnect_custom_key_store(
    rt: Runtime, ctx: RequestContext, req: dict[str, Any]
) -> dict[str, Any]:
    rt.access.authorize_account(ctx, "kms:DisconnectCustomKeyStore", "*", req)
    account, region = ctx.principal.account_id, ctx.region
    with rt.storage.transaction():
        store = get_store(rt, account, region, req["CustomKeyStoreId"])
        if store.state in (DISCONNECTED, DISCONNECTING):
            raise CustomKeyStoreInvalidStateException(
                f"Custom key store {store.store_id} is already {store.state}."
            )
        _save(rt, store.with_changes(state=DISCONNECTED, error_code=None))
        _set_keys_available(rt, store, False)
    _HSM_STORES.pop((account, store.store_id), None)
    return {}


def delete_custom_key_store(
    rt: Runtime, ctx: RequestContext, req: dict[str, Any]
) -> dict[str, Any]:
    rt.access.authorize_account(ctx, "kms:DeleteCustomKeyStore", "*", req)
    account, region = ctx.principal.account_id, ctx.region
    with rt.storage.transaction():
        store = get_store(rt, account, region, req["CustomKeyStoreId"])
        if store.state != DISCONNECTED:
            raise CustomKeyStoreInvalidStateException(
                f"Custom key store {store.store_id} must be disconnected before it is deleted "
                f"(its connection state is {store.state})."
            )
        if next(_keys_in_store(rt, store), None) is not None:
            raise CustomKeyStoreHasCMKsException(
                f"Custom key store {store.store_id} still holds KMS keys; delete them first."
            )
        rt.storage.delete_document(KIND, account, store.store_id)
    _HSM_STORES.pop((account, store.store_id), None)
    return {}


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
            _hsm(rt, store).generate_key(label)
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
    for key in _keys_in_store(rt, store):
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
        meta = _xks(rt, store).key_metadata(
            xks_key_id, "CreateKey", ctx.request_id, ctx.principal.arn, arn
        )
    except XksError as exc:
        if exc.name == "KeyNotFoundException":
            raise XksKeyNotFoundException(
                f"The external key store proxy found no external key {xks_key_id}."
            ) from None
        raise _xks_setup_error(exc) from None
    except StoreConnectionError as exc:
        raise _xks_setup_error(exc) from None
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
            sealed = _hsm(rt, store).encrypt(key.extra["hsm_key_label"], plaintext, iv, aad)
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
        outer = _xks(rt, store).encrypt(key.extra["xks_key_id"], inner, _xks_aad(aad), **meta)
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
            plaintext: bytes = _hsm(rt, store).decrypt(
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
        inner = _xks(rt, store).decrypt(key.extra["xks_key_id"], outer, _xks_aad(aad), **meta)
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
        out: bytes = _hsm(rt, store).random(count)
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
            _hsm(rt, store).delete_key(label)
    except Exception:  # noqa: S110 - best effort, the key record is gone already
        pass
