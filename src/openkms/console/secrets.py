"""Secrets: the list (ListSecrets paging and filters), the secret page (metadata, versions and
staging labels, tags, rotation, resource policy, scheduled deletion) and the deliberate reveal of
a value. Every value shown comes from the Secrets Manager API as the signed-in principal.

A secret's value is on no page until the user asks for it with a POST that carries the
session's CSRF token (so a link, a prefetch or another site cannot reveal it). The reveal is one
GetSecretValue call as the principal: authorized, and audited by Secrets Manager as any other
(``userAgent`` names the console). The answer is ``Cache-Control: no-store`` like every console
page, and the console logs neither the value nor the form that carried a new one.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlencode

from openkms.console.client import ApiError
from openkms.console.page import Page
from openkms.console.web import Response

PAGE_SIZE = 25
# ListSecrets filter keys the search box offers ("all" searches name, description and tags).
FIELDS = ("all", "name", "description", "tag-key", "tag-value")
DONE = {
    "created": "The secret was created.",
    "put-value": "A new value is the current version (AWSCURRENT).",
    "description": "The description was saved.",
    "tag": "The tag was saved.",
    "untag": "The tag was removed.",
    "delete": "The secret is scheduled for deletion.",
    "restore": "The secret was restored.",
    "policy": "The resource policy was saved.",
    "delete-policy": "The resource policy was deleted.",
    "rotate": "Rotation was started.",
    "cancel-rotation": "Rotation is off.",
}


def secret_url(secret_id: str, **extra: str) -> str:
    return "/console/secrets/secret?" + urlencode({"id": secret_id, **extra})


class FormError(Exception):
    """A form field the console cannot turn into an API parameter (shown, nothing is called)."""


# -- the list -------------------------------------------------------------------------------------
async def list_secrets(page: Page) -> Response:
    query = page.request.query
    q = query.get("q", "").strip()[:256]
    field = query.get("field", "all")
    if field not in FIELDS:
        field = "all"
    deleted = query.get("deleted") == "1"
    token = query.get("next") or None
    params: dict[str, Any] = {"MaxResults": PAGE_SIZE, "SortBy": "name", "SortOrder": "asc"}
    if q:
        params["Filters"] = [{"Key": field, "Values": [q]}]
    if deleted:
        params["IncludePlannedDeletion"] = True
    if token:
        params["NextToken"] = token
    rows: list[dict[str, Any]] = []
    next_token: str | None = None
    error: str | None = None
    try:
        answer = await page.secrets("ListSecrets", params)
        rows = list(answer.get("SecretList", []))
        next_token = answer.get("NextToken")
    except ApiError as exc:
        error = f"{exc.code}: {exc.message}"
    keep = {"q": q, "field": field, **({"deleted": "1"} if deleted else {})}
    return page.render(
        "secrets_list.html",
        status=400 if error else 200,
        rows=rows,
        q=q,
        field=field,
        fields=FIELDS,
        deleted=deleted,
        next_url="?" + urlencode({**keep, "next": next_token}) if next_token else None,
        first_url="?" + urlencode(keep) if token else None,
        error=error,
    )


# -- the secret page ------------------------------------------------------------------------------
async def _section(page: Page, operation: str, params: dict[str, Any]) -> dict[str, Any]:
    try:
        answer: dict[str, Any] = await page.secrets(operation, params)
    except ApiError as exc:
        return {"error": f"{exc.code}: {exc.message}", "code": exc.code}
    return answer


async def secret_page(
    page: Page, secret_id: str, *, status: int = 200, **extra: Any
) -> Response:
    try:
        meta = await page.secrets("DescribeSecret", {"SecretId": secret_id})
    except ApiError as exc:
        return page.render(
            "secrets_detail.html", status=400, meta=None, secret_id=secret_id,
            error=extra.get("error") or f"{exc.code}: {exc.message}",
        )
    arn = meta["ARN"]
    versions = await _section(
        page, "ListSecretVersionIds", {"SecretId": arn, "IncludeDeprecated": True}
    )
    policy = await _section(page, "GetResourcePolicy", {"SecretId": arn})
    done = DONE.get(page.request.query.get("done", ""))
    return page.render(
        "secrets_detail.html",
        status=status,
        meta=meta,
        secret_id=arn,
        versions=sorted(
            versions.get("Versions", []), key=lambda v: v.get("CreatedDate", 0), reverse=True
        ),
        versions_error=versions.get("error"),
        policy=policy,
        done=done,
        **extra,
    )


async def secret_view(page: Page) -> Response:
    secret_id = page.request.query.get("id", "")
    if not secret_id:
        return Response.redirect("/console/secrets")
    return await secret_page(page, secret_id)


async def reveal(page: Page) -> Response:
    """The value, on the deliberate click only (a POST with the CSRF token: see app.py)."""
    form = page.request.form
    secret_id = form.get("secret_id", "")
    params: dict[str, Any] = {"SecretId": secret_id}
    if form.get("version_id"):
        params["VersionId"] = form["version_id"]
    elif form.get("version_stage"):
        params["VersionStage"] = form["version_stage"]
    try:
        answer = await page.secrets("GetSecretValue", params)
    except ApiError as exc:
        return await secret_page(
            page, secret_id, status=400, error=f"{exc.code}: {exc.message}",
            error_action="reveal",
        )
    shown: dict[str, Any] = {
        "VersionId": answer.get("VersionId"),
        "VersionStages": answer.get("VersionStages", []),
    }
    if "SecretString" in answer:
        shown["text"] = answer["SecretString"]
    elif "SecretBinary" in answer:
        # The API answers binary base64-encoded already (JSON protocol); shown as it is.
        raw = answer["SecretBinary"]
        shown["binary"] = raw if isinstance(raw, str) else base64.b64encode(raw).decode()
    return await secret_page(page, secret_id, revealed=shown)


# -- changing a secret ----------------------------------------------------------------------------
def _tags(text: str) -> list[dict[str, str]]:
    tags = []
    for line in text.splitlines():
        if line.strip():
            key, _, value = line.partition("=")
            tags.append({"Key": key.strip(), "Value": value.strip()})
    return tags


def _call_for(action: str, secret_id: str, form: dict[str, str]) -> tuple[str, dict[str, Any]]:
    sid = {"SecretId": secret_id}
    if action == "put-value":
        return "PutSecretValue", {**sid, "SecretString": form.get("value", "")}
    if action == "description":
        return "UpdateSecret", {**sid, "Description": form.get("description", "")}
    if action == "tag":
        return "TagResource", {**sid, "Tags": [
            {"Key": form.get("tag_key", ""), "Value": form.get("tag_value", "")}]}
    if action == "untag":
        return "UntagResource", {**sid, "TagKeys": [form.get("tag_key", "")]}
    if action == "delete":
        # Never a default for a destructive call: a window that is not a number is refused.
        days = form.get("days", "").strip()
        if not days.isdigit() or len(days) > 4:
            raise FormError("The recovery window must be a whole number of days (7 to 30).")
        return "DeleteSecret", {**sid, "RecoveryWindowInDays": int(days)}
    if action == "restore":
        return "RestoreSecret", sid
    if action == "policy":
        return "PutResourcePolicy", {**sid, "ResourcePolicy": form.get("policy", "")}
    if action == "delete-policy":
        return "DeleteResourcePolicy", sid
    if action == "rotate":
        return "RotateSecret", sid
    if action == "cancel-rotation":
        return "CancelRotateSecret", sid
    raise KeyError(action)


async def secret_action(page: Page) -> Response:
    action = page.params["action"]
    form = page.request.form
    secret_id = form.get("secret_id", "")
    try:
        call = _call_for(action, secret_id, form)
    except KeyError:
        return Response.text(404, "Not found.")
    except FormError as exc:
        return await secret_page(page, secret_id, status=400, error=str(exc),
                                 error_action=action)
    try:
        await page.secrets(*call)
    except ApiError as exc:
        extra: dict[str, Any] = {"error": f"{exc.code}: {exc.message}", "error_action": action}
        if action == "policy":
            extra["policy_draft"] = form.get("policy", "")
        return await secret_page(page, secret_id, status=400, **extra)
    return Response.redirect(secret_url(secret_id, done=action))


def _new_form(page: Page, status: int = 200, **values: Any) -> Response:
    form = {k: v for k, v in page.request.form.items() if k != "value"}  # never echoed back
    return page.render("secrets_new.html", status=status, form=form, **values)


async def new_secret(page: Page) -> Response:
    return _new_form(page)


async def create_secret(page: Page) -> Response:
    form = page.request.form
    params: dict[str, Any] = {"Name": form.get("name", "").strip(),
                              "SecretString": form.get("value", "")}
    if form.get("description"):
        params["Description"] = form["description"]
    if form.get("kms_key_id", "").strip():
        params["KmsKeyId"] = form["kms_key_id"].strip()
    tags = _tags(form.get("tags", ""))
    if tags:
        params["Tags"] = tags
    try:
        answer = await page.secrets("CreateSecret", params)
    except ApiError as exc:
        return _new_form(page, status=400, error=f"{exc.code}: {exc.message}")
    return Response.redirect(secret_url(answer["ARN"], done="created"))


ROUTES = (
    ("GET", "/secrets", list_secrets),
    ("GET", "/secrets/new", new_secret),
    ("POST", "/secrets/new", create_secret),
    ("GET", "/secrets/secret", secret_view),
    ("POST", "/secrets/reveal", reveal),
    ("POST", "/secrets/(?P<action>[a-z-]{1,32})", secret_action),
)
