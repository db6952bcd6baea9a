"""Keys: the list (server-side paging, search and filters) and the key page (its actions and
the create-key flow are in ``key_forms``). Every value shown comes from the API as the
signed-in principal."""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import urlencode

from openkms.console.audit_view import recent_for_key
from openkms.console.client import ApiError
from openkms.console.page import Page
from openkms.console.web import Response

PAGE_SIZE = 25
# A search or filter asks the server's key search (OpenKMS.SearchKeys) window after window of
# 10,000 keys for at most this long per page, then offers to continue from where it stopped.
SCAN_BUDGET_SECONDS = 1.5
KEY_ID = r"(?P<key_id>[A-Za-z0-9-]{1,64})"

SPEC_USAGES: tuple[tuple[str, str], ...] = (
    ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT"),
    ("RSA_2048", "ENCRYPT_DECRYPT"),
    ("RSA_3072", "ENCRYPT_DECRYPT"),
    ("RSA_4096", "ENCRYPT_DECRYPT"),
    ("RSA_2048", "SIGN_VERIFY"),
    ("RSA_3072", "SIGN_VERIFY"),
    ("RSA_4096", "SIGN_VERIFY"),
    ("ECC_NIST_P256", "SIGN_VERIFY"),
    ("ECC_NIST_P384", "SIGN_VERIFY"),
    ("ECC_NIST_P521", "SIGN_VERIFY"),
    ("ECC_SECG_P256K1", "SIGN_VERIFY"),
    ("ECC_NIST_EDWARDS25519", "SIGN_VERIFY"),
    ("ECC_NIST_P256", "KEY_AGREEMENT"),
    ("ECC_NIST_P384", "KEY_AGREEMENT"),
    ("ECC_NIST_P521", "KEY_AGREEMENT"),
    ("HMAC_224", "GENERATE_VERIFY_MAC"),
    ("HMAC_256", "GENERATE_VERIFY_MAC"),
    ("HMAC_384", "GENERATE_VERIFY_MAC"),
    ("HMAC_512", "GENERATE_VERIFY_MAC"),
    ("ML_DSA_44", "SIGN_VERIFY"),
    ("ML_DSA_65", "SIGN_VERIFY"),
    ("ML_DSA_87", "SIGN_VERIFY"),
    ("ML_KEM_512", "ENCAPSULATE_DECAPSULATE"),
    ("ML_KEM_768", "ENCAPSULATE_DECAPSULATE"),
    ("ML_KEM_1024", "ENCAPSULATE_DECAPSULATE"),
    ("SM2", "SIGN_VERIFY"),
    ("SM2", "ENCRYPT_DECRYPT"),
    ("SM2", "KEY_AGREEMENT"),
)
SPECS = tuple(dict.fromkeys(spec for spec, _ in SPEC_USAGES))
USAGES = tuple(dict.fromkeys(usage for _, usage in SPEC_USAGES))
STATES = ("Enabled", "Disabled", "PendingDeletion", "PendingImport", "PendingReplicaDeletion",
          "Unavailable", "Creating", "Updating")
ORIGINS = ("AWS_KMS", "EXTERNAL", "AWS_CLOUDHSM", "EXTERNAL_KEY_STORE")
FILTERS = ("spec", "usage", "state", "origin", "multi")
# The console's filters as OpenKMS.SearchKeys members ("multi" is MultiRegion, a boolean).
SEARCH_MEMBERS = {"spec": "KeySpec", "usage": "KeyUsage", "state": "KeyState", "origin": "Origin"}
DONE = {
    "created": "The key was created.",
    "policy": "The key policy was saved.",
    "rotation-on": "Automatic rotation is on.",
    "rotation-off": "Automatic rotation is off.",
    "rotate": "The key was rotated: a new key material version is current.",
    "schedule-deletion": "The key is scheduled for deletion.",
    "cancel-deletion": "The deletion was cancelled; the key is disabled until you enable it.",
    "enable": "The key is enabled.",
    "disable": "The key is disabled.",
    "description": "The description was saved.",
    "tag": "The tag was saved.",
    "untag": "The tag was removed.",
    "alias": "The alias was created.",
    "unalias": "The alias was deleted.",
    "delete-material": "The imported key material was deleted.",
    "replicate": "The replica key was created.",
    "create-grant": "The grant was created.",
    "retire-grant": "The grant was retired.",
    "revoke-grant": "The grant was revoked.",
    "import": "The key material was imported.",
    "primary-region": "The primary Region is changing: this key becomes a replica.",
}


