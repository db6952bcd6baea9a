"""Changing keys from the console: the key page's actions and the create-key flow. Each is one
API call (two when a new key gets an alias) as the signed-in principal; an error is shown on
the page in AWS's words."""

from __future__ import annotations

from typing import Any

from openkms.console.client import ApiError
from openkms.console.keys import KEY_ID, ORIGINS, SPEC_USAGES, key_page, section
from openkms.console.page import Page
from openkms.console.web import Response


def _int(value: str | None, default: int) -> int:
    try:
        return int(value or default)
    except ValueError:
        return default


async def key_action(page: Page) -> Response:
    key_id = page.params["key_id"]
    action = page.params["action"]
    form = page.request.form
    call: tuple[str, dict[str, Any]]
    if action == "policy":
        call = ("PutKeyPolicy", {"KeyId": key_id, "PolicyName": "default",
                                 "Policy": form.get("policy", "")})
    elif action == "rotation-on":
        call = ("EnableKeyRotation", {"KeyId": key_id,
                                      "RotationPeriodInDays": _int(form.get("period"), 365)})
    elif action == "rotation-off":
        call = ("DisableKeyRotation", {"KeyId": key_id})
    elif action == "rotate":
        call = ("RotateKeyOnDemand", {"KeyId": key_id})
    elif action == "schedule-deletion":
        call = ("ScheduleKeyDeletion", {"KeyId": key_id,
                                        "PendingWindowInDays": _int(form.get("days"), 30)})
    elif action == "cancel-deletion":
        call = ("CancelKeyDeletion", {"KeyId": key_id})
    elif action == "enable":
        call = ("EnableKey", {"KeyId": key_id})
    elif action == "disable":
        call = ("DisableKey", {"KeyId": key_id})
    elif action == "description":
        call = ("UpdateKeyDescription", {"KeyId": key_id,
                                         "Description": form.get("description", "")})
    elif action == "tag":
        call = ("TagResource", {"KeyId": key_id, "Tags": [
            {"TagKey": form.get("tag_key", ""), "TagValue": form.get("tag_value", "")}]})
    elif action == "untag":
        call = ("UntagResource", {"KeyId": key_id, "TagKeys": [form.get("tag_key", "")]})
    elif action == "alias":
        name = form.get("alias", "").strip()
        call = ("CreateAlias", {"AliasName": name if name.startswith("alias/") else f"alias/{name}",
                                "TargetKeyId": key_id})
    elif action == "unalias":
        call = ("DeleteAlias", {"AliasName": form.get("alias", "")})
    elif action == "delete-material":
        call = ("DeleteImportedKeyMaterial", {"KeyId": key_id})
    elif action == "replicate":
        call = ("ReplicateKey", {"KeyId": key_id, "ReplicaRegion": form.get("region", "")})
    elif action == "primary-region":
        call = ("UpdatePrimaryRegion", {"KeyId": key_id, "PrimaryRegion": form.get("region", "")})
    else:
        return Response.text(404, "Not found.")
    try:
        await page.kms(*call)
    except ApiError as exc:
        extra: dict[str, Any] = {"error": f"{exc.code}: {exc.message}", "error_action": action}
        if action == "policy":
            extra["policy_draft"] = form.get("policy", "")
        return await key_page(page, status=400, **extra)
    return Response.redirect(f"/console/keys/{key_id}?done={action}")


# -- creating a key -------------------------------------------------------------------------------
def _new_form(page: Page, status: int = 200, **values: Any) -> Response:
    return page.render(
        "keys_new.html", status=status, spec_usages=SPEC_USAGES, origins=ORIGINS,
        form=page.request.form, **values,
    )


async def new_key(page: Page) -> Response:
    stores = await section(page, "DescribeCustomKeyStores", {"Limit": 100})
    return _new_form(page, stores=stores.get("CustomKeyStores", []))


async def create_key(page: Page) -> Response:
    form = page.request.form
    spec, _, usage = form.get("spec_usage", "SYMMETRIC_DEFAULT:ENCRYPT_DECRYPT").partition(":")
    params: dict[str, Any] = {"KeySpec": spec, "KeyUsage": usage}
    if form.get("description"):
        params["Description"] = form["description"]
    origin = form.get("origin", "AWS_KMS")
    if origin != "AWS_KMS":
        params["Origin"] = origin
    if form.get("multi_region") == "on":
        params["MultiRegion"] = True
    if form.get("custom_key_store_id"):
        params["CustomKeyStoreId"] = form["custom_key_store_id"]
    if form.get("xks_key_id"):
        params["XksKeyId"] = form["xks_key_id"]
    if form.get("policy", "").strip():
        params["Policy"] = form["policy"]
    tags = []
    for line in form.get("tags", "").splitlines():
        if line.strip():
            key, _, value = line.partition("=")
            tags.append({"TagKey": key.strip(), "TagValue": value.strip()})
    if tags:
        params["Tags"] = tags
    try:
        meta = (await page.kms("CreateKey", params))["KeyMetadata"]
    except ApiError as exc:
        # The form comes back as it was filled in, custom key stores listed again.
        stores = await section(page, "DescribeCustomKeyStores", {"Limit": 100})
        return _new_form(page, status=400, error=f"{exc.code}: {exc.message}",
                         stores=stores.get("CustomKeyStores", []))
    alias = form.get("alias", "").strip()
    if alias:
        name = alias if alias.startswith("alias/") else f"alias/{alias}"
        try:
            await page.kms("CreateAlias", {"AliasName": name, "TargetKeyId": meta["KeyId"]})
        except ApiError as exc:
            page.params["key_id"] = meta["KeyId"]
            return await key_page(
                page, status=400, error=f"The key was created, but not its alias: "
                f"{exc.code}: {exc.message}",
            )
    return Response.redirect(f"/console/keys/{meta['KeyId']}?done=created")


ROUTES = (
    ("GET", "/keys/new", new_key),
    ("POST", "/keys/new", create_key),
    ("POST", f"/keys/{KEY_ID}/(?P<action>[a-z-]{{1,32}})", key_action),
)
