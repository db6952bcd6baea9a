"""The authorization hook every Secrets Manager operation calls before it acts.

``authorize(deps, ctx, action, secret_arn, resource_policy, request, secret_tags=...)`` raises
``AccessDeniedException`` unless ``ctx.principal`` may perform ``action``
(``secretsmanager:GetSecretValue``) on ``secret_arn`` (``"*"`` for ListSecrets,
GetRandomPassword, BatchGetSecretValue's own check). ``resource_policy`` is the secret's
resource policy text (None: none); ``request`` the validated request parameters, from which the
``secretsmanager:*`` condition keys are read; ``secret_tags`` the secret's tags
(``secretsmanager:ResourceTag/<key>``, ``aws:ResourceTag/<key>``).

The decision (identity and session policies, the resource policy, cross-account rules) is
``resource_access.decide``: the KMS policy evaluator with IAM's rules for optional resource
policies, the caller's identity from the access controller's cache.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from openkms.context import RequestContext
from openkms.errors import AccessDeniedException
from openkms.secretsmanager import resource_access
from openkms.secretsmanager.deps import SecretsDeps

# The resource of the operations that act on no one secret (ListSecrets, GetRandomPassword).
ANY = "*"

# Request members read as condition keys: member -> key (lower-cased, as the evaluator wants).
_REQUEST_KEYS: Mapping[str, str] = {
    "SecretId": "secretsmanager:secretid",
    "Name": "secretsmanager:name",
    "Description": "secretsmanager:description",
    "KmsKeyId": "secretsmanager:kmskeyid",
    "VersionId": "secretsmanager:versionid",
    "VersionStage": "secretsmanager:versionstage",
    "RotationLambdaARN": "secretsmanager:rotationlambdaarn",
    "RecoveryWindowInDays": "secretsmanager:recoverywindowindays",
    "ForceDeleteWithoutRecovery": "secretsmanager:forcedeletewithoutrecovery",
    "BlockPublicPolicy": "secretsmanager:blockpublicpolicy",
    "RotateImmediately": "secretsmanager:rotateimmediately",
    "ForceOverwriteReplicaSecret": "secretsmanager:forceoverwritereplicasecret",
}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def condition_context(
    request: Mapping[str, Any],
    secret_arn: str,
    secret_tags: Sequence[tuple[str, str]] = (),
) -> dict[str, tuple[str, ...]]:
    """The ``secretsmanager:*`` and ``aws:*Tag*`` condition keys of one request."""
    context: dict[str, tuple[str, ...]] = {}
    # The request's own members (one or two for a read), not the twelve keys' lookups.
    for member, value in request.items():
        key = _REQUEST_KEYS.get(member)
        if key is not None and value is not None and not isinstance(value, dict | list):
            context[key] = (_text(value),)
    if secret_arn != ANY:
        context["secretsmanager:secretid"] = (secret_arn,)
    for key, value in secret_tags:
        context[f"secretsmanager:resourcetag/{key.lower()}"] = (value,)
        context[f"aws:resourcetag/{key.lower()}"] = (value,)
    tags = request.get("Tags")
    if isinstance(tags, list):
        keys = []
        for tag in tags:
            if isinstance(tag, dict) and "Key" in tag:
                keys.append(str(tag["Key"]))
                context[f"aws:requesttag/{str(tag['Key']).lower()}"] = (str(tag.get("Value", "")),)
        context["aws:tagkeys"] = tuple(keys)
    tag_keys = request.get("TagKeys")
    if isinstance(tag_keys, list):
        context["aws:tagkeys"] = tuple(str(k) for k in tag_keys)
    regions = request.get("AddReplicaRegions")
    if isinstance(regions, list):
        context["secretsmanager:addreplicaregions"] = tuple(
            str(r.get("Region", "")) for r in regions if isinstance(r, dict)
        )
    return context


def account_of(arn: str) -> str:
    parts = arn.split(":", 5)
    return parts[4] if len(parts) == 6 else ""


def denied(ctx: RequestContext, action: str, resource: str, reason: str) -> AccessDeniedException:
    """Secrets Manager's wording of a refusal."""
    return AccessDeniedException(
        f"User: {ctx.principal.arn} is not authorized to perform: {action} on resource: "
        f"{resource} {reason}".rstrip()
    )


def authorize(
    deps: SecretsDeps,
    ctx: RequestContext,
    action: str,
    secret_arn: str,
    resource_policy: str | None,
    request: Mapping[str, Any],
    *,
    secret_tags: Sequence[tuple[str, str]] = (),
    policy_bindings: Mapping[str, str] | None = None,
) -> None:
    """Raises AccessDeniedException unless the caller may do ``action`` on ``secret_arn``.
    ``policy_bindings``: the unique ids of the principals the resource policy names."""
    extra = condition_context(request, secret_arn, secret_tags)
    decision = resource_access.decide(
        deps, ctx, action, secret_arn, resource_policy, extra, bindings=policy_bindings
    )
    if not decision.allowed:
        raise denied(ctx, action, secret_arn, decision.detail)
