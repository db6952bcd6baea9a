"""Policies: customer managed policies and their versions, attaching them to users, groups and
roles, and inline policies embedded in those entities.

Documents arrive as JSON (or URL-encoded JSON) and are returned URL-encoded, as IAM does.
Limits as IAM's defaults: 5 versions per managed policy, 6,144 characters per managed policy,
10 managed policies per user/group/role, and an aggregate of 2,048 (user), 5,120 (group) or
10,240 (role) characters of inline policies — whitespace not counted.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from openkms.iam import DeleteConflict, InvalidInput, LimitExceeded, NoSuchEntity
from openkms.iam.authz import IDENTITY, require, simulate, validate_policy
from openkms.iam.groups import group_arn_for
from openkms.iam.principals import entity_policies
from openkms.iam.roles import role_arn_for
from openkms.iam.store import (
    Attachment,
    IamStore,
    InlinePolicy,
    ManagedPolicy,
    PolicyVersion,
    account_store,
    decode_document,
    encode_document,
    new_id,
    path_matches,
    policy_size,
    tags_from_params,
    tags_out,
)
from openkms.iam.users import user_arn_for
from openkms.service.context import Principal, RequestContext

if TYPE_CHECKING:
    from openkms.iam.dispatch import IamDeps

Params = dict[str, Any]
Result = dict[str, Any] | None
Handler = Callable[["IamDeps", RequestContext, Params], Result]

MAX_VERSIONS = 5
MAX_MANAGED_POLICY_SIZE = 6144
MAX_ATTACHED = 10
MAX_INLINE_SIZE = {"user": 2048, "group": 5120, "role": 10240}
_POLICY_ARN = re.compile(r"arn:[a-z-]+:iam::(\d{12}|aws):policy(/.*)?/[\w+=,.@-]+")

# kind -> (the request parameter naming the entity, the label in action names)
_KINDS: dict[str, tuple[str, str]] = {
    "user": ("UserName", "User"),
    "group": ("GroupName", "Group"),
    "role": ("RoleName", "Role"),
}


def _entity(store: IamStore, kind: str, name: str) -> tuple[bool, str, str]:
    """(exists, ARN, exact name) of the user, group or role ``name``."""
    if kind == "user":
        user, arn = user_arn_for(store, name)
        return user is not None, arn, user.name if user else name
    if kind == "group":
        group, arn = group_arn_for(store, name)
        return group is not None, arn, group.name if group else name
    role, arn = role_arn_for(store, name)
    return role is not None, arn, role.name if role else name


def _require_entity(kind: str, name: str, exists: bool) -> None:
    if not exists:
        raise NoSuchEntity(f"The {kind} with name {name} cannot be found.")


def policy_out(policy: ManagedPolicy) -> dict[str, Any]:
    out: dict[str, Any] = {
        "PolicyName": policy.name,
        "PolicyId": policy.policy_id,
        "Arn": policy.arn,
        "Path": policy.path,
        "DefaultVersionId": policy.default_version,
        "AttachmentCount": policy.attachment_count,
        "PermissionsBoundaryUsageCount": 0,
        "IsAttachable": True,
        "CreateDate": policy.created_at,
        "UpdateDate": policy.updated_at,
    }
    if policy.description is not None:
        out["Description"] = policy.description
    if policy.tags:
        out["Tags"] = tags_out(policy.tags)
    return out


def _check_policy_arn(arn: str) -> None:
    if not _POLICY_ARN.fullmatch(arn):
        raise InvalidInput(f"ARN {arn} is not valid.")


def _policy(store: IamStore, arn: str) -> ManagedPolicy:
    _check_policy_arn(arn)
    policy = store.policy_by_arn(arn)
    if policy is None:
        raise NoSuchEntity(f"Policy {arn} was not found.")
    return policy


def _managed_document(raw: str) -> str:
    document = decode_document(raw)
    validate_policy(document, IDENTITY)
    if policy_size(document) > MAX_MANAGED_POLICY_SIZE:
        raise LimitExceeded(f"Cannot exceed quota for PolicySize: {MAX_MANAGED_POLICY_SIZE}")
    return document


def _version_number(version_id: str) -> int:
    return int(version_id[1:].split(".")[0])


# --- managed policies ----------------------------------------------------------------------
def create_policy(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
    store = account_store(deps.storage, ctx.principal, deps.partition)
    name, path = params["PolicyName"], params.get("Path", "/")
    arn = store.arn("policy", path, name)
    require(deps.storage, ctx, "iam:CreatePolicy", arn)
    document = _managed_document(params["PolicyDocument"])
    policy = ManagedPolicy(
        name=name,
        policy_id=new_id("ANPA"),
        path=path,
        arn=arn,
        created_at=ctx.now,
        updated_at=ctx.now,
        description=params.get("Description"),
        tags=tags_from_params(params.get("Tags")),
    )
    with deps.storage.transaction():
        store.put_policy(policy, ctx.now, create=True)
        store.put_policy_version(policy, PolicyVersion("v1", document, ctx.now), ctx.now)
    return {"Policy": policy_out(policy)}


def get_policy(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
    store = account_store(deps.storage, ctx.principal, deps.partition)
    require(deps.storage, ctx, "iam:GetPolicy", params["PolicyArn"])
    return {"Policy": policy_out(_policy(store, params["PolicyArn"]))}


def list_policies(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
    store = account_store(deps.storage, ctx.principal, deps.partition)
    prefix = params.get("PathPrefix")
    require(deps.storage, ctx, "iam:ListPolicies", store.arn("policy", prefix or "/", ""))
    if params.get("Scope", "All") == "AWS":
        return {"Policies": [], "IsTruncated": False}
    only_attached = bool(params.get("OnlyAttached"))

    def keep(p: ManagedPolicy) -> bool:
        return path_matches(p.path, prefix) and (p.attachment_count > 0 or not only_attached)

    page = store.page(
        "iam-policy",
        ManagedPolicy,
        marker=params.get("Marker"),
        max_items=params.get("MaxItems"),
        keep=keep,
    )
    result: dict[str, Any] = {
        "Policies": [
            {k: v for k, v in policy_out(p).items() if k not in ("Description", "Tags")}
            for p in page.items
        ],
        "IsTruncated": page.truncated,
    }
    if page.marker:
        result["Marker"] = page.marker
    return result


def delete_policy(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
    store = account_store(deps.storage, ctx.principal, deps.partition)
    require(deps.storage, ctx, "iam:DeletePolicy", params["PolicyArn"])
    with deps.storage.transaction():
        policy = _policy(store, params["PolicyArn"])
        if policy.attachment_count > 0:
            raise DeleteConflict("Cannot delete a policy attached to entities.")
        if len(store.policy_versions(policy)) > 1:
            raise DeleteConflict(
                "This policy has more than one version. Before you delete a policy, you must "
                "delete the policy's versions. The default version is deleted with the policy."
            )
        store.delete_policy(policy)
    return None


# --- versions --------------------------------------------------------------------------------
def _version_out(
    policy: ManagedPolicy, version: PolicyVersion, *, document: bool
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "VersionId": version.version_id,
        "IsDefaultVersion": version.version_id == policy.default_version,
        "CreateDate": version.created_at,
    }
    if document:
        out["Document"] = encode_document(version.document)
    return out


def _version(store: IamStore, policy: ManagedPolicy, version_id: str) -> PolicyVersion:
    version = store.get_policy_version(policy, version_id)
    if version is None:
        raise NoSuchEntity(
            f"Policy {policy.arn} version {version_id} does not exist or is not attachable."
        )
    return version


def get_policy_version(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
    store = account_store(deps.storage, ctx.principal, deps.partition)
    require(deps.storage, ctx, "iam:GetPolicyVersion", params["PolicyArn"])
    policy = _policy(store, params["PolicyArn"])
    version = _version(store, policy, params["VersionId"])
    return {"PolicyVersion": _version_out(policy, version, document=True)}


def create_policy_version(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
    store = account_store(deps.storage, ctx.principal, deps.partition)
    require(deps.storage, ctx, "iam:CreatePolicyVersion", params["PolicyArn"])
    document = _managed_document(params["PolicyDocument"])
    with deps.storage.transaction():
        policy = _policy(store, params["PolicyArn"])
        if len(store.policy_versions(policy)) >= MAX_VERSIONS:
            raise LimitExceeded(
                f"A managed policy can have up to {MAX_VERSIONS} versions. Before you create a "
                "new version, you must delete an existing version."
            )
        version = PolicyVersion(f"v{policy.next_version}", document, ctx.now)
        store.put_policy_version(policy, version, ctx.now)
        changes: dict[str, Any] = {"next_version": policy.next_version + 1, "updated_at": ctx.now}
        if params.get("SetAsDefault"):
            changes["default_version"] = version.version_id
        policy = dataclasses.replace(policy, **changes)
        store.put_policy(policy, ctx.now)
    return {"PolicyVersion": _version_out(policy, version, document=False)}


def list_policy_versions(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
    store = account_store(deps.storage, ctx.principal, deps.partition)
    require(deps.storage, ctx, "iam:ListPolicyVersions", params["PolicyArn"])
    policy = _policy(store, params["PolicyArn"])
    versions = sorted(
        store.policy_versions(policy), key=lambda v: _version_number(v.version_id), reverse=True
    )
    return {
        "Versions": [_version_out(policy, v, document=False) for v in versions],
        "IsTruncated": False,
    }


def delete_policy_version(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
    store = account_store(deps.storage, ctx.principal, deps.partition)
    require(deps.storage, ctx, "iam:DeletePolicyVersion", params["PolicyArn"])
    with deps.storage.transaction():
        policy = _policy(store, params["PolicyArn"])
        version = _version(store, policy, params["VersionId"])
        if version.version_id == policy.default_version:
            raise DeleteConflict("Cannot delete the default version of a policy.")
        store.delete_policy_version(policy, version.version_id)
    return None


def set_default_policy_version(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
    store = account_store(deps.storage, ctx.principal, deps.partition)
    require(deps.storage, ctx, "iam:SetDefaultPolicyVersion", params["PolicyArn"])
    with deps.storage.transaction():
        policy = _policy(store, params["PolicyArn"])
        version = _version(store, policy, params["VersionId"])
        store.put_policy(
            dataclasses.replace(policy, default_version=version.version_id, updated_at=ctx.now),
            ctx.now,
        )
    return None


# --- attachments -----------------------------------------------------------------------------
def _attach(kind: str) -> Handler:
    name_param, label = _KINDS[kind]

    def handler(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
        store = account_store(deps.storage, ctx.principal, deps.partition)
        exists, arn, name = _entity(store, kind, params[name_param])
        require(deps.storage, ctx, f"iam:Attach{label}Policy", arn)
        policy_arn = params["PolicyArn"]
        _check_policy_arn(policy_arn)
        with deps.storage.transaction():
            _require_entity(kind, name, exists)
            policy = store.policy_by_arn(policy_arn)
            if policy is None:
                raise NoSuchEntity(f"Policy {policy_arn} does not exist or is not attachable.")
            if store.is_attached(kind, name, policy.arn):
                return None
            if len(store.attachments(kind, name)) >= MAX_ATTACHED:
                raise LimitExceeded(f"Cannot exceed quota for PoliciesPer{label}: {MAX_ATTACHED}")
            store.attach(kind, name, policy, ctx.now)
            store.put_policy(
                dataclasses.replace(policy, attachment_count=policy.attachment_count + 1), ctx.now
            )
        return None

    return handler


def _detach(kind: str) -> Handler:
    name_param, label = _KINDS[kind]

    def handler(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
        store = account_store(deps.storage, ctx.principal, deps.partition)
        exists, arn, name = _entity(store, kind, params[name_param])
        require(deps.storage, ctx, f"iam:Detach{label}Policy", arn)
        policy_arn = params["PolicyArn"]
        _check_policy_arn(policy_arn)
        with deps.storage.transaction():
            _require_entity(kind, name, exists)
            if not store.detach(kind, name, policy_arn):
                raise NoSuchEntity(f"Policy {policy_arn} was not found.")
            policy = store.policy_by_arn(policy_arn)
            if policy is not None:
                count = max(0, policy.attachment_count - 1)
                store.put_policy(dataclasses.replace(policy, attachment_count=count), ctx.now)
        return None

    return handler


def _policy_path(policy_arn: str) -> str:
    resource = policy_arn.split(":", 5)[-1]  # policy/path/name
    return resource[len("policy") : resource.rfind("/") + 1]


def _list_attached(kind: str) -> Handler:
    name_param, label = _KINDS[kind]

    def handler(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
        store = account_store(deps.storage, ctx.principal, deps.partition)
        exists, arn, name = _entity(store, kind, params[name_param])
        require(deps.storage, ctx, f"iam:ListAttached{label}Policies", arn)
        _require_entity(kind, name, exists)
        prefix = params.get("PathPrefix")

        def keep(a: Attachment) -> bool:
            return path_matches(_policy_path(a.policy_arn), prefix)

        page = store.attachment_page(kind, name, params.get("Marker"), params.get("MaxItems"), keep)
        result: dict[str, Any] = {
            "AttachedPolicies": [
                {"PolicyName": a.policy_name, "PolicyArn": a.policy_arn} for a in page.items
            ],
            "IsTruncated": page.truncated,
        }
        if page.marker:
            result["Marker"] = page.marker
        return result

    return handler


# --- inline policies -------------------------------------------------------------------------
def _put_inline(kind: str) -> Handler:
    name_param, label = _KINDS[kind]

    def handler(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
        store = account_store(deps.storage, ctx.principal, deps.partition)
        exists, arn, name = _entity(store, kind, params[name_param])
        require(deps.storage, ctx, f"iam:Put{label}Policy", arn)
        document = decode_document(params["PolicyDocument"])
        validate_policy(document, IDENTITY)
        policy_name = params["PolicyName"]
        with deps.storage.transaction():
            _require_entity(kind, name, exists)
            others = sum(
                policy_size(p.document)
                for p in store.inline_policies(kind, name)
                if p.name != policy_name
            )
            limit = MAX_INLINE_SIZE[kind]
            if others + policy_size(document) > limit:
                raise LimitExceeded(
                    f"Maximum policy size of {limit} bytes exceeded for {kind} {name}"
                )
            store.put_inline(kind, name, InlinePolicy(policy_name, document), ctx.now)
        return None

    return handler


def _inline_or_fail(store: IamStore, kind: str, name: str, policy_name: str) -> InlinePolicy:
    policy = store.get_inline(kind, name, policy_name)
    if policy is None:
        raise NoSuchEntity(f"The {kind} policy with name {policy_name} cannot be found.")
    return policy


def _get_inline(kind: str) -> Handler:
    name_param, label = _KINDS[kind]

    def handler(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
        store = account_store(deps.storage, ctx.principal, deps.partition)
        exists, arn, name = _entity(store, kind, params[name_param])
        require(deps.storage, ctx, f"iam:Get{label}Policy", arn)
        _require_entity(kind, name, exists)
        policy = _inline_or_fail(store, kind, name, params["PolicyName"])
        return {
            name_param: name,
            "PolicyName": policy.name,
            "PolicyDocument": encode_document(policy.document),
        }

    return handler


def _delete_inline(kind: str) -> Handler:
    name_param, label = _KINDS[kind]

    def handler(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
        store = account_store(deps.storage, ctx.principal, deps.partition)
        exists, arn, name = _entity(store, kind, params[name_param])
        require(deps.storage, ctx, f"iam:Delete{label}Policy", arn)
        with deps.storage.transaction():
            _require_entity(kind, name, exists)
            _inline_or_fail(store, kind, name, params["PolicyName"])
            store.delete_inline(kind, name, params["PolicyName"])
        return None

    return handler


def _list_inline(kind: str) -> Handler:
    name_param, label = _KINDS[kind]

    def handler(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
        store = account_store(deps.storage, ctx.principal, deps.partition)
        exists, arn, name = _entity(store, kind, params[name_param])
        require(deps.storage, ctx, f"iam:List{label}Policies", arn)
        _require_entity(kind, name, exists)
        page = store.inline_page(kind, name, params.get("Marker"), params.get("MaxItems"))
        result: dict[str, Any] = {
            "PolicyNames": [p.name for p in page.items],
            "IsTruncated": page.truncated,
        }
        if page.marker:
            result["Marker"] = page.marker
        return result

    return handler


# --- simulation ------------------------------------------------------------------------------
def _simulation_result(
    params: Params, policy_texts: list[str], principal: Principal
) -> dict[str, Any]:
    for text in params.get("PolicyInputList", []):
        validate_policy(decode_document(text), IDENTITY)
    texts = policy_texts + [decode_document(t) for t in params.get("PolicyInputList", [])]
    context = {
        e["ContextKeyName"]: e.get("ContextKeyValues", [])
        for e in params.get("ContextEntries", [])
        if e.get("ContextKeyName")  # the model does not require it; an entry without is void
    }
    outcomes = simulate(
        texts, principal, params["ActionNames"], params.get("ResourceArns") or ["*"], context
    )
    return {
        "EvaluationResults": [
            {
                "EvalActionName": action,
                "EvalResourceName": resource,
                "EvalDecision": decision,
                "MatchedStatements": [],
                "MissingContextValues": [],
            }
            for action, resource, decision in outcomes
        ],
        "IsTruncated": False,
    }


def simulate_principal_policy(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
    """The identity policies of a user (with its groups'), group or role, plus
    ``PolicyInputList``, against each action and resource. Matched statements are not reported."""
    store = account_store(deps.storage, ctx.principal, deps.partition)
    source = params["PolicySourceArn"]
    require(deps.storage, ctx, "iam:SimulatePrincipalPolicy", source)
    head = f"arn:{deps.partition}:iam::{store.account_id}:"
    kind, _, rest = source[len(head) :].partition("/") if source.startswith(head) else ("", "", "")
    if kind not in _KINDS or not rest:
        raise InvalidInput(f"Invalid ARN: {source}")
    exists, _, name = _entity(store, kind, rest.rsplit("/", 1)[-1])
    _require_entity(kind, name, exists)
    texts = entity_policies(store, kind, name)
    if kind == "user":
        for group in store.group_names_of(name):
            texts += entity_policies(store, "group", group)
    principal = Principal(store.account_id, source, "user", "", "")
    return _simulation_result(params, texts, principal)


def simulate_custom_policy(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
    """``PolicyInputList`` alone, against each action and resource, for the caller."""
    require(deps.storage, ctx, "iam:SimulateCustomPolicy", "*")
    caller = params.get("CallerArn")
    principal = ctx.principal
    if caller:
        principal = Principal(principal.account_id, caller, "user", "", "")
    return _simulation_result(params, [], principal)


OPERATIONS: dict[str, Handler] = {
    "SimulatePrincipalPolicy": simulate_principal_policy,
    "SimulateCustomPolicy": simulate_custom_policy,
    "CreatePolicy": create_policy,
    "GetPolicy": get_policy,
    "ListPolicies": list_policies,
    "DeletePolicy": delete_policy,
    "GetPolicyVersion": get_policy_version,
    "CreatePolicyVersion": create_policy_version,
    "ListPolicyVersions": list_policy_versions,
    "DeletePolicyVersion": delete_policy_version,
    "SetDefaultPolicyVersion": set_default_policy_version,
}
for _kind, (_, _label) in _KINDS.items():
    OPERATIONS[f"Attach{_label}Policy"] = _attach(_kind)
    OPERATIONS[f"Detach{_label}Policy"] = _detach(_kind)
    OPERATIONS[f"ListAttached{_label}Policies"] = _list_attached(_kind)
    OPERATIONS[f"Put{_label}Policy"] = _put_inline(_kind)
    OPERATIONS[f"Get{_label}Policy"] = _get_inline(_kind)
    OPERATIONS[f"Delete{_label}Policy"] = _delete_inline(_kind)
    OPERATIONS[f"List{_label}Policies"] = _list_inline(_kind)
