"""Finding the secret a request names, and the rules every operation shares: secret ARNs with
AWS's six-character suffix, name validation, authorization before existence (so a caller who
may not act on a secret learns nothing about whether it exists), and refusing secrets that are
scheduled for deletion.

A ``SecretId`` is a name, a complete ARN, or a partial ARN (an ARN without the ``-xxxxxx``
suffix), as on AWS. A secret of another account can only be named by ARN; whether its resource
policy admits the caller is ``access.authorize``'s decision.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from typing import Any

from openkms.context import RequestContext
from openkms.errors import ValidationException
from openkms.secretsmanager.access import authorize
from openkms.secretsmanager.deps import SecretsDeps
from openkms.secretsmanager.errors import InvalidRequestException, ResourceNotFoundException
from openkms.storage.secrets import SecretRecord

_SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_NAME = re.compile(r"^[A-Za-z0-9/_+=.@!-]+$")
INVALID_NAME = (
    "Invalid name. Must be a valid name containing alphanumeric characters, or any of the "
    "following: -/_+=.@!"
)
MARKED_FOR_DELETION = (
    "You can't perform this operation on the secret because it was marked for deletion."
)
DAY = 86_400
# Where a secret keeps the unique ids of the principals its resource policy names
# (secretsmanager.resource_policies).
POLICY_BINDINGS = "resource_policy_principals"


def new_arn(partition: str, region: str, account_id: str, name: str) -> str:
    suffix = "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(6))
    return f"arn:{partition}:secretsmanager:{region}:{account_id}:secret:{name}-{suffix}"


def check_name(name: str) -> None:
    if not _NAME.match(name):
        raise ValidationException(INVALID_NAME)


def _parse_arn(ref: str) -> tuple[str, str, str] | None:
    """(region, account, name-or-name-with-suffix) of a secret ARN, None if it is not one."""
    parts = ref.split(":", 6)
    if len(parts) != 7 or parts[2] != "secretsmanager" or parts[5] != "secret" or not parts[6]:
        return None
    return parts[3], parts[4], parts[6]


def _find(
    deps: SecretsDeps, ctx: RequestContext, ref: str, lock: bool
) -> tuple[str, SecretRecord | None]:
    """(the ARN to authorize against, the secret or None)."""
    storage = deps.storage
    parsed = _parse_arn(ref) if ref.startswith("arn:") else None
    if parsed is None:
        account, region, name = ctx.principal.account_id, ctx.region, ref
        found = storage.find_secret(account, region, name, lock=lock)
        fallback = f"arn:{deps.partition}:secretsmanager:{region}:{account}:secret:{name}"
        return (found.arn if found else fallback), found
    region, account, tail = parsed
    if region != ctx.region:
        return ref, None
    found = storage.get_secret(ref, lock=lock)
    if found is None:
        # A partial ARN: the name without the "-xxxxxx" suffix.
        found = storage.find_secret(account, region, tail, lock=lock)
    if found is not None and found.account_id != account:
        found = None
    return (found.arn if found else ref), found


def resolve(
    deps: SecretsDeps,
    ctx: RequestContext,
    secret_id: str,
    action: str,
    request: Mapping[str, Any],
    *,
    lock: bool = False,
    allow_deleted: bool = False,
) -> SecretRecord:
    """The secret ``secret_id`` names, once the caller is authorized for ``action`` on it.

    Authorization comes first: a caller who may not act on the secret gets AccessDenied
    whether it exists or not. Then ResourceNotFoundException, then (unless ``allow_deleted``)
    InvalidRequestException for a secret scheduled for deletion."""
    arn, secret = _find(deps, ctx, secret_id, lock)
    authorize(
        deps,
        ctx,
        action,
        arn,
        None if secret is None else secret.resource_policy,
        request,
        secret_tags=() if secret is None else secret.tags,
        policy_bindings=None if secret is None else secret.extra.get(POLICY_BINDINGS),
    )
    if secret is None:
        raise ResourceNotFoundException()
    ctx.resources.append(secret.arn)
    if secret.deleted_at is not None and not allow_deleted:
        raise InvalidRequestException(MARKED_FOR_DELETION)
    return secret


def day_of(moment: float) -> float:
    """Midnight (UTC) of the day ``moment`` falls in: LastAccessedDate's resolution."""
    return float(int(moment // DAY) * DAY)
