"""Resource policies of secrets: GetResourcePolicy, PutResourcePolicy (``BlockPublicPolicy``),
DeleteResourcePolicy, ValidateResourcePolicy and ListResourcePolicies.

A secret has at most one policy, named ``default`` (the only name AWS lets a caller write).
What a policy may say is ``policy_rules``; how it decides is ``resource_access`` (the same
evaluator as KMS key policies, with IAM's rules for optional resource policies). As for key
policies, each IAM user or role the policy names must exist, and is bound to its unique id when
the policy is stored (kept in the secret's ``extra``), so a principal deleted and created again
under the same name inherits nothing.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from openkms.context import RequestContext
from openkms.iam.unique_ids import bind_policy
from openkms.secretsmanager.access import ANY, authorize
from openkms.secretsmanager.deps import Handler, Params, Result, SecretsDeps
from openkms.secretsmanager.errors import (
    InvalidNextTokenException,
    InvalidParameterException,
    MalformedPolicyDocumentException,
    PublicPolicyException,
    ResourceNotFoundException,
)
from openkms.secretsmanager.lookup import POLICY_BINDINGS, resolve
from openkms.secretsmanager.policy_rules import (
    PUBLIC_MESSAGE,
    SYNTAX_MESSAGE,
    PolicyCheck,
    check_policy,
)
from openkms.storage.secrets import SecretRecord

DEFAULT = "default"
# Where a secret keeps the unique ids of the principals its policy names (ARN -> id).
BINDINGS = POLICY_BINDINGS
UNSUPPORTED_PRINCIPAL = "This resource policy contains an unsupported principal."
ONLY_DEFAULT = "You can only attach or delete the default resource policy; PolicyName must be {}."


def policy_bindings(secret: SecretRecord) -> dict[str, str]:
    raw = secret.extra.get(BINDINGS)
    if not isinstance(raw, dict):
        return {}
    return {str(k): str(v) for k, v in raw.items()}


def _name(req: Params, *, writing: bool) -> str:
    name = str(req.get("PolicyName") or DEFAULT)
    if name != DEFAULT and writing:
        raise InvalidParameterException(ONLY_DEFAULT.format(DEFAULT))
    return name


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True


def _checks(deps: SecretsDeps, text: str) -> tuple[list[PolicyCheck], list[str], dict[str, str]]:
    """(failed grammar, scope and principal checks; statements granting broad access; the
    principals' bindings)."""
    document, failed, broad = check_policy(text)
    if document is None:
        return failed, [], {}
    bindings, invalid = bind_policy(deps.storage, text)
    if invalid:
        failed.append(
            PolicyCheck("PRINCIPAL_CHECK", f"{UNSUPPORTED_PRINCIPAL} ({', '.join(invalid)})")
        )
    return failed, broad, bindings


def _names(secret: SecretRecord) -> dict[str, Any]:
    return {"ARN": secret.arn, "Name": secret.name}


def get_resource_policy(deps: SecretsDeps, ctx: RequestContext, req: Params) -> Result:
    secret = resolve(deps, ctx, req["SecretId"], "secretsmanager:GetResourcePolicy", req)
    name = _name(req, writing=False)
    if name != DEFAULT:
        raise ResourceNotFoundException(f"Secrets Manager can't find the resource policy {name}.")
    out = _names(secret)
    if secret.resource_policy is not None:
        out["ResourcePolicy"] = secret.resource_policy
        out["PolicyName"] = DEFAULT
    return out


def put_resource_policy(deps: SecretsDeps, ctx: RequestContext, req: Params) -> Result:
    _name(req, writing=True)
    text = str(req["ResourcePolicy"])
    storage = deps.storage
    with storage.transaction():
        secret = resolve(
            deps, ctx, req["SecretId"], "secretsmanager:PutResourcePolicy", req, lock=True
        )
        failed, broad, bindings = _checks(deps, text)
        principal_failures = [c for c in failed if c.name == "PRINCIPAL_CHECK"]
        if principal_failures and len(principal_failures) == len(failed):
            raise MalformedPolicyDocumentException(UNSUPPORTED_PRINCIPAL)
        if failed:
            raise MalformedPolicyDocumentException(SYNTAX_MESSAGE)
        if broad and req.get("BlockPublicPolicy"):
            raise PublicPolicyException(PUBLIC_MESSAGE)
        extra = {**secret.extra, BINDINGS: bindings}
        storage.update_secret(
            dataclasses.replace(secret, resource_policy=text, extra=extra, last_changed_at=ctx.now)
        )
    return {**_names(secret), "PolicyName": DEFAULT}


def delete_resource_policy(deps: SecretsDeps, ctx: RequestContext, req: Params) -> Result:
    _name(req, writing=True)
    storage = deps.storage
    with storage.transaction():
        secret = resolve(
            deps, ctx, req["SecretId"], "secretsmanager:DeleteResourcePolicy", req, lock=True
        )
        if secret.resource_policy is not None:
            extra = {k: v for k, v in secret.extra.items() if k != BINDINGS}
            storage.update_secret(
                dataclasses.replace(
                    secret, resource_policy=None, extra=extra, last_changed_at=ctx.now
                )
            )
    return {**_names(secret), "PolicyName": DEFAULT}


def validate_resource_policy(deps: SecretsDeps, ctx: RequestContext, req: Params) -> Result:
    """The checks PutResourcePolicy makes, reported rather than enforced: a text that is not
    JSON at all is MalformedPolicyDocumentException; every other finding (grammar, a non-secret
    action or resource, an unknown principal, broad access) is a ValidationErrors entry."""
    action = "secretsmanager:ValidateResourcePolicy"
    if req.get("SecretId") is not None:
        resolve(deps, ctx, req["SecretId"], action, req)
    else:
        authorize(deps, ctx, action, ANY, None, req)
    text = str(req["ResourcePolicy"])
    if not _is_json(text):
        raise MalformedPolicyDocumentException(SYNTAX_MESSAGE)
    failed, broad, _ = _checks(deps, text)
    errors = [{"CheckName": c.name, "ErrorMessage": c.message} for c in failed]
    for statement in broad:
        errors.append({
            "CheckName": "BROAD_ACCESS_CHECK",
            "ErrorMessage": f"Statement {statement} grants broad access to the secret: its "
            "principal can be anyone and no condition pins it to an account, organization, "
            "ARN or network.",
        })  # fmt: skip
    return {"PolicyValidationPassed": not errors, "ValidationErrors": errors}


def list_resource_policies(deps: SecretsDeps, ctx: RequestContext, req: Params) -> Result:
    if req.get("NextToken"):
        # Every answer fits one page (a secret has at most one policy): no token was issued.
        raise InvalidNextTokenException("The NextToken value is not valid.")
    secret = resolve(deps, ctx, req["SecretId"], "secretsmanager:ListResourcePolicies", req)
    policies = [{"PolicyName": DEFAULT}] if secret.resource_policy is not None else []
    return {"ResourcePolicies": policies}


OPERATIONS: dict[str, Handler] = {
    "GetResourcePolicy": get_resource_policy,
    "PutResourcePolicy": put_resource_policy,
    "DeleteResourcePolicy": delete_resource_policy,
    "ValidateResourcePolicy": validate_resource_policy,
    "ListResourcePolicies": list_resource_policies,
}
