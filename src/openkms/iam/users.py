"""IAM users: CreateUser, GetUser, ListUsers, DeleteUser and their tags."""

from __future__ import annotations

from typing import Any

from openkms.iam import DeleteConflict, InvalidInput, ValidationError
from openkms.iam.authz import require
from openkms.iam.handler import IamDeps, Params, Result
from openkms.iam.store import (
    IamStore,
    User,
    account_store,
    name_from_arn,
    new_id,
    path_matches,
    request_tag_context,
    tags_from_params,
    tags_out,
)
from openkms.iam.tagging import tag_handlers
from openkms.service.accounts import root_arn
from openkms.service.context import RequestContext


def user_out(user: User, *, with_tags: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Path": user.path,
        "UserName": user.name,
        "UserId": user.user_id,
        "Arn": user.arn,
        "CreateDate": user.created_at,
    }
    if with_tags and user.tags:
        out["Tags"] = tags_out(user.tags)
    return out


def no_boundaries(params: Params) -> None:
    if "PermissionsBoundary" in params:
        raise InvalidInput("Permissions boundaries are not supported by this server.")


def user_arn_for(store: IamStore, name: str) -> tuple[User | None, str]:
    """(the user or None, its ARN — with path "/" when it does not exist)."""
    user = store.get_user(name)
    return user, user.arn if user is not None else store.arn("user", "/", name)


def caller_user_name(ctx: RequestContext, store: IamStore) -> str | None:
    """The caller's own user name, None for the account root; ValidationError for others."""
    principal = ctx.principal
    if principal.kind == "user":
        return name_from_arn(principal.arn)
    if principal.kind == "root":
        return None
    raise ValidationError("Must specify userName when calling with non-User credentials")


def create_user(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
    store = account_store(deps.storage, ctx.principal, deps.partition)
    no_boundaries(params)
    name, path = params["UserName"], params.get("Path", "/")
    tags = tags_from_params(params.get("Tags"))
    arn = store.arn("user", path, name)
    require(deps.storage, ctx, "iam:CreateUser", arn, request_tag_context(tags))
    user = User(name, new_id("AIDA"), path, arn, ctx.now, tags)
    with deps.storage.transaction():
        store.put_user(user, ctx.now, create=True)
    return {"User": user_out(user)}


def get_user(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
    store = account_store(deps.storage, ctx.principal, deps.partition)
    name = params.get("UserName") or caller_user_name(ctx, store)
    if name is None:  # the account root
        arn = root_arn(deps.partition, store.account_id)
        account = deps.storage.get_account(store.account_id)
        out: dict[str, Any] = {"UserId": store.account_id, "Arn": arn}
        if account is not None:
            out["CreateDate"] = account.created_at
        return {"User": out}
    user, arn = user_arn_for(store, name)
    require(deps.storage, ctx, "iam:GetUser", arn)
    user = store.require_user(name)
    return {"User": user_out(user)}


def list_users(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
    store = account_store(deps.storage, ctx.principal, deps.partition)
    prefix = params.get("PathPrefix")
    require(deps.storage, ctx, "iam:ListUsers", store.arn("user", prefix or "/", ""))
    page = store.page(
        "iam-user",
        User,
        marker=params.get("Marker"),
        max_items=params.get("MaxItems"),
        keep=lambda u: path_matches(u.path, prefix),
    )
    result: dict[str, Any] = {
        "Users": [user_out(u, with_tags=False) for u in page.items],
        "IsTruncated": page.truncated,
    }
    if page.marker:
        result["Marker"] = page.marker
    return result


def delete_user(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
    store = account_store(deps.storage, ctx.principal, deps.partition)
    name = params["UserName"]
    _, arn = user_arn_for(store, name)
    require(deps.storage, ctx, "iam:DeleteUser", arn)
    with deps.storage.transaction():
        user = store.require_user(name)
        keys = [
            k
            for k in deps.storage.list_access_keys(store.account_id)
            if k.principal_arn == user.arn
        ]
        if keys:
            raise DeleteConflict("Cannot delete entity, must delete access keys first.")
        if store.inline_policies("user", user.name):
            raise DeleteConflict("Cannot delete entity, must delete policies first.")
        if store.attachments("user", user.name):
            raise DeleteConflict("Cannot delete entity, must detach all policies first.")
        if store.group_names_of(user.name):
            raise DeleteConflict("Cannot delete entity, must remove users from group first.")
        store.delete_user(user)
    return None


OPERATIONS = {
    "CreateUser": create_user,
    "GetUser": get_user,
    "ListUsers": list_users,
    "DeleteUser": delete_user,
    **tag_handlers("user", "User"),
}
