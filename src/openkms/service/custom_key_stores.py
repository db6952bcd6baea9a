"""Custom key stores: CreateCustomKeyStore, DescribeCustomKeyStores, UpdateCustomKeyStore,
ConnectCustomKeyStore, DisconnectCustomKeyStore, DeleteCustomKeyStore.

The store records are in ``service/key_store_records.py``, connecting to the back ends (CloudHSM
over PKCS#11, XKS proxies) in ``service/key_store_backends.py``, the keys in stores (CreateKey's
preparation, encrypt and decrypt through a store, GenerateRandom from a token) in
``service/key_store_keys.py`` (the names other modules imported from here still import).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openkms.config import ClusterConfig
from openkms.errors import (
    CloudHsmClusterInUseException,
    CloudHsmClusterNotRelatedException,
    CustomKeyStoreHasCMKsException,
    CustomKeyStoreInvalidStateException,
    CustomKeyStoreNameInUseException,
    CustomKeyStoreNotFoundException,
    IncorrectTrustAnchorException,
    KMSInternalException,
    LimitExceededException,
    UnsupportedOperationException,
    ValidationException,
    XksProxyUriInUseException,
)
from openkms.keystores import keystore_settings
from openkms.service.common import decode_marker, page
from openkms.service.context import RequestContext
from openkms.service.key_store_backends import (
    CURRENT_REQUEST,
    check_xks_health,
    cluster_config,
    connect,
    forget_connection,
)
from openkms.service.key_store_keys import (
    StoreKeyPlan,
    delete_store_key_material,
    open_in_store,
    plan_store_key,
    random_from_store,
    seal_in_store,
)
from openkms.service.key_store_records import (
    AWS_CLOUDHSM,
    CONNECTED,
    DISCONNECTED,
    DISCONNECTING,
    EXTERNAL_KEY_STORE,
    FAILED,
    KIND,
    MAX_STORES,
    PUBLIC_ENDPOINT,
    StoreRecord,
    all_stores,
    get_store,
    keys_in_store,
    new_store_id,
    save_store,
    set_keys_available,
    unwrap_secret,
    wrap_secret,
)
from openkms.service.runtime import Runtime
from openkms.storage.base import StorageConflict

__all__ = [
    "AWS_CLOUDHSM",
    "CONNECTED",
    "CURRENT_REQUEST",
    "DISCONNECTED",
    "EXTERNAL_KEY_STORE",
    "FAILED",
    "KIND",
    "StoreKeyPlan",
    "StoreRecord",
    "connect_custom_key_store",
    "create_custom_key_store",
    "delete_custom_key_store",
    "delete_store_key_material",
    "describe_custom_key_stores",
    "disconnect_custom_key_store",
    "get_store",
    "new_store_id",
    "open_in_store",
    "plan_store_key",
    "random_from_store",
    "seal_in_store",
    "update_custom_key_store",
]


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
    existing = all_stores(rt, account, region)
    if any(s.name == name for s in existing):
        raise _name_in_use(name)
    if len(existing) >= MAX_STORES:
        raise LimitExceededException(
            f"An account can have at most {MAX_STORES} custom key stores in each Region."
        )
    if store_type == AWS_CLOUDHSM:
        _refuse_fields(req, _XKS_FIELDS, store_type)
        _require(req, _CLOUDHSM_FIELDS, store_type)
        cluster = cluster_config(rt, req["CloudHsmClusterId"])
        if any(s.cluster_id == cluster.cluster_id for s in existing):
            raise CloudHsmClusterInUseException(
                f"CloudHSM cluster {cluster.cluster_id} is already associated with a custom key "
                "store."
            )
        _check_trust_anchor(cluster, req["TrustAnchorCertificate"])
        store = store.with_changes(
            cluster_id=cluster.cluster_id,
            trust_anchor=req["TrustAnchorCertificate"],
            wrapped_password=wrap_secret(
                rt, account, store_id, "password", req["KeyStorePassword"]
            ),
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
            wrapped_xks_secret=wrap_secret(rt, account, store_id, "xks-secret", secret),
        )
        check_xks_health(rt, ctx, store, secret)
    try:
        save_store(rt, store, create=True)
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
        stores = sorted(all_stores(rt, account, region), key=lambda s: s.store_id)
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
        if any(s.name == new_name for s in all_stores(rt, account, region)):
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
            cluster = cluster_config(rt, req["CloudHsmClusterId"])
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
                wrapped_password=wrap_secret(
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
            others = [s for s in all_stores(rt, account, region) if s.store_id != store.store_id]
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
                wrapped_xks_secret=wrap_secret(rt, account, store.store_id, "xks-secret", secret),
            )
        if store.state == CONNECTED and (credential is not None or path is not None):
            if secret is None:
                secret = unwrap_secret(rt, store, "xks-secret", store.wrapped_xks_secret)
            check_xks_health(rt, ctx, store, secret)
    save_store(rt, store)
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
    state, code = connect(rt, ctx, store)
    with rt.storage.transaction():
        fresh = get_store(rt, account, region, store.store_id)
        save_store(rt, fresh.with_changes(state=state, error_code=code))
        if state == CONNECTED:
            set_keys_available(rt, fresh, True)
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
        save_store(rt, store.with_changes(state=DISCONNECTED, error_code=None))
        set_keys_available(rt, store, False)
    forget_connection(account, store.store_id)
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
        if next(keys_in_store(rt, store), None) is not None:
            raise CustomKeyStoreHasCMKsException(
                f"Custom key store {store.store_id} still holds KMS keys; delete them first."
            )
        rt.storage.delete_document(KIND, account, store.store_id)
    forget_connection(account, store.store_id)
    return {}
