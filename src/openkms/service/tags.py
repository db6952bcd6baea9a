"""Tags: TagResource, UntagResource, ListResourceTags."""

from __future__ import annotations

from typing import Any

from openkms.domain.key import require_not_pending_deletion
from openkms.service.common import check_tag_limit, decode_marker, encode_marker, tags_from_request
from openkms.service.context import RequestContext
from openkms.service.runtime import Runtime


def tag_resource(rt: Runtime, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    key = rt.resolve_key(ctx, req["KeyId"], allow_alias=False)
    rt.access.authorize_key(ctx, "kms:TagResource", key, req)
    require_not_pending_deletion(key)
    tags = tags_from_request(req["Tags"])
    with rt.storage.transaction():
        check_tag_limit(rt.storage.get_tags(key.arn), tags)
        rt.storage.put_tags(key.arn, tags)
    return {}


def untag_resource(rt: Runtime, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    key = rt.resolve_key(ctx, req["KeyId"], allow_alias=False)
    rt.access.authorize_key(ctx, "kms:UntagResource", key, req)
    require_not_pending_deletion(key)
    rt.storage.delete_tags(key.arn, req["TagKeys"])
    return {}


def list_resource_tags(rt: Runtime, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    key = rt.resolve_key(ctx, req["KeyId"], allow_alias=False)
    rt.access.authorize_key(ctx, "kms:ListResourceTags", key, req)
    limit = req.get("Limit") or 50
    after = decode_marker(req.get("Marker")) or ""
    items = [(k, v) for k, v in rt.storage.get_tags(key.arn).items() if k > after]
    result: dict[str, Any] = {
        "Tags": [{"TagKey": k, "TagValue": v} for k, v in items[:limit]],
        "Truncated": len(items) > limit,
    }
    if len(items) > limit:
        result["NextMarker"] = encode_marker(items[limit - 1][0])
    return result