# -- the list -------------------------------------------------------------------------------------
def _matches(meta: dict[str, Any], filters: dict[str, str]) -> bool:
    checks = {
        "spec": meta.get("KeySpec"),
        "usage": meta.get("KeyUsage"),
        "state": meta.get("KeyState"),
        "origin": meta.get("Origin"),
    }
    for name, actual in checks.items():
        wanted = filters.get(name)
        if wanted and actual != wanted:
            return False
    multi = filters.get("multi")
    return not (multi and (multi == "yes") != bool(meta.get("MultiRegion")))


async def _row(page: Page, key_id: str) -> dict[str, Any]:
    try:
        meta: dict[str, Any] = (await page.kms("DescribeKey", {"KeyId": key_id}))["KeyMetadata"]
    except ApiError as exc:
        return {"KeyId": key_id, "error": f"{exc.code}: {exc.message}"}
    try:
        aliases = await page.kms("ListAliases", {"KeyId": meta["KeyId"], "Limit": 10})
        meta["aliases"] = [a["AliasName"] for a in aliases.get("Aliases", [])]
    except ApiError:
        meta["aliases"] = []
    return meta


def _search_params(q: str, filters: dict[str, str]) -> dict[str, Any]:
    """The console's search form as an ``OpenKMS.SearchKeys`` request."""
    params: dict[str, Any] = {}
    if q:
        params["Text"] = q
    for name, member in SEARCH_MEMBERS.items():
        if filters.get(name):
            params[member] = filters[name]
    if filters.get("multi") in ("yes", "no"):
        params["MultiRegion"] = filters["multi"] == "yes"
    return params


async def _search(
    page: Page, q: str, filters: dict[str, str], marker: str | None, rows: list[dict[str, Any]]
) -> tuple[str | None, int]:
    """Fills ``rows`` from the server's key search (``OpenKMS.SearchKeys``: the index, each key
    re-authorized as DescribeKey), window after window, until the page is full, the keys end or
    the time budget is spent; each key shown is described by its own DescribeKey call. Returns
    (the marker to go on from, windows searched)."""
    deadline = time.monotonic() + SCAN_BUDGET_SECONDS
    params = _search_params(q, filters)
    windows = 0
    while len(rows) < PAGE_SIZE:
        request = {**params, "Limit": PAGE_SIZE - len(rows)}
        if marker:
            request["Marker"] = marker
        answer = await page.openkms("SearchKeys", request)
        windows += 1
        for key in answer.get("Keys", []):
            rows.append(await _row(page, key["KeyId"]))
        marker = answer.get("NextMarker") if answer.get("Truncated") else None
        if marker is None or time.monotonic() > deadline:
            break
    return marker, windows


