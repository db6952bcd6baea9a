"""Key search and keys-by-state: openkms extensions (not AWS operations) for the console's key
list and overview at 100,000 keys (issue #20; docs/compatibility.md, "Key search").

Authorization. Both are authorized as ``kms:ListKeys`` on the account, like ListKeys, and see
only the caller's own account and Region. A key is returned (or counted) only when the caller may
``kms:DescribeKey`` it, asked of the same policy code as DescribeKey itself, key by key; a match
on an alias name needs ``kms:ListAliases`` too, and a match on a tag ``kms:ListResourceTags`` on
that key, and the ``RotationDueBefore`` filter ``kms:GetKeyRotationStatus``. The storage index
only proposes candidates; every match is re-checked here against the record.

No information leak. What an answer holds must follow from what the caller may see anyway:
the keys he may describe, and the account's key ids (which ListKeys gives him). So a request
covers a *window* of the account's keys fixed by key ids alone (the next ``WINDOW`` keys after
the marker, matching or not) and ends either when the page is full (the marker is then the last
key returned, which he may see) or at the window's end. Neither the marker nor ``Truncated`` nor
the page depends on how many keys he may not see matched; a budget counted in candidates would
(it would stop at a key he may not see, and only when enough of them matched).

Bounded cost. A request reads at most ``WINDOW`` index entries and checks at most ``WINDOW``
candidates (the worst case: every key of the window matches and the caller may see none); the
text is at most 256 characters and matched as a plain substring (no LIKE: ``%`` and ``_`` mean
themselves)."""

from __future__ import annotations

from typing import Any

from openkms.domain.key import KeyRecord
from openkms.errors import AccessDeniedException, SerializationException, ValidationException
from openkms.service.common import decode_marker, encode_marker
from openkms.service.context import RequestContext
from openkms.service.grant_store import KIND as GRANT_KIND
from openkms.service.runtime import Runtime
from openkms.storage.records import KeyQuery, ascii_lower
from openkms.types import KeySpec, KeyState, KeyUsageType, OriginType

# Keys of the account one request covers (module docstring): the bound on its work.
WINDOW = 10_000
# Candidates read from the index at a time, so a full page stops the reading early.
BATCH = 200
MAX_TEXT = 256
MAX_LIMIT = 100
DEFAULT_LIMIT = 50
MAX_MARKER = 1024

_ENUMS: dict[str, tuple[str, frozenset[str]]] = {
    "KeyState": ("keyState", frozenset(s.value for s in KeyState)),
    "KeySpec": ("keySpec", frozenset(s.value for s in KeySpec)),
    "KeyUsage": ("keyUsage", frozenset(s.value for s in KeyUsageType)),
    "Origin": ("origin", frozenset(s.value for s in OriginType)),
}


def _string(req: dict[str, Any], member: str) -> str | None:
    value = req.get(member)
    if value is None or isinstance(value, str):
        return value
    raise SerializationException(f"{_json_kind(value)} can not be converted to a String")


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "TRUE_VALUE" if value else "FALSE_VALUE"
    if isinstance(value, (int, float)):
        return "NUMBER_VALUE"
    if isinstance(value, list):
        return "Start of list found where not expected"
    return "Start of structure or map found where not expected"


def _constraint(value: Any, path: str, rule: str) -> str:
    shown = value if len(str(value)) <= 64 else str(value)[:64] + "..."
    return f"Value '{shown}' at '{path}' failed to satisfy constraint: {rule}"


_AT_LEAST_ONE = "greater than or equal to 1"
_AT_MOST = "less than or equal to"


def _marker_errors(marker: str | None) -> list[str]:
    if marker is None:
        return []
    if not marker:
        return [_constraint(marker, "marker", f"Member must have length {_AT_LEAST_ONE}")]
    if len(marker) > MAX_MARKER:
        return [_constraint(marker, "marker", f"Member must have length {_AT_MOST} {MAX_MARKER}")]
    return []


