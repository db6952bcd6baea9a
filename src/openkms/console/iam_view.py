"""IAM: users (with their access keys) and roles, listed and managed through the IAM API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from openkms.console.client import ApiError, children, text_of
from openkms.console.web import Response

if TYPE_CHECKING:
    from openkms.console.page import Page

DONE = {
    "user-created": "The user was created.",
    "user-deleted": "The user was deleted.",
    "key-deleted": "The access key was deleted.",
    "key-updated": "The access key's status was changed.",
    "role-deleted": "The role was deleted.",
    "policy-attached": "The policy was attached.",
    "role-created": "The role was created.",
    "inline-policy": "The inline policy was saved.",
}


def _members(element: Any, name: str, fields: tuple[str, ...]) -> list[dict[str, str]]:
    return [{f: text_of(item, f) for f in fields} for item in children(element, name)]


async def iam_page(page: Page, *, status: int = 200, **extra: Any) -> Response:
    users: list[dict[str, Any]] = []
    roles: list[dict[str, str]] = []
    error = None
    try:
        result = await page.query("iam", "ListUsers", {"MaxItems": "200"})
        users = [
            dict(u) for u in _members(result, "member", ("UserName", "Arn", "CreateDate", "UserId"))
        ]
        for user in users:
            try:
                keys = await page.query(
                    "iam", "ListAccessKeys", {"UserName": user["UserName"]}
                )
                user["access_keys"] = _members(
                    keys, "member", ("AccessKeyId", "Status", "CreateDate")
                )
            except ApiError as exc:
                user["keys_error"] = f"{exc.code}: {exc.message}"
        result = await page.query("iam", "ListRoles", {"MaxItems": "200"})
        roles = _members(result, "member", ("RoleName", "Arn", "CreateDate"))
    except ApiError as exc:
        error = f"{exc.code}: {exc.message}"
    return page.render(
        "iam.html",
        status=400 if error and status == 200 else status,
        users=users,
        roles=roles,
        list_error=error,
        done=DONE.get(page.request.query.get("done", "")),
        **extra,
    )


async def iam_view(page: Page) -> Response:
    return await iam_page(page)


async def iam_action(page: Page) -> Response:
    action = page.params["action"]
    form = page.request.form
    name = form.get("name", "")
    try:
        if action == "create-user":
            await page.query("iam", "CreateUser", {"UserName": name})
            done = "user-created"
        elif action == "delete-user":
            await page.query("iam", "DeleteUser", {"UserName": name})
            done = "user-deleted"
        elif action == "create-key":
            result = await page.query("iam", "CreateAccessKey", {"UserName": name})
            # The secret is shown once, in this answer only (never in a URL or a cookie).
            issued = {
                "UserName": name,
                "AccessKeyId": text_of(result, "AccessKeyId"),
                "SecretAccessKey": text_of(result, "SecretAccessKey"),
            }
            return await iam_page(page, issued=issued)
        elif action == "delete-key":
            await page.query(
                "iam", "DeleteAccessKey",
                {"UserName": name, "AccessKeyId": form.get("access_key_id", "")},
            )
            done = "key-deleted"
        elif action == "key-status":
            await page.query(
                "iam", "UpdateAccessKey",
                {"UserName": name, "AccessKeyId": form.get("access_key_id", ""),
                 "Status": "Inactive" if form.get("status") == "Inactive" else "Active"},
            )
            done = "key-updated"
        elif action == "delete-role":
            await page.query("iam", "DeleteRole", {"RoleName": name})
            done = "role-deleted"
        elif action == "create-role":
            await page.query(
                "iam", "CreateRole",
                {"RoleName": name, "AssumeRolePolicyDocument": form.get("trust_policy", "")},
            )
            done = "role-created"
        elif action == "put-user-policy":
            await page.query(
                "iam", "PutUserPolicy",
                {"UserName": name, "PolicyName": form.get("policy_name", ""),
                 "PolicyDocument": form.get("policy_document", "")},
            )
            done = "inline-policy"
        elif action == "attach-policy":
            await page.query(
                "iam", "AttachUserPolicy",
                {"UserName": name, "PolicyArn": form.get("policy_arn", "")},
            )
            done = "policy-attached"
        else:
            return Response.text(404, "Not found.")
    except ApiError as exc:
        # The form comes back as it was filled in (a policy document is long to type again).
        return await iam_page(page, status=400, error=f"{exc.code}: {exc.message}",
                              draft=form, error_action=action)
    return Response.redirect(f"/console/iam?done={done}")


ROUTES = (
    ("GET", "/iam", iam_view),
    ("POST", "/iam/(?P<action>[a-z-]{1,32})", iam_action),
)
