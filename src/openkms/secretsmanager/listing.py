"""ListSecrets: filters, sort and pagination (BatchGetSecretValue's Filters share them).

Filters (up to 10, ANDed; a filter's values ORed; a value starting with ``!`` negates):
``name``, ``tag-key``, ``tag-value``, ``primary-region``, ``owning-service`` by case-sensitive
prefix, ``description`` by case-insensitive prefix, ``all`` by case-insensitive prefix of any
word of any of them. Sorted by ``created-date`` (default), ``last-accessed-date``,
``last-changed-date`` or ``name``, ``desc`` by default. ``NextToken`` is an opaque offset into
that order.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from typing import Any

from openkms.context import RequestContext
from openkms.secretsmanager.access import ANY, authorize
from openkms.secretsmanager.deps import Params, Result, SecretsDeps
from openkms.secretsmanager.describe import list_entry
from openkms.secretsmanager.errors import InvalidNextTokenException
from openkms.storage.secrets import SecretRecord

DEFAULT_PAGE = 100
_WORD = re.compile(r"[A-Za-z0-9]+")


def _fields(secret: SecretRecord, key: str) -> list[str]:
    if key == "name":
        return [secret.name]
    if key == "description":
        return [secret.description or ""]
    if key == "tag-key":
        return [k for k, _ in secret.tags]
    if key == "tag-value":
        return [v for _, v in secret.tags]
    if key == "primary-region":
        return [secret.primary_region or secret.region]
    if key == "owning-service":
        return [secret.owning_service] if secret.owning_service else []
    words: list[str] = []
    for text in [secret.name, secret.description or ""] + [x for kv in secret.tags for x in kv]:
        words.append(text)
        words.extend(_WORD.findall(text))
    return words


def _value_matches(secret: SecretRecord, key: str, value: str) -> bool:
    fold = key in ("description", "all")
    wanted = value.lower() if fold else value
    for field in _fields(secret, key):
        if (field.lower() if fold else field).startswith(wanted):
            return True
    return False


def _filter_matches(secret: SecretRecord, key: str, filter_values: Sequence[str]) -> bool:
    positive = [v for v in filter_values if not v.startswith("!")]
    negative = [v[1:] for v in filter_values if v.startswith("!")]
    if any(_value_matches(secret, key, v) for v in negative):
        return False
    return not positive or any(_value_matches(secret, key, v) for v in positive)


def matches(secret: SecretRecord, filters: Sequence[dict[str, Any]]) -> bool:
    return all(
        _filter_matches(secret, str(f.get("Key", "all")), [str(v) for v in f.get("Values", [])])
        for f in filters
    )


def _sort_key(sort_by: str) -> Any:
    if sort_by == "name":
        return lambda s: (s.name, s.arn)
    if sort_by == "last-accessed-date":
        return lambda s: (s.last_accessed_at or 0.0, s.arn)
    if sort_by == "last-changed-date":
        return lambda s: (s.last_changed_at, s.arn)
    return lambda s: (s.created_at, s.arn)


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
        if not text.startswith("o:"):
            raise ValueError(token)
        offset = int(text[2:])
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidNextTokenException("The NextToken value is invalid.") from exc
    if offset < 0:
        raise InvalidNextTokenException("The NextToken value is invalid.")
    return offset


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode()


def matching_page(
    deps: SecretsDeps,
    ctx: RequestContext,
    filters: Sequence[dict[str, Any]],
    req: Params,
    *,
    default_page: int = DEFAULT_PAGE,
    include_deleted: bool = False,
) -> tuple[list[SecretRecord], str | None]:
    """One page of the caller's secrets that match ``filters``, in the requested order, and
    the NextToken of the rest (None at the end)."""
    found = [
        s
        for s in deps.storage.list_secrets(ctx.principal.account_id, ctx.region)
        if (include_deleted or s.deleted_at is None) and matches(s, filters)
    ]
    found.sort(
        key=_sort_key(str(req.get("SortBy") or "created-date")),
        reverse=(req.get("SortOrder") or "desc") == "desc",
    )
    start = _offset(req.get("NextToken"))
    size = int(req.get("MaxResults") or default_page)
    page = found[start : start + size]
    more = start + size < len(found)
    return page, _token(start + size) if more else None


def list_secrets(deps: SecretsDeps, ctx: RequestContext, req: Params) -> Result:
    authorize(deps, ctx, "secretsmanager:ListSecrets", ANY, None, req)
    page, token = matching_page(
        deps,
        ctx,
        req.get("Filters") or [],
        req,
        include_deleted=bool(req.get("IncludePlannedDeletion")),
    )
    result: dict[str, Any] = {"SecretList": [list_entry(s) for s in page]}
    if token is not None:
        result["NextToken"] = token
    return result