def _validate(req: dict[str, Any]) -> tuple[KeyQuery, int, str | None]:
    """(query, limit, position after) from the request, or AWS's validation errors."""
    errors: list[str] = []
    text = _string(req, "Text") or ""
    if len(text) > MAX_TEXT:
        errors.append(
            _constraint(text, "text", f"Member must have length {_AT_MOST} {MAX_TEXT}")
        )
    wanted: dict[str, str | None] = {}
    for member, (path, allowed) in _ENUMS.items():
        value = _string(req, member)
        if value is not None and value not in allowed:
            errors.append(
                _constraint(
                    value,
                    path,
                    f"Member must satisfy enum value set: [{', '.join(sorted(allowed))}]",
                )
            )
        wanted[member] = value
    multi = req.get("MultiRegion")
    if multi is not None and not isinstance(multi, bool):
        raise SerializationException(f"{_json_kind(multi)} can not be converted to a Boolean")
    due = req.get("RotationDueBefore")
    if due is not None and (isinstance(due, bool) or not isinstance(due, (int, float))):
        raise SerializationException(f"{_json_kind(due)} can not be converted to a Timestamp")
    limit = req.get("Limit", DEFAULT_LIMIT)
    if limit is None:
        limit = DEFAULT_LIMIT
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise SerializationException(f"{_json_kind(limit)} can not be converted to an Integer")
    if limit < 1:
        errors.append(_constraint(limit, "limit", f"Member must have value {_AT_LEAST_ONE}"))
    elif limit > MAX_LIMIT:
        errors.append(
            _constraint(limit, "limit", f"Member must have value {_AT_MOST} {MAX_LIMIT}")
        )
    marker = _string(req, "Marker")
    errors += _marker_errors(marker)
    if errors:
        plural = "s" if len(errors) > 1 else ""
        summary = f"{len(errors)} validation error{plural} detected: "
        raise ValidationException(summary + "; ".join(errors))
    query = KeyQuery(
        text=ascii_lower(text.strip()),
        key_state=wanted["KeyState"],
        key_spec=wanted["KeySpec"],
        key_usage=wanted["KeyUsage"],
        origin=wanted["Origin"],
        multi_region=multi,
        rotation_due_before=float(due) if due is not None else None,
    )
    return query, limit, decode_marker(marker)


def _prime_grants(rt: Runtime, batch: list[KeyRecord]) -> None:
    """Authorization reads each key's grants (runtime's grant cache, else one query a key).
    For a batch, one query says which keys have any; those without get the empty list the
    cache would have read for them. Only absent grants are primed, so nothing is allowed that
    a grant does not allow (a grant created meanwhile is missed for at most the cache TTL, as
    by the cache itself, and only ever hides a key)."""
    cache = rt.grant_cache
    unknown = [k.arn for k in batch if cache.get(k.arn) is None]
    if not unknown:
        return
    with_grants = rt.storage.scopes_with_documents(GRANT_KIND, unknown)
    for arn in unknown:
        if arn not in with_grants:
            cache.put(arn, [])


def _may(rt: Runtime, ctx: RequestContext, action: str, key: KeyRecord) -> bool:
    """Whether the caller may perform ``action`` on ``key``: the operations' own check."""
    try:
        rt.access.authorize_key(ctx, action, key, {})
    except AccessDeniedException:
        return False
    return True


def _may_list_aliases(rt: Runtime, ctx: RequestContext) -> bool:
    try:
        rt.access.authorize_account(ctx, "kms:ListAliases", "*", {})
    except AccessDeniedException:
        return False
    return True


