"""The back ends of custom key stores: a CloudHSM store's PKCS#11 token, an external key
store's XKS proxy (docs/custom-key-stores.md has the details).

Connecting is synchronous here (AWS's CONNECTING is over by the time ConnectCustomKeyStore
answers): the store is CONNECTED, or FAILED with AWS's ConnectionErrorCode. A CloudHSM store's
session is kept per process (``_CONNECTIONS``); an XKS proxy client is built per call, with the
request's metadata (``CURRENT_REQUEST``, which the callers of the KMS operations' handlers set:
the HTTP app and Secrets Manager's KMS client). The keys in stores are in
``service/key_store_keys.py``.
"""

from __future__ import annotations

import contextvars
from typing import Any

from openkms.config import ClusterConfig
from openkms.errors import (
    CloudHsmClusterNotFoundException,
    OpenKMSError,
    XksProxyIncorrectAuthenticationCredentialException,
    XksProxyInvalidConfigurationException,
    XksProxyInvalidResponseException,
    XksProxyUriUnreachableException,
)
from openkms.keystores import StoreConnectionError, keystore_settings
from openkms.service.context import RequestContext
from openkms.service.key_store_records import (
    AWS_CLOUDHSM,
    CONNECTED,
    FAILED,
    StoreRecord,
    unwrap_secret,
)
from openkms.service.runtime import Runtime

CURRENT_REQUEST: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "openkms_current_request", default=None
)

# --- connections -------------------------------------------------------------------------
# (account, store id) -> (the wrapped password it was built with, the CloudHsmStore): one per
# process, rebuilt when the store's password changes.
_CONNECTIONS: dict[tuple[str, str], tuple[str, Any]] = {}


def forget_connection(account: str, store_id: str) -> None:
    """Drops the cached CloudHSM session of a store (disconnected or deleted)."""
    _CONNECTIONS.pop((account, store_id), None)


def cluster_config(rt: Runtime, cluster_id: str) -> ClusterConfig:
    cluster = keystore_settings(rt).clusters.get(cluster_id)
    if cluster is None:
        raise CloudHsmClusterNotFoundException(
            f"CloudHSM cluster {cluster_id} is not configured on this openkms server "
            "(custom_key_store_clusters)."
        )
    return cluster


def hsm_session(rt: Runtime, store: StoreRecord) -> Any:
    """The CloudHsmStore of a store (one per process, rebuilt when its password changes)."""
    from openkms.keystores.cloudhsm import CloudHsmStore

    ident = (store.account_id, store.store_id)
    cached = _CONNECTIONS.get(ident)
    if cached is not None and cached[0] == store.wrapped_password:
        return cached[1]
    assert store.cluster_id is not None
    try:
        cluster = cluster_config(rt, store.cluster_id)
    except CloudHsmClusterNotFoundException as exc:
        raise StoreConnectionError("CLUSTER_NOT_FOUND", exc.message) from None
    pin = unwrap_secret(rt, store, "password", store.wrapped_password)
    hsm = CloudHsmStore(cluster, pin)
    _CONNECTIONS[ident] = (store.wrapped_password or "", hsm)
    return hsm


def xks_client(rt: Runtime, store: StoreRecord, secret: str | None = None) -> Any:
    from openkms.keystores.xks import XksClient

    settings = keystore_settings(rt)
    assert store.xks_endpoint and store.xks_path and store.xks_access_key_id
    if secret is None:
        secret = unwrap_secret(rt, store, "xks-secret", store.wrapped_xks_secret)
    return XksClient(
        uri_endpoint=store.xks_endpoint,
        uri_path=store.xks_path,
        access_key_id=store.xks_access_key_id,
        secret_access_key=secret,
        region=store.region,
        ca_file=settings.xks_ca_file,
        timeout=settings.xks_timeout_seconds,
    )


def xks_setup_error(exc: Exception) -> OpenKMSError:
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


def check_xks_health(rt: Runtime, ctx: RequestContext, store: StoreRecord, secret: str) -> None:
    from openkms.keystores.xks import XksError

    try:
        client = xks_client(rt, store, secret)
        client.health(ctx.operation or "CreateCustomKeyStore", ctx.request_id)
    except (XksError, StoreConnectionError) as exc:
        raise xks_setup_error(exc) from None


def connect(rt: Runtime, ctx: RequestContext, store: StoreRecord) -> tuple[str, str | None]:
    """(ConnectionState, ConnectionErrorCode) after trying to connect."""
    from openkms.keystores.xks import XksError

    try:
        if store.store_type == AWS_CLOUDHSM:
            hsm_session(rt, store).connect()
        else:
            xks_client(rt, store).health("ConnectCustomKeyStore", ctx.request_id)
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
