"""Tag, Untag and List…Tags for IAM users and roles: one implementation for both kinds."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from openkms.iam.authz import require
from openkms.iam.handler import Handler, IamDeps, Params, Result
from openkms.iam.store import (
    IamStore,
    account_store,
    merge_tags,
    remove_tags,
    request_tag_context,
    tags_from_params,
    tags_out,
)
from openkms.service.context import RequestContext


def tag_handlers(kind: str, label: str) -> dict[str, Handler]:
    """TagUser/UntagUser/ListUserTags (``kind`` "user", ``label`` "User"), likewise for roles."""
    name_param = f"{label}Name"

    def arn_of(store: IamStore, name: str) -> str:
        entity = getattr(store, f"get_{kind}")(name)
        return str(entity.arn) if entity is not None else store.arn(kind, "/", name)

    def update(
        store: IamStore, ctx: RequestContext, name: str, change: Callable[[Any], Any]
    ) -> None:
        entity = getattr(store, f"require_{kind}")(name)
        getattr(store, f"put_{kind}")(
            dataclasses.replace(entity, tags=change(entity.tags)), ctx.now
        )

    def tag(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
        store = account_store(deps.storage, ctx.principal, deps.partition)
        tags = tags_from_params(params["Tags"])
        arn = arn_of(store, params[name_param])
        require(deps.storage, ctx, f"iam:Tag{label}", arn, request_tag_context(tags))
        with deps.storage.transaction():
            update(store, ctx, params[name_param], lambda current: merge_tags(current, tags))
        return None

    def untag(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
        store = account_store(deps.storage, ctx.principal, deps.partition)
        keys: list[str] = params["TagKeys"]
        arn = arn_of(store, params[name_param])
        require(deps.storage, ctx, f"iam:Untag{label}", arn, {"aws:TagKeys": tuple(keys)})
        with deps.storage.transaction():
            update(store, ctx, params[name_param], lambda current: remove_tags(current, keys))
        return None

    def list_tags(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
        store = account_store(deps.storage, ctx.principal, deps.partition)
        arn = arn_of(store, params[name_param])
        require(deps.storage, ctx, f"iam:List{label}Tags", arn)
        entity = getattr(store, f"require_{kind}")(params[name_param])
        return {"Tags": tags_out(entity.tags), "IsTruncated": False}

    return {f"Tag{label}": tag, f"Untag{label}": untag, f"List{label}Tags": list_tags}
