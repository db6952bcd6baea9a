"""The policies of a user, group or role: managed policies attached to it
(Attach/Detach/ListAttached<Kind>Policies) and inline policies embedded in it
(Put/Get/Delete/List<Kind>Policy), built for each kind by ``policy_handlers``.

Limits as IAM's defaults: 10 managed policies per user, group or role; the aggregate inline
policy text of each kind as its ``EntityKind.max_inline_size`` says, whitespace not counted.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

from openkms.iam import InvalidInput, LimitExceeded, NoSuchEntity
from openkms.iam.authz import IDENTITY, validate_policy
from openkms.iam.entities import EntityKind, Target, listing, target
from openkms.iam.handler import Handler, IamDeps, Params, Result
from openkms.iam.store import (
    Attachment,
    InlinePolicy,
    decode_document,
    encode_document,
    path_matches,
    policy_size,
)
from openkms.service.context import RequestContext

MAX_ATTACHED = 10
_POLICY_ARN = re.compile(r"arn:[a-z-]+:iam::(\d{12}|aws):policy(/.*)?/[\w+=,.@-]+")

# What an operation does once the caller is authorized on the entity the request names.
_Step = Callable[[IamDeps, RequestContext, Target, Params], Result]


def check_policy_arn(arn: str) -> None:
    if not _POLICY_ARN.fullmatch(arn):
        raise InvalidInput(f"ARN {arn} is not valid.")


def _policy_path(policy_arn: str) -> str:
    resource = policy_arn.split(":", 5)[-1]  # policy/path/name
    return resource[len("policy") : resource.rfind("/") + 1]


def _inline_or_fail(entity: Target, policy_name: str) -> InlinePolicy:
    kind = entity.kind.kind
    policy = entity.store.get_inline(kind, entity.name, policy_name)
    if policy is None:
        raise NoSuchEntity(f"The {kind} policy with name {policy_name} cannot be found.")
    return policy


# --- attached managed policies ---------------------------------------------------------------
def _attach(deps: IamDeps, ctx: RequestContext, entity: Target, params: Params) -> Result:
    store, kind, name = entity.store, entity.kind.kind, entity.name
    policy_arn = params["PolicyArn"]
    check_policy_arn(policy_arn)
    with deps.storage.transaction():
        entity.require()
        policy = store.policy_by_arn(policy_arn)
        if policy is None:
            raise NoSuchEntity(f"Policy {policy_arn} does not exist or is not attachable.")
        if store.is_attached(kind, name, policy.arn):
            return None
        if len(store.attachments(kind, name)) >= MAX_ATTACHED:
            raise LimitExceeded(
                f"Cannot exceed quota for PoliciesPer{entity.kind.label}: {MAX_ATTACHED}"
            )
        store.attach(kind, name, policy, ctx.now)
        store.put_policy(
            dataclasses.replace(policy, attachment_count=policy.attachment_count + 1), ctx.now
        )
    return None


def _detach(deps: IamDeps, ctx: RequestContext, entity: Target, params: Params) -> Result:
    store = entity.store
    policy_arn = params["PolicyArn"]
    check_policy_arn(policy_arn)
    with deps.storage.transaction():
        entity.require()
        if not store.detach(entity.kind.kind, entity.name, policy_arn):
            raise NoSuchEntity(f"Policy {policy_arn} was not found.")
        policy = store.policy_by_arn(policy_arn)
        if policy is not None:
            count = max(0, policy.attachment_count - 1)
            store.put_policy(dataclasses.replace(policy, attachment_count=count), ctx.now)
    return None


def _list_attached(deps: IamDeps, ctx: RequestContext, entity: Target, params: Params) -> Result:
    entity.require()
    prefix = params.get("PathPrefix")

    def keep(a: Attachment) -> bool:
        return path_matches(_policy_path(a.policy_arn), prefix)

    page = entity.store.attachment_page(
        entity.kind.kind, entity.name, params.get("Marker"), params.get("MaxItems"), keep
    )
    result = {
        "AttachedPolicies": [
            {"PolicyName": a.policy_name, "PolicyArn": a.policy_arn} for a in page.items
        ],
        "IsTruncated": page.truncated,
    }
    return listing(result, page.marker)


# --- inline policies -------------------------------------------------------------------------
def _put_inline(deps: IamDeps, ctx: RequestContext, entity: Target, params: Params) -> Result:
    store, kind, name = entity.store, entity.kind.kind, entity.name
    document = decode_document(params["PolicyDocument"])
    validate_policy(document, IDENTITY)
    policy_name = params["PolicyName"]
    with deps.storage.transaction():
        entity.require()
        others = sum(
            policy_size(p.document)
            for p in store.inline_policies(kind, name)
            if p.name != policy_name
        )
        limit = entity.kind.max_inline_size
        if others + policy_size(document) > limit:
            raise LimitExceeded(f"Maximum policy size of {limit} bytes exceeded for {kind} {name}")
        store.put_inline(kind, name, InlinePolicy(policy_name, document), ctx.now)
    return None


def _get_inline(deps: IamDeps, ctx: RequestContext, entity: Target, params: Params) -> Result:
    entity.require()
    policy = _inline_or_fail(entity, params["PolicyName"])
    return {
        entity.kind.name_param: entity.name,
        "PolicyName": policy.name,
        "PolicyDocument": encode_document(policy.document),
    }


def _delete_inline(deps: IamDeps, ctx: RequestContext, entity: Target, params: Params) -> Result:
    with deps.storage.transaction():
        entity.require()
        _inline_or_fail(entity, params["PolicyName"])
        entity.store.delete_inline(entity.kind.kind, entity.name, params["PolicyName"])
    return None


def _list_inline(deps: IamDeps, ctx: RequestContext, entity: Target, params: Params) -> Result:
    entity.require()
    page = entity.store.inline_page(
        entity.kind.kind, entity.name, params.get("Marker"), params.get("MaxItems")
    )
    result = {"PolicyNames": [p.name for p in page.items], "IsTruncated": page.truncated}
    return listing(result, page.marker)


_OPERATIONS: dict[str, _Step] = {
    "Attach{}Policy": _attach,
    "Detach{}Policy": _detach,
    "ListAttached{}Policies": _list_attached,
    "Put{}Policy": _put_inline,
    "Get{}Policy": _get_inline,
    "Delete{}Policy": _delete_inline,
    "List{}Policies": _list_inline,
}


def policy_handlers(kind: EntityKind) -> dict[str, Handler]:
    """The seven policy operations of ``kind``: each authorizes the caller for ``iam:<Action>``
    on the entity the request names, then does its part."""

    def handler(action: str, body: _Step) -> Handler:
        def handle(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
            entity = target(deps, ctx, kind, action, params[kind.name_param])
            return body(deps, ctx, entity, params)

        return handle

    return {
        pattern.format(kind.label): handler(pattern.format(kind.label), body)
        for pattern, body in _OPERATIONS.items()
    }
