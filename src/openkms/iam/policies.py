"""Customer managed policies and their versions, and the policy simulator. Attaching managed
policies to users, groups and roles, and their inline policies, are in
``openkms.iam.entity_policies``.

Documents arrive as JSON (or URL-encoded JSON) and are returned URL-encoded, as IAM does.
Limits as IAM's defaults: 5 versions per managed policy, 6,144 characters per managed policy,
whitespace not counted.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from openkms.iam import DeleteConflict, InvalidInput, LimitExceeded, NoSuchEntity
from openkms.iam.authz import IDENTITY, require, validate_policy
from openkms.iam.entities import KINDS
from openkms.iam.entity_policies import check_policy_arn
from openkms.iam.handler import Handler, IamDeps, Params, Result
from openkms.iam.simulation import (
    SimulatedPrincipal,
    SourcePolicy,
    entity_sources,
    input_sources,
    simulate,
)
from openkms.iam.store import (
    IamStore,
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
from openkms.service.context import RequestContext

MAX_VERSIONS = 5
MAX_MANAGED_POLICY_SIZE = 6144


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


def _policy(store: IamStore, arn: str) -> ManagedPolicy:
    check_policy_arn(arn)
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


# --- simulation ------------------------------------------------------------------------------
# What IAM's simulator takes that openkms's does not simulate (README, IAM users ...).
_UNSIMULATED = ("ResourcePolicy", "PermissionsBoundaryPolicyInputList", "ResourceOwner")


def _simulation_result(
    params: Params, sources: list[SourcePolicy], principal: SimulatedPrincipal
) -> dict[str, Any]:
    for unsupported in _UNSIMULATED:
        if params.get(unsupported):
            # Refused rather than ignored: a simulation that left it out would answer wrongly.
            raise InvalidInput(f"{unsupported} is not supported by openkms's policy simulator.")
    inputs = [decode_document(t) for t in params.get("PolicyInputList", [])]
    for text in inputs:
        validate_policy(text, IDENTITY)
    context = {
        e["ContextKeyName"]: e.get("ContextKeyValues", [])
        for e in params.get("ContextEntries", [])
        if e.get("ContextKeyName")  # the model does not require it; an entry without is void
    }
    results = simulate(
        sources + input_sources(inputs),
        principal,
        params["ActionNames"],
        params.get("ResourceArns") or ["*"],
        context,
    )
    return {"EvaluationResults": results, "IsTruncated": False}


def _simulated(store: IamStore, kind: str, arn: str, unique_id: str) -> SimulatedPrincipal:
    """The principal a user, group or role is simulated as: a role as its sessions are seen."""
    keys: dict[str, tuple[str, ...]] = {"aws:principalaccount": (store.account_id,)}
    if kind == "role":
        keys["aws:principaltype"] = ("AssumedRole",)
        keys["aws:principalarn"] = (arn,)
        return SimulatedPrincipal(arn, store.account_id, "AssumedRole", arn, keys)
    keys["aws:principaltype"] = ("User",)
    keys["aws:principalarn"] = (arn,)
    if kind == "user":
        keys["aws:username"] = (arn.rsplit("/", 1)[-1],)
        keys["aws:userid"] = (unique_id,)
    return SimulatedPrincipal(arn, store.account_id, "User", None, keys)


def simulate_principal_policy(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
    """The identity policies of a user (with its groups'), group or role, plus
    ``PolicyInputList``, against each action and resource (see ``openkms.iam.simulation``)."""
    store = account_store(deps.storage, ctx.principal, deps.partition)
    source = params["PolicySourceArn"]
    require(deps.storage, ctx, "iam:SimulatePrincipalPolicy", source)
    head = f"arn:{deps.partition}:iam::{store.account_id}:"
    kind, _, rest = source[len(head) :].partition("/") if source.startswith(head) else ("", "", "")
    if kind not in KINDS or not rest:
        raise InvalidInput(f"Invalid ARN: {source}")
    entity = store.require_entity(KINDS[kind].doc, rest.rsplit("/", 1)[-1])
    name = entity.name
    principal = _simulated(store, kind, entity.arn, _unique_id(store, kind, name))
    return _simulation_result(params, entity_sources(store, kind, name), principal)


def _unique_id(store: IamStore, kind: str, name: str) -> str:
    if kind == "user":
        user = store.get_user(name)
        return user.user_id if user is not None else ""
    return ""


def simulate_custom_policy(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
    """``PolicyInputList`` alone, against each action and resource, for ``CallerArn`` (a user)
    or the caller."""
    require(deps.storage, ctx, "iam:SimulateCustomPolicy", "*")
    store = account_store(deps.storage, ctx.principal, deps.partition)
    caller = params.get("CallerArn") or ctx.principal.arn
    principal_type = {"root": "Account", "assumed-role": "AssumedRole"}.get(
        ctx.principal.kind if caller == ctx.principal.arn else "user", "User"
    )
    keys = {
        "aws:principalaccount": (store.account_id,),
        "aws:principalarn": (caller,),
        "aws:principaltype": (principal_type,),
    }
    principal = SimulatedPrincipal(caller, store.account_id, principal_type, None, keys)
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
