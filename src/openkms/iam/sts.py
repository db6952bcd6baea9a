"""STS: GetCallerIdentity and AssumeRole.

AssumeRole issues temporary credentials (``ASIA...`` key, secret, session token) for a role
session ``arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION``. The role's trust policy must allow
the caller (and ``sts:TagSession`` when session tags are passed); so must the caller's identity
policies, unless the trust policy names the caller itself within the same account. The account
root cannot assume roles; a session assuming a role (role chaining) gets at most one hour. A
session policy (``Policy`` and/or ``PolicyArns``) can only narrow the role's permissions.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from openkms.iam import MalformedPolicyDocument, ValidationError
from openkms.iam.authz import SESSION, authorize_assume_role, validate_policy
from openkms.iam.handler import IamDeps, Params, Result
from openkms.iam.sessions import issue_session, load_session
from openkms.iam.store import IamStore, Role, policy_size
from openkms.policy.principal_ids import substitute_principals
from openkms.service.context import RequestContext

DEFAULT_DURATION_SECONDS = 3600
CHAINED_MAX_SECONDS = 3600
MAX_SESSION_POLICY_CHARS = 2048
MAX_POLICY_ARNS = 10
MAX_SESSION_TAGS = 50
_ROLE_ARN = re.compile(r"arn:([a-z-]+):iam::(\d{12}):role(/[\x21-\x7e]*)?/([\w+=,.@-]+)")


def get_caller_identity(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
    principal = ctx.principal
    return {"UserId": principal.user_id, "Account": principal.account_id, "Arn": principal.arn}


def _statements(text: str) -> list[Any]:
    doc = json.loads(text)
    statement = doc.get("Statement", [])
    return statement if isinstance(statement, list) else [statement]


def _session_policy(store: IamStore, params: Params) -> str | None:
    """The inline session policy and the managed session policies, merged into one document
    (a request is allowed by the session policies if any of them allows it)."""
    statements: list[Any] = []
    if "Policy" in params:
        text = params["Policy"]
        if len(text) > MAX_SESSION_POLICY_CHARS:
            raise ValidationError(
                "1 validation error detected: Value at 'policy' failed to satisfy constraint: "
                f"Member must have length less than or equal to {MAX_SESSION_POLICY_CHARS}"
            )
        validate_policy(text, SESSION)
        statements += _statements(text)
    arns = [d.get("arn", "") for d in params.get("PolicyArns", [])]
    if len(arns) > MAX_POLICY_ARNS:
        raise ValidationError(
            "1 validation error detected: Value at 'policyArns' failed to satisfy constraint: "
            f"Member must have length less than or equal to {MAX_POLICY_ARNS}"
        )
    for arn in arns:
        policy = store.policy_by_arn(arn)
        document = None if policy is None else store.default_document(policy)
        if document is None:
            raise MalformedPolicyDocument(f"Policy {arn} does not exist or is not attachable.")
        statements += _statements(document)
    if "Policy" not in params and not arns:
        return None
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, separators=(",", ":"))


def _session_tags(
    ctx: RequestContext, deps: IamDeps, params: Params
) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...], tuple[tuple[str, str], ...]]:
    """(all session tags, transitive keys, tags passed in this request)."""
    passed: list[tuple[str, str]] = []
    seen: set[str] = set()
    for item in params.get("Tags", []):
        key = item["Key"]
        if key.lower() in seen:
            raise ValidationError(
                "Duplicate tag keys found. Please note that Tag keys are case insensitive."
            )
        seen.add(key.lower())
        passed.append((key, item.get("Value", "")))
    transitive = list(params.get("TransitiveTagKeys", []))
    for key in transitive:
        if key.lower() not in seen:
            raise ValidationError(
                f"The transitive tag key {key} must also be passed as a session tag."
            )
    inherited: list[tuple[str, str]] = []
    if ctx.principal.kind == "assumed-role":
        caller = load_session(deps.storage, ctx.principal.access_key_id)
        if caller is not None:
            chained = {k.lower() for k in caller.transitive_tag_keys}
            inherited = [(k, v) for k, v in caller.tags if k.lower() in chained]
    for key, _ in inherited:
        if key.lower() in seen:
            raise ValidationError(f"The session tag {key} is transitive and cannot be overridden.")
    tags = tuple(inherited + passed)
    if len(tags) > MAX_SESSION_TAGS:
        raise ValidationError(f"Cannot exceed quota for TagsPerSession: {MAX_SESSION_TAGS}")
    keys = tuple(k for k, _ in inherited) + tuple(transitive)
    return tags, keys, tuple(passed)


def _find_role(deps: IamDeps, role_arn: str) -> tuple[IamStore, Role | None]:
    match = _ROLE_ARN.fullmatch(role_arn)
    if match is None:
        raise ValidationError(f"{role_arn} is not a valid role ARN.")
    store = IamStore(deps.storage, match.group(2), deps.partition)
    role = store.get_role(match.group(4))
    return store, role if role is not None and role.arn == role_arn else None


def assume_role(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
    principal = ctx.principal
    role_arn, session_name = params["RoleArn"], params["RoleSessionName"]
    duration = params.get("DurationSeconds", DEFAULT_DURATION_SECONDS)
    store, role = _find_role(deps, role_arn)
    tags, transitive, passed = _session_tags(ctx, deps, params)
    extra: dict[str, tuple[str, ...]] = {"sts:RoleSessionName": (session_name,)}
    if "ExternalId" in params:
        extra["sts:ExternalId"] = (params["ExternalId"],)
    for key, value in passed:
        extra[f"aws:RequestTag/{key}"] = (value,)
    if passed:
        extra["aws:TagKeys"] = tuple(k for k, _ in passed)
    if transitive:
        extra["sts:TransitiveTagKeys"] = transitive
    actions = ["sts:AssumeRole"] + (["sts:TagSession"] if tags else [])
    authorize_assume_role(
        deps.storage,
        ctx,
        role_arn,
        # The trust policy as evaluated: the users and roles it names by their unique ids.
        substitute_principals(role.trust_policy, role.trust_principal_ids)
        if role is not None
        else None,
        actions,
        extra,
    )
    assert role is not None  # authorize_assume_role denies a role that does not exist
    if principal.kind == "assumed-role" and duration > CHAINED_MAX_SECONDS:
        raise ValidationError(
            "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed "
            "by role chaining."
        )
    if duration > role.max_session_seconds:
        raise ValidationError(
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
        )
    session_policy = _session_policy(store, params)
    issued = issue_session(
        deps.storage,
        deps.root,
        account_id=store.account_id,
        partition=deps.partition,
        role_arn=role.arn,
        role_id=role.role_id,
        role_name=role.name,
        session_name=session_name,
        source_arn=principal.arn,
        now=ctx.now,
        duration_seconds=duration,
        session_policy=session_policy,
        tags=tags,
        transitive_tag_keys=transitive,
    )
    record = issued.record
    result: dict[str, Any] = {
        "Credentials": {
            "AccessKeyId": record.access_key_id,
            "SecretAccessKey": issued.secret_access_key,
            "SessionToken": issued.session_token,
            "Expiration": record.expires_at,
        },
        "AssumedRoleUser": {"AssumedRoleId": record.assumed_role_id, "Arn": record.arn},
    }
    if session_policy is not None or tags:
        packed = policy_size(session_policy or "") + sum(len(k) + len(v) for k, v in tags)
        result["PackedPolicySize"] = min(100, math.ceil(100 * packed / 4096))
    if "SourceIdentity" in params:
        result["SourceIdentity"] = params["SourceIdentity"]
    return result


OPERATIONS = {
    "GetCallerIdentity": get_caller_identity,
    "AssumeRole": assume_role,
}
