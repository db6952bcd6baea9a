"""Grants from the key page: create (grantee, operations, an encryption context constraint,
retiring principal, name), retire and revoke. Each is one CreateGrant, RetireGrant or RevokeGrant
call as the signed-in principal, so a grant is made only where that principal's policies allow
it; an error is shown on the key page in AWS's words, with the form as it was filled in."""

from __future__ import annotations

from typing import Any

from openkms.console.client import ApiError
from openkms.console.keys import KEY_ID, key_page
from openkms.console.page import Page
from openkms.console.web import Response

# AWS's GrantOperation enum, in the order the AWS console lists them. Each is a checkbox named
# ``op-<Operation>`` (the console's form parser keeps one value per field name).
OPERATIONS: tuple[str, ...] = (
    "Decrypt", "Encrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "ReEncryptFrom",
    "ReEncryptTo", "Sign", "Verify", "GetPublicKey", "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext", "GenerateMac", "VerifyMac", "DeriveSharedSecret",
    "Encapsulate", "Decapsulate", "CreateGrant", "RetireGrant", "DescribeKey",
)
CONSTRAINTS = ("EncryptionContextEquals", "EncryptionContextSubset")


class FormError(ValueError):
    """Input the console cannot turn into an API request (shown as is, nothing is sent)."""


def encryption_context(text: str) -> dict[str, str]:
    """``key=value`` lines (blank lines skipped) as an encryption context. The value is
    everything after the first ``=``, so a value may itself contain ``=``."""
    context: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise FormError(
                f"Encryption context line {number} is not key=value: write one pair a line."
            )
        context[key.strip()] = value.strip()
    return context


def create_grant_request(key_id: str, form: dict[str, str]) -> dict[str, Any]:
    params: dict[str, Any] = {
        "KeyId": key_id,
        "GranteePrincipal": form.get("grantee", "").strip(),
        # Unknown names are never sent: only AWS's operations can be ticked.
        "Operations": [op for op in OPERATIONS if form.get(f"op-{op}") == "on"],
    }
    if form.get("retiring", "").strip():
        params["RetiringPrincipal"] = form["retiring"].strip()
    if form.get("name", "").strip():
        params["Name"] = form["name"].strip()
    kind = form.get("constraint", "")
    if kind in CONSTRAINTS:
        context = encryption_context(form.get("context", ""))
        if not context:
            raise FormError(f"{kind} needs at least one key=value pair.")
        params["Constraints"] = {kind: context}
    return params


async def grant_action(page: Page) -> Response:
    key_id = page.params["key_id"]
    action = page.params["action"]
    form = page.request.form
    operation: str
    if action == "create-grant":
        operation = "CreateGrant"
        try:
            params = create_grant_request(key_id, form)
        except FormError as exc:
            return await key_page(page, status=400, error=str(exc), error_action=action,
                                  grant_draft=form)
    elif action in ("retire-grant", "revoke-grant"):
        operation = "RetireGrant" if action == "retire-grant" else "RevokeGrant"
        params = {"KeyId": key_id, "GrantId": form.get("grant_id", "")}
    else:
        return Response.text(404, "Not found.")
    try:
        await page.kms(operation, params)
    except ApiError as exc:
        return await key_page(
            page, status=400, error=f"{exc.code}: {exc.message}", error_action=action,
            grant_draft=form if action == "create-grant" else None,
        )
    return Response.redirect(f"/console/keys/{key_id}?done={action}#grants")


ROUTES = (
    ("POST", f"/keys/{KEY_ID}/(?P<action>create-grant|retire-grant|revoke-grant)", grant_action),
)
