"""IAM groups and their members: CreateGroup, GetGroup, ListGroups, DeleteGroup,
AddUserToGroup, RemoveUserFromGroup, ListGroupsForUser, and the groups' policies."""

from __future__ import annotations

from openkms.iam import LimitExceeded, NoSuchEntity
from openkms.iam.entities import (
    GROUP,
    USER,
    NewEntity,
    create_handler,
    delete_handler,
    group_out,
    list_handler,
    listing,
    target,
    user_out,
)
from openkms.iam.entity_policies import policy_handlers
from openkms.iam.handler import IamDeps, Params, Result
from openkms.iam.store import GROUPS, USERS, Group, Membership, key_of
from openkms.service.context import RequestContext

MAX_GROUPS_PER_USER = 10


def _build(deps: IamDeps, params: Params, new: NewEntity) -> Group:
    return Group(new.name, new.entity_id, new.path, new.arn, new.created_at)


def get_group(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
    """The group and a page of its members."""
    name = params["GroupName"]
    store = target(deps, ctx, GROUP, "GetGroup", name).store
    group = store.require_entity(GROUPS, name)
    page = store.page(
        "iam-membership",
        Membership,
        prefix=f"group/{key_of(group.name)}/",
        marker=params.get("Marker"),
        max_items=params.get("MaxItems"),
    )
    users = [store.get_user(m.user) for m in page.items]
    members = [user_out(deps.storage, u, False) for u in users if u]
    result = listing({"Users": members, "IsTruncated": page.truncated}, page.marker)
    result["Group"] = group_out(deps.storage, group)
    return result


def add_user_to_group(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
    store = target(deps, ctx, GROUP, "AddUserToGroup", params["GroupName"]).store
    with deps.storage.transaction():
        group = store.require_entity(GROUPS, params["GroupName"])
        user = store.require_entity(USERS, params["UserName"])
        if store.is_member(group, user):
            return None
        if len(store.group_names_of(user.name)) >= MAX_GROUPS_PER_USER:
            raise LimitExceeded(f"Cannot exceed quota for GroupsPerUser: {MAX_GROUPS_PER_USER}")
        store.add_member(group, user, ctx.now)
    return None


def remove_user_from_group(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
    store = target(deps, ctx, GROUP, "RemoveUserFromGroup", params["GroupName"]).store
    with deps.storage.transaction():
        group = store.require_entity(GROUPS, params["GroupName"])
        user = store.require_entity(USERS, params["UserName"])
        if not store.remove_member(group, user):
            raise NoSuchEntity(f"User {user.name} is not in group {group.name}.")
    return None


def list_groups_for_user(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
    store = target(deps, ctx, USER, "ListGroupsForUser", params["UserName"]).store
    user = store.require_entity(USERS, params["UserName"])
    page = store.page(
        "iam-membership",
        Membership,
        prefix=f"user/{key_of(user.name)}/",
        marker=params.get("Marker"),
        max_items=params.get("MaxItems"),
    )
    groups = [store.get_group(m.group) for m in page.items]
    shown = [group_out(deps.storage, g) for g in groups if g]
    return listing({"Groups": shown, "IsTruncated": page.truncated}, page.marker)


OPERATIONS = {
    "CreateGroup": create_handler(GROUP, _build),
    "GetGroup": get_group,
    "ListGroups": list_handler(GROUP),
    "DeleteGroup": delete_handler(GROUP),
    "AddUserToGroup": add_user_to_group,
    "RemoveUserFromGroup": remove_user_from_group,
    "ListGroupsForUser": list_groups_for_user,
    **policy_handlers(GROUP),
}
