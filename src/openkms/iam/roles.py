"""IAM roles: CreateRole, GetRole, ListRoles, DeleteRole, UpdateRole, UpdateAssumeRolePolicy
and their tags. A role's trust policy (``AssumeRolePolicyDocument``) says who may assume it."""

from __future__ import annotations

import dataclasses
from typing import Any

from openkms.iam import DeleteConflict, LimitExceeded, MalformedPolicyDocument
from openkms.iam.authz import TRUST, require, validate_policy
from openkms.iam.handler import IamDeps, Params, Result
from openkms.iam.store import (
    IamStore,
    Role,
    account_store,
    decode_document,
    encode_document,
    new_id,
    path_matches,
    policy_size,
    request_tag_context,
    tags_from_params,
    tags_out,
)
from openkms.iam.tagging import tag_handlers
from openkms.iam.unique_ids import bind_policy, stale
from openkms.iam.users import no_boundaries
from openkms.policy.principal_ids import substitute_principals
from openkms.service.context import RequestContext
from openkms.storage.base import Storage

DEFAULT_MAX_SESSION_SECONDS = 3600
MAX_TRUST_POLICY_SIZE = 2048


def shown_trust_policy(storage: Storage, role: Role) -> str:
    """The trust policy as IAM shows it: a named user or role that no longer exists (or exists
    again under a new unique id) appears as its unique id."""
    if not role.trust_principal_ids:
        return role.trust_policy
    return substitute_principals(role.trust_policy, stale(storage, role.trust_principal_ids))


def role_out(storage: Storage, role: Role, *, detail: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Path": role.path,
        "RoleName": role.name,
        "RoleId": role.role_id,
        "Arn": role.arn,
        "CreateDate": role.created_at,
        "AssumeRolePolicyDocument": encode_document(shown_trust_policy(storage, role)),
        "MaxSessionDuration": role.max_session_seconds,
    }
    if role.description is not None:
        out["Description"] = role.description
    if detail:
        if role.tags:
            out["Tags"] = tags_out(role.tags)
        out["RoleLastUsed"] = {}
    return out


def role_arn_for(store: IamStore, name: str) -> tuple[Role | None, str]:
    role = store.get_role(name)
    return role, role.arn if role is not None else store.arn("role", "/", name)


def trust_policy(storage: Storage, raw: str) -> tuple[str, dict[str, str]]:
    """The trust policy document, and the unique ids of the users and roles it names (which must
    exist, as in IAM)."""
    document = decode_document(raw)
    validate_policy(document, TRUST)
    if policy_size(document) > MAX_TRUST_POLICY_SIZE:
        raise LimitExceeded(f"Cannot exceed quota for ACLSizePerRole: {MAX_TRUST_POLICY_SIZE}")
    bindings, invalid = bind_policy(storage, document)
    if invalid:
        raise MalformedPolicyDocument(f'Invalid principal in policy: "AWS":"{invalid[0]}"')
    return document, bindings


def create_role(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
    store = account_store(deps.storage, ctx.principal, deps.partition)
    no_boundaries(params)
    name, path = params["RoleName"], params.get("Path", "/")
    tags = tags_from_params(params.get("Tags"))
    arn = store.arn("role", path, name)
    require(deps.storage, ctx, "iam:CreateRole", arn, request_tag_context(tags))
    document, bindings = trust_policy(deps.storage, params["AssumeRolePolicyDocument"])
    role = Role(
        name=name,
        role_id=new_id("AROA"),
        path=path,
        arn=arn,
        created_at=ctx.now,
        trust_policy=document,
        max_session_seconds=params.get("MaxSessionDuration", DEFAULT_MAX_SESSION_SECONDS),
        description=params.get("Description"),
        tags=tags,
        trust_principal_ids=bindings,
    )
    with deps.storage.transaction():
        store.put_role(role, ctx.now, create=True)
    out = role_out(deps.storage, role, detail=False)
    return {"Role": out | ({"Tags": tags_out(tags)} if tags else {})}


def get_role(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
    store = account_store(deps.storage, ctx.principal, deps.partition)
    _, arn = role_arn_for(store, params["RoleName"])
    require(deps.storage, ctx, "iam:GetRole", arn)
    return {"Role": role_out(deps.storage, store.require_role(params["RoleName"]))}


def list_roles(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
    store = account_store(deps.storage, ctx.principal, deps.partition)
    prefix = params.get("PathPrefix")
    require(deps.storage, ctx, "iam:ListRoles", store.arn("role", prefix or "/", ""))
    page = store.page(
        "iam-role",
        Role,
        marker=params.get("Marker"),
        max_items=params.get("MaxItems"),
        keep=lambda r: path_matches(r.path, prefix),
    )
    result: dict[str, Any] = {
        "Roles": [role_out(deps.storage, r, detail=False) for r in page.items],
        "IsTruncated": page.truncated,
    }
    if page.marker:
        result["Marker"] = page.marker
    return result


def delete_role(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
    store = account_store(deps.storage, ctx.principal, deps.partition)
    _, arn = role_arn_for(store, params["RoleName"])
    require(deps.storage, ctx, "iam:DeleteRole", arn)
    with deps.storage.transaction():
        role = store.require_role(params["RoleName"])
        if store.inline_policies("role", role.name):
            raise DeleteConflict("Cannot delete entity, must delete policies first.")
        if store.attachments("role", role.name):
            raise DeleteConflict("Cannot delete entity, must detach all policies first.")
        store.delete_role(role)
    return None


def update_role(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
    store = account_store(deps.storage, ctx.principal, deps.partition)
    _, arn = role_arn_for(store, params["RoleName"])
    require(deps.storage, ctx, "iam:UpdateRole", arn)
    with deps.storage.transaction():
        role = store.require_role(params["RoleName"])
        changes: dict[str, Any] = {}
        if "MaxSessionDuration" in params:
            changes["max_session_seconds"] = params["MaxSessionDuration"]
        if "Description" in params:
            changes["description"] = params["Description"]
        store.put_role(dataclasses.replace(role, **changes), ctx.now)
    return {}


def update_assume_role_policy(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
    store = account_store(deps.storage, ctx.principal, deps.partition)
    _, arn = role_arn_for(store, params["RoleName"])
    require(deps.storage, ctx, "iam:UpdateAssumeRolePolicy", arn)
    document, bindings = trust_policy(deps.storage, params["PolicyDocument"])
    with deps.storage.transaction():
        role = store.require_role(params["RoleName"])
        store.put_role(
            dataclasses.replace(role, trust_policy=document, trust_principal_ids=bindings),
            ctx.now,
        )
    return None


OPERATIONS = {
    "CreateRole": create_role,
    "GetRole": get_role,
    "ListRoles": list_roles,
    "DeleteRole": delete_role,
    "UpdateRole": update_role,
    "UpdateAssumeRolePolicy": update_assume_role_policy,
    **tag_handlers("role", "Role"),
}