class _Matcher:
    """Whether a candidate the caller may describe matches the text, through what he may see:
    its id and description (DescribeKey), its aliases (with ListAliases), its tags (with
    ListResourceTags on the key)."""

    def __init__(self, rt: Runtime, ctx: RequestContext, text: str) -> None:
        self._rt = rt
        self._ctx = ctx
        self._text = text
        self._aliases_visible: bool | None = None

    def matches(self, key: KeyRecord) -> bool:
        text = self._text
        if not text or text in key.key_id or text in ascii_lower(key.description):
            return True
        storage = self._rt.storage
        if self._aliases_visible is None:
            self._aliases_visible = _may_list_aliases(self._rt, self._ctx)
        if self._aliases_visible:
            aliases = storage.list_aliases(key.account_id, key.region, key.key_id, None, 100)
            if any(text in ascii_lower(a.alias_name) for a in aliases):
                return True
        tags = storage.get_tags(key.arn)
        if not any(text in ascii_lower(k) or text in ascii_lower(v) for k, v in tags.items()):
            return False
        return _may(self._rt, self._ctx, "kms:ListResourceTags", key)


def search_keys(rt: Runtime, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    """``OpenKMS.SearchKeys``: the keys of the window after ``Marker`` that match and that the
    caller may describe, in key id order."""
    query, limit, after = _validate(req)  # AWS validates before it authorizes
    rt.access.authorize_account(ctx, "kms:ListKeys", "*", req)
    account, region = ctx.principal.account_id, ctx.region
    window_end = rt.storage.key_id_after(account, region, after, WINDOW)
    matcher = _Matcher(rt, ctx, query.text)
    found: list[KeyRecord] = []
    cursor = after
    while len(found) < limit:
        batch = rt.storage.search_keys(account, region, query, cursor, window_end, BATCH)
        _prime_grants(rt, batch)
        for key in batch:
            cursor = key.key_id
            if (
                query.admits(key)
                and _may(rt, ctx, "kms:DescribeKey", key)
                and (
                    # When the rotation is due is GetKeyRotationStatus's to tell.
                    query.rotation_due_before is None
                    or _may(rt, ctx, "kms:GetKeyRotationStatus", key)
                )
                and matcher.matches(key)
            ):
                found.append(key)
                if len(found) == limit:
                    break
        if len(batch) < BATCH:
            break
    result: dict[str, Any] = {"Keys": [{"KeyId": k.key_id, "KeyArn": k.arn} for k in found]}
    if len(found) == limit:
        # Full: the next page starts after the last key returned (one the caller may see).
        result.update(Truncated=True, NextMarker=encode_marker(found[-1].key_id))
    elif window_end is not None:
        result.update(Truncated=True, NextMarker=encode_marker(window_end))
    else:
        result["Truncated"] = False
    return result


def count_keys_by_state(rt: Runtime, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    """``OpenKMS.CountKeysByState``: how many keys of the window after ``Marker`` the caller may
    describe, by key state. A console sums the windows."""
    marker = _string(req, "Marker")
    errors = _marker_errors(marker)
    if errors:
        raise ValidationException("1 validation error detected: " + errors[0])
    after = decode_marker(marker)
    rt.access.authorize_account(ctx, "kms:ListKeys", "*", req)
    account, region = ctx.principal.account_id, ctx.region
    counts: dict[str, int] = {}
    cursor = after
    seen = 0
    while seen < WINDOW:
        batch = rt.storage.list_keys(account, region, cursor, min(BATCH * 5, WINDOW - seen))
        _prime_grants(rt, batch)
        for key in batch:
            if _may(rt, ctx, "kms:DescribeKey", key):
                counts[key.state] = counts.get(key.state, 0) + 1
        seen += len(batch)
        if not batch:
            break
        cursor = batch[-1].key_id
    result: dict[str, Any] = {"KeyStates": dict(sorted(counts.items()))}
    more = seen >= WINDOW and rt.storage.key_id_after(account, region, cursor, 1) is not None
    if more and cursor is not None:
        result.update(Truncated=True, NextMarker=encode_marker(cursor))
    else:
        result["Truncated"] = False
    return result
