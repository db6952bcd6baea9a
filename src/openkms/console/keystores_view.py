"""Custom key stores: the list (``DescribeCustomKeyStores``), creating an external key store
(an XKS proxy) or a CloudHSM key store, connecting, disconnecting and deleting one. Each is one
call as the signed-in principal; an error is shown in AWS's words. The secrets a form carries
(the XKS proxy's secret access key, the CloudHSM ``kmsuser`` password) go to the API and are never
written back into a page, not even when the call fails."""

from __future__ import annotations

from typing import Any

from openkms.console.client import ApiError
from openkms.console.page import Page
from openkms.console.web import Response

SECRET_FIELDS = ("xks_secret", "kmsuser_password")
DONE = {
    "created": "The custom key store was created. Connect it to create keys in it.",
    "connect": "The custom key store is connecting.",
    "disconnect": "The custom key store is disconnected.",
    "delete": "The custom key store was deleted.",
}


async def stores_page(page: Page, *, status: int = 200, **extra: Any) -> Response:
    stores: list[dict[str, Any]] = []
    list_error = None
    try:
        marker: str | None = None
        while True:
            params: dict[str, Any] = {"Limit": 100}
            if marker:
                params["Marker"] = marker
            answer = await page.kms("DescribeCustomKeyStores", params)
            stores += answer.get("CustomKeyStores", [])
            marker = answer.get("NextMarker") if answer.get("Truncated") else None
            if marker is None:
                break
    except ApiError as exc:
        list_error = f"{exc.code}: {exc.message}"
    form = {k: v for k, v in page.request.form.items() if k not in SECRET_FIELDS}
    return page.render(
        "keystores.html",
        status=400 if list_error and status == 200 else status,
        stores=stores,
        list_error=list_error,
        form=form,
        done=DONE.get(page.request.query.get("done", "")),
        **extra,
    )


async def stores_view(page: Page) -> Response:
    return await stores_page(page)


def _create_request(form: dict[str, str]) -> dict[str, Any]:
    store_type = form.get("type", "")
    params: dict[str, Any] = {"CustomKeyStoreName": form.get("name", "").strip(),
                              "CustomKeyStoreType": store_type}
    if store_type == "EXTERNAL_KEY_STORE":
        params.update(
            XksProxyUriEndpoint=form.get("xks_endpoint", "").strip(),
            XksProxyUriPath=form.get("xks_path", "").strip(),
            XksProxyConnectivity=form.get("xks_connectivity", "PUBLIC_ENDPOINT"),
            XksProxyAuthenticationCredential={
                "AccessKeyId": form.get("xks_access_key_id", "").strip(),
                "RawSecretAccessKey": form.get("xks_secret", "").strip(),
            },
        )
        if form.get("xks_vpc_service", "").strip():
            params["XksProxyVpcEndpointServiceName"] = form["xks_vpc_service"].strip()
    else:
        params.update(
            CloudHsmClusterId=form.get("cluster_id", "").strip(),
            TrustAnchorCertificate=form.get("trust_anchor", ""),
            KeyStorePassword=form.get("kmsuser_password", ""),
        )
    return params


async def store_action(page: Page) -> Response:
    action = page.params["action"]
    form = page.request.form
    store_id = form.get("store_id", "")
    call: tuple[str, dict[str, Any]]
    if action == "create":
        call = ("CreateCustomKeyStore", _create_request(form))
    elif action == "connect":
        call = ("ConnectCustomKeyStore", {"CustomKeyStoreId": store_id})
    elif action == "disconnect":
        call = ("DisconnectCustomKeyStore", {"CustomKeyStoreId": store_id})
    elif action == "delete":
        call = ("DeleteCustomKeyStore", {"CustomKeyStoreId": store_id})
    else:
        return Response.text(404, "Not found.")
    try:
        await page.kms(*call)
    except ApiError as exc:
        return await stores_page(page, status=400, error=f"{exc.code}: {exc.message}",
                                 error_action=action)
    done = "created" if action == "create" else action
    return Response.redirect(f"/console/keystores?done={done}")


ROUTES = (
    ("GET", "/keystores", stores_view),
    ("POST", "/keystores/(?P<action>[a-z]{1,16})", store_action),
)