async def list_keys(page: Page) -> Response:
    query = page.request.query
    q = query.get("q", "").strip()[:256]
    filters = {name: query.get(name, "") for name in FILTERS}
    marker = query.get("marker") or None
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    scan_url: str | None = None
    next_marker: str | None = None
    error: str | None = None
    windows = 0
    try:
        if not q and not any(filters.values()):
            params: dict[str, Any] = {"Limit": PAGE_SIZE}
            if marker:
                params["Marker"] = marker
            answer = await page.kms("ListKeys", params)
            for key in answer.get("Keys", []):
                rows.append(await _row(page, key["KeyId"]))
            next_marker = answer.get("NextMarker") if answer.get("Truncated") else None
        else:
            exact = False
            if q and not marker and query.get("scan") != "1":
                # An exact id, ARN or alias name answers at once, wherever the key is; the
                # page offers to search descriptions and tags for the text as well.
                for candidate in _exact_candidates(q):
                    try:
                        meta = (await page.kms("DescribeKey", {"KeyId": candidate}))["KeyMetadata"]
                    except ApiError:
                        continue
                    if _matches(meta, filters):
                        rows.append(await _row(page, meta["KeyId"]))
                        exact = True
                    break
            if exact:
                scan_url = "?" + urlencode({"q": q, "scan": "1",
                                            **{k: v for k, v in filters.items() if v}})
            else:
                next_marker, windows = await _search(page, q, filters, marker, rows)
    except ApiError as exc:
        error = f"{exc.code}: {exc.message}"
    keep = {"q": q, **{k: v for k, v in filters.items() if v}}
    if query.get("scan") == "1":
        keep["scan"] = "1"
    next_url = None
    if next_marker:
        next_url = "?" + urlencode({**keep, "marker": next_marker})
    return page.render(
        "keys_list.html",
        status=400 if error else 200,
        rows=rows,
        q=q,
        filters=filters,
        specs=SPECS,
        usages=USAGES,
        states=STATES,
        origins=ORIGINS,
        next_url=next_url,
        scan_url=scan_url,
        first_url="?" + urlencode(keep) if marker else None,
        windows=windows,
        searching=bool(q or any(filters.values())),
        elapsed_ms=round((time.perf_counter() - started) * 1000),
        error=error,
    )


def _exact_candidates(q: str) -> list[str]:
    if q.startswith(("arn:", "alias/")) or re.fullmatch(r"(mrk-)?[0-9a-f-]{32,36}", q):
        return [q]
    if re.fullmatch(r"[A-Za-z0-9/_-]{1,250}", q):
        return [f"alias/{q}"]
    return []


# -- the key page ---------------------------------------------------------------------------------
async def section(page: Page, operation: str, params: dict[str, Any]) -> dict[str, Any]:
    try:
        answer: dict[str, Any] = await page.kms(operation, params)
    except ApiError as exc:
        return {"error": f"{exc.code}: {exc.message}", "code": exc.code}
    return answer


async def key_page(page: Page, *, status: int = 200, **extra: Any) -> Response:
    key_id = page.params["key_id"]
    try:
        meta = (await page.kms("DescribeKey", {"KeyId": key_id}))["KeyMetadata"]
    except ApiError as exc:
        return page.render(
            "keys_detail.html", status=400, meta=None, key_id=key_id,
            error=f"{exc.code}: {exc.message}",
        )
    kid = meta["KeyId"]
    aliases = await section(page, "ListAliases", {"KeyId": kid, "Limit": 100})
    tags = await section(page, "ListResourceTags", {"KeyId": kid, "Limit": 50})
    grants = await section(page, "ListGrants", {"KeyId": kid, "Limit": 100})
    policy = await section(page, "GetKeyPolicy", {"KeyId": kid, "PolicyName": "default"})
    rotation: dict[str, Any] = {}
    rotations: dict[str, Any] = {}
    if meta.get("KeySpec") == "SYMMETRIC_DEFAULT" and meta.get("KeyManager") == "CUSTOMER":
        rotation = await section(page, "GetKeyRotationStatus", {"KeyId": kid})
        rotations = await section(page, "ListKeyRotations", {"KeyId": kid, "Limit": 100})
    usage = await recent_for_key(page, meta["Arn"], kid)
    done = DONE.get(page.request.query.get("done", ""))
    return page.render(
        "keys_detail.html",
        status=status,
        meta=meta,
        key_id=kid,
        aliases=aliases,
        tags=tags,
        grants=grants,
        policy=policy,
        rotation=rotation,
        rotations=rotations,
        usage=usage,
        done=done,
        now=time.time(),
        **extra,
    )


async def key_view(page: Page) -> Response:
    return await key_page(page)


ROUTES = (
    ("GET", "/keys", list_keys),
    ("GET", f"/keys/(?!new$){KEY_ID}", key_view),
)
