"""IAM roles: CreateRole, GetRole, ListRoles, DeleteRole, UpdateRole, UpdateAssumeRolePolicy,
their tags and their policies. A role's trust policy (``AssumeRolePolicyDocument``) says who
may assume it."""

from __future__ import annotations

import dataclasses
from typing import Any

from openkms.iam import LimitExceeded, MalformedPolicyDocument
from openkms.iam.authz import TRUST, validate_policy
from openkms.iam.entities import (
    ROLE,
    NewEntity,
    create_handler,
    delete_handler,
    get_handler,
    list_handler,
    tag_handlers,
    target,
)
from openkms.iam.entity_policies import policy_handlers
from openkms.iam.handler import IamDeps, Params, Result
from openkms.iam.store import ROLES, Role, decode_document, policy_size
from openkms.iam.unique_ids import bind_policy
from openkms.service.context import RequestContext
from openkms.storage.base import Storage

DEFAULT_MAX_SESSION_SECONDS = 3600
MAX_TRUST_POLICY_SIZE = 2048


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


def _build(deps: IamDeps, params: Params, new: NewEntity) -> Role:
    document, bindings = trust_policy(deps.storage, params["AssumeRolePolicyDocument"])
    return Role(
        name=new.name,
        role_id=new.entity_id,
        path=new.path,
        arn=new.arn,
        created_at=new.created_at,
        trust_policy=document,
        max_session_seconds=params.get("MaxSessionDuration", DEFAULT_MAX_SESSION_SECONDS),
        description=params.get("Description"),
        tags=new.tags,
        trust_principal_ids=bindings,
    )


def update_role(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
    store = target(deps, ctx, ROLE, "UpdateRole", params["RoleName"]).store
    with deps.storage.transaction():
        role = store.require_entity(ROLES, params["RoleName"])
        changes: dict[str, Any] = {}
        if "MaxSessionDuration" in params:
            changes["max_session_seconds"] = params["MaxSessionDuration"]
        if "Description" in params:
            changes["description"] = params["Description"]
        store.put_entity(ROLES, dataclasses.replace(role, **changes), ctx.now)
    return {}


def update_assume_role_policy(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
    store = target(deps, ctx, ROLE, "UpdateAssumeRolePolicy", params["RoleName"]).store
    document, bindings = trust_policy(deps.storage, params["PolicyDocument"])
    with deps.storage.transaction():
        role = store.require_entity(ROLES, params["RoleName"])
        store.put_entity(
            ROLES,
            dataclasses.replace(role, trust_policy=document, trust_principal_ids=bindings),
            ctx.now,
        )
    return None


OPERATIONS = {
    "CreateRole": create_handler(ROLE, _build),
    "GetRole": get_handler(ROLE),
    "ListRoles": list_handler(ROLE),
    "DeleteRole": delete_handler(ROLE),
    "UpdateRole": update_role,
    "UpdateAssumeRolePolicy": update_assume_role_policy,
    **tag_handlers(ROLE),
    **policy_handlers(ROLE),
}
