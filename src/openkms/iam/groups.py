"""IAM groups and their members: CreateGroup, GetGroup, ListGroups, DeleteGroup,
AddUserToGroup, RemoveUserFromGroup, ListGroupsForUser."""

from __future__ import annotations

from typing import Any

from openkms.iam import DeleteConflict, LimitExceeded, NoSuchEntity
from openkms.iam.authz import require
from openkms.iam.handler import IamDeps, Params, Result
from openkms.iam.store import (
    Group,
    IamStore,
    Membership,
    Page,
    account_store,
    key_of,
    new_id,
    path_matches,
)
from openkms.iam.users import user_arn_for, user_out
from openkms.service.context import RequestContext

MAX_GROUPS_PER_USER = 10


def group_out(group: Group) -> dict[str, Any]:
    return {
        "Path": group.path,
        "GroupName": group.name,
        "GroupId": group.group_id,
        "Arn": group.arn,
        "CreateDate": group.created_at,
    }


def group_arn_for(store: IamStore, name: str) -> tuple[Group | None, str]:
    group = store.get_group(name)
    return group, group.arn if group is not None else store.arn("group", "/", name)


def _listing(page: Page, key: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {key: items, "IsTruncated": page.truncated}
    if page.marker:
        result["Marker"] = page.marker
    return result


def create_group(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
    store = account_store(deps.storage, ctx.principal, deps.partition)
    name, path = params["GroupName"], params.get("Path", "/")
    arn = store.arn("group", path, name)
    require(deps.storage, ctx, "iam:CreateGroup", arn)
    group = Group(name, new_id("AGPA"), path, arn, ctx.now)
    with deps.storage.transaction():
        store.put_group(group, ctx.now, create=True)
    return {"Group": group_out(group)}


def get_group(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
    store = account_store(deps.storage, ctx.principal, deps.partition)
    _, arn = group_arn_for(store, params["GroupName"])
    require(deps.storage, ctx, "iam:GetGroup", arn)
    group = store.require_group(params["GroupName"])
    page = store.page(
        "iam-membership",
        Membership,
        prefix=f"group/{key_of(group.name)}/",
        marker=params.get("Marker"),
        max_items=params.get("MaxItems"),
    )
    users = [store.get_user(m.user) for m in page.items]
    result = _listing(page, "Users", [user_out(u, with_tags=False) for u in users if u])
    result["Group"] = group_out(group)
    return result


def list_groups(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
    store = account_store(deps.storage, ctx.principal, deps.partition)
    prefix = params.get("PathPrefix")
    require(deps.storage, ctx, "iam:ListGroups", store.arn("group", prefix or "/", ""))
    page = store.page(
        "iam-group",
        Group,
        marker=params.get("Marker"),
        max_items=params.get("MaxItems"),
        keep=lambda g: path_matches(g.path, prefix),
    )
    return _listing(page, "Groups", [group_out(g) for g in page.items])


def delete_group(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
    store = account_store(deps.storage, ctx.principal, deps.partition)
    _, arn = group_arn_for(store, params["GroupName"])
    require(deps.storage, ctx, "iam:DeleteGroup", arn)
    with deps.storage.transaction():
        group = store.require_group(params["GroupName"])
        if store.member_names_of(group.name):
            raise DeleteConflict("Cannot delete entity, must remove users from group first.")
        if store.inline_policies("group", group.name):
            raise DeleteConflict("Cannot delete entity, must delete policies first.")
        if store.attachments("group", group.name):
            raise DeleteConflict("Cannot delete entity, must detach all policies first.")
        store.delete_group(group)
    return None


def add_user_to_group(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
    store = account_store(deps.storage, ctx.principal, deps.partition)
    _, arn = group_arn_for(store, params["GroupName"])
    require(deps.storage, ctx, "iam:AddUserToGroup", arn)
    with deps.storage.transaction():
        group = store.require_group(params["GroupName"])
        user = store.require_user(params["UserName"])
        if store.is_member(group, user):
            return None
        if len(store.group_names_of(user.name)) >= MAX_GROUPS_PER_USER:
            raise LimitExceeded(f"Cannot exceed quota for GroupsPerUser: {MAX_GROUPS_PER_USER}")
        store.add_member(group, user, ctx.now)
    return None


def remove_user_from_group(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
    store = account_store(deps.storage, ctx.principal, deps.partition)
    _, arn = group_arn_for(store, params["GroupName"])
    require(deps.storage, ctx, "iam:RemoveUserFromGroup", arn)
    with deps.storage.transaction():
        group = store.require_group(params["GroupName"])
        user = store.require_user(params["UserName"])
        if not store.remove_member(group, user):
            raise NoSuchEntity(f"User {user.name} is not in group {group.name}.")
    return None


def list_groups_for_user(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
    store = account_store(deps.storage, ctx.principal, deps.partition)
    _, arn = user_arn_for(store, params["UserName"])
    require(deps.storage, ctx, "iam:ListGroupsForUser", arn)
    user = store.require_user(params["UserName"])
    page = store.page(
        "iam-membership",
        Membership,
        prefix=f"user/{key_of(user.name)}/",
        marker=params.get("Marker"),
        max_items=params.get("MaxItems"),
    )
    groups = [store.get_group(m.group) for m in page.items]
    return _listing(page, "Groups", [group_out(g) for g in groups if g])


OPERATIONS = {
    "CreateGroup": create_group,
    "GetGroup": get_group,
    "ListGroups": list_groups,
    "DeleteGroup": delete_group,
    "AddUserToGroup": add_user_to_group,
    "RemoveUserFromGroup": remove_user_from_group,
    "ListGroupsForUser": list_groups_for_user,
}
