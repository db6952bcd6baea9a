"""Tags of a secret: TagResource, UntagResource, and the checks CreateSecret shares. At most
50 tags; keys beginning with ``aws:`` are reserved; a key given twice keeps its last value."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from openkms.context import RequestContext
from openkms.secretsmanager.access import authorize
from openkms.secretsmanager.deps import Params, Result, SecretsDeps
from openkms.secretsmanager.errors import InvalidParameterException
from openkms.secretsmanager.lookup import resolve
from openkms.storage.secrets import Tags

MAX_TAGS = 50


def tags_from(request_tags: Sequence[dict[str, Any]] | None) -> Tags:
    merged: dict[str, str] = {}
    for tag in request_tags or ():
        key, value = tag.get("Key"), tag.get("Value")
        if key is None or value is None:
            raise InvalidParameterException("A tag must have both a key and a value.")
        if str(key).lower().startswith("aws:"):
            raise InvalidParameterException(
                "Invalid tag key: tag keys that begin with aws: are reserved for AWS use."
            )
        merged[str(key)] = str(value)
    return tuple(merged.items())


def merged_tags(current: Tags, added: Tags) -> Tags:
    merged = dict(current)
    merged.update(added)
    if len(merged) > MAX_TAGS:
        raise InvalidParameterException(
            f"The number of tags on the secret can't exceed {MAX_TAGS}."
        )
    return tuple(merged.items())


def authorize_tagging(deps: SecretsDeps, ctx: RequestContext, arn: str, req: Params) -> None:
    """CreateSecret with tags also needs secretsmanager:TagResource, as on AWS."""
    authorize(deps, ctx, "secretsmanager:TagResource", arn, None, req)


def tag_resource(deps: SecretsDeps, ctx: RequestContext, req: Params) -> Result:
    added = tags_from(req["Tags"])
    storage = deps.storage
    with storage.transaction():
        secret = resolve(deps, ctx, req["SecretId"], "secretsmanager:TagResource", req, lock=True)
        tags = merged_tags(secret.tags, added)
        storage.update_secret(dataclasses.replace(secret, tags=tags, last_changed_at=ctx.now))
    return {}


def untag_resource(deps: SecretsDeps, ctx: RequestContext, req: Params) -> Result:
    gone = set(req["TagKeys"])
    storage = deps.storage
    with storage.transaction():
        secret = resolve(deps, ctx, req["SecretId"], "secretsmanager:UntagResource", req, lock=True)
        tags = tuple((k, v) for k, v in secret.tags if k not in gone)
        storage.update_secret(dataclasses.replace(secret, tags=tags, last_changed_at=ctx.now))
    return {}
