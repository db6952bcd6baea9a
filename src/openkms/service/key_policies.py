"""Key policies: the default policy, GetKeyPolicy, ListKeyPolicies, PutKeyPolicy.

The foundation stores and returns policies and checks that they are JSON objects within AWS's
limits; evaluation (and the lockout safety check) belongs to the policy evaluator.
"""

from __future__ import annotations

from typing import Any

import orjson

from openkms.domain.key import KeyRecord, require_not_pending_deletion
from openkms.errors import (
    LimitExceededException,
    MalformedPolicyDocumentException,
    NotFoundException,
)
from openkms.policy.principal_ids import substitute_principals
from openkms.service.context import RequestContext
from openkms.service.runtime import Runtime

POLICY_NAME = "default"
MAX_POLICY_BYTES = 32_768


def default_policy(partition: str, account_id: str) -> str:
    # Byte for byte the layout AWS returns from GetKeyPolicy for its default policy.
    return (
        "{\n"
        '  "Version" : "2012-10-17",\n'
        '  "Id" : "key-default-1",\n'
        '  "Statement" : [ {\n'
        '    "Sid" : "Enable IAM User Permissions",\n'
        '    "Effect" : "Allow",\n'
        '    "Principal" : {\n'
        f'      "AWS" : "arn:{partition}:iam::{account_id}:root"\n'
        "    },\n"
        '    "Action" : "kms:*",\n'
        '    "Resource" : "*"\n'
        "  } ]\n"
        "}"
    )


def check_policy(
    rt: Runtime, ctx: RequestContext, policy: str, key_arn: str, account_id: str, *, bypass: bool
) -> dict[str, str]:
    """Size, grammar (MalformedPolicyDocumentException), principals and the policy lockout
    safety check. Returns the unique id of each IAM user or role the policy names, to be stored
    with it (KeyRecord.policy_principals)."""
    if len(policy.encode("utf-8")) > MAX_POLICY_BYTES:
        raise LimitExceededException(
            f"Policy document exceeds the maximum size of {MAX_POLICY_BYTES} bytes."
        )
    checker = getattr(rt.access, "check_new_policy", None)
    if checker is not None:
        bindings: dict[str, str] = checker(ctx, policy, key_arn, account_id, bypass=bypass)
        return bindings
    try:
        doc = orjson.loads(policy)
    except orjson.JSONDecodeError as exc:
        raise MalformedPolicyDocumentException("The new key policy is not valid JSON.") from exc
    if not isinstance(doc, dict) or "Statement" not in doc:
        raise MalformedPolicyDocumentException(
            "The new key policy must be a JSON object with a Statement."
        )
    return {}


def shown_policy(rt: Runtime, key: KeyRecord) -> str:
    """The key policy as GetKeyPolicy shows it: as written, except that a named IAM user or role
    that no longer exists (or exists again under a new unique id) appears as its unique id."""
    if not key.policy_principals:
        return key.policy
    from openkms.iam.unique_ids import stale

    return substitute_principals(key.policy, stale(rt.storage, key.policy_principals))


def get_key_policy(rt: Runtime, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    key = rt.resolve_key(ctx, req["KeyId"], allow_alias=False)
    rt.access.authorize_key(ctx, "kms:GetKeyPolicy", key, req)
    name = req.get("PolicyName") or POLICY_NAME
    if name != POLICY_NAME:
        raise NotFoundException("No such policy exists")
    return {"Policy": shown_policy(rt, key), "PolicyName": POLICY_NAME}


def list_key_policies(rt: Runtime, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    key = rt.resolve_key(ctx, req["KeyId"], allow_alias=False)
    rt.access.authorize_key(ctx, "kms:ListKeyPolicies", key, req)
    return {"PolicyNames": [POLICY_NAME], "Truncated": False}


def put_key_policy(rt: Runtime, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    key = rt.resolve_key(ctx, req["KeyId"], allow_alias=False)
    rt.access.authorize_key(ctx, "kms:PutKeyPolicy", key, req)
    name = req.get("PolicyName") or POLICY_NAME
    if name != POLICY_NAME:
        raise NotFoundException("No such policy exists")
    bindings = check_policy(
        rt,
        ctx,
        req["Policy"],
        key.arn,
        key.account_id,
        bypass=bool(req.get("BypassPolicyLockoutSafetyCheck")),
    )
    with rt.storage.transaction():
        fresh = rt.storage.get_key(key.arn)
        if fresh is None:
            raise NotFoundException(f"Key '{key.arn}' does not exist")
        require_not_pending_deletion(fresh)
        rt.storage.update_key(fresh.with_changes(policy=req["Policy"], policy_principals=bindings))
    rt.forget_key(key.arn)
    return {}
