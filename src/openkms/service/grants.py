"""Grants: CreateGrant, ListGrants, ListRetirableGrants, RetireGrant, RevokeGrant.

Grants live in the document store: ``kms-grant`` (scope key ARN, name grant id), with two
indexes, ``kms-grant-name`` (scope key ARN, name = grant name → grant id, for idempotent
retries) and ``kms-grant-retiring`` (scope retiring principal, name grant id → key ARN)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import orjson

from openkms.domain.arn import parse_arn
from openkms.domain.grant import GrantRecord, decode_token, encode_token
from openkms.domain.key import KeyRecord, require_usable_for_crypto
from openkms.errors import (
    AccessDeniedException,
    InvalidArnException,
    InvalidGrantIdException,
    InvalidGrantTokenException,
    LimitExceededException,
    NotFoundException,
    ValidationException,
)
from openkms.iam.unique_ids import is_entity_arn, unique_id
from openkms.policy.grants import case_collision, operations_valid_for_key
from openkms.service.common import decode_marker, dry_run, encode_marker
from openkms.service.context import Principal, RequestContext
from openkms.service.grant_store import (
    KIND,
    KIND_NAME,
    KIND_RETIRING,
    grants_for_key,
    load_grant,
)
from openkms.service.runtime import Runtime

MAX_GRANTS_PER_KEY = 50_000


def _check_operations(key: KeyRecord, operations: Sequence[str]) -> None:
    problem = operations_valid_for_key(operations, key.key_spec, key.key_usage)
    if problem is not None:
        raise ValidationException(problem)


def create_grant(rt: Runtime, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    key = rt.resolve_key(ctx, req["KeyId"], allow_alias=False)
    for token in req.get("GrantTokens") or []:
        decode_token(token)
    rt.access.authorize_key(ctx, "kms:CreateGrant", key, req)
    grantee = req.get("GranteePrincipal") or req.get("GranteeServicePrincipal")
    if not grantee:
        raise ValidationException("GranteePrincipal is required.")
    operations: list[str] = list(dict.fromkeys(req["Operations"]))
    if not operations:
        raise ValidationException("Operations must not be empty.")
    _check_operations(key, operations)
    constraints = req.get("Constraints") or {}
    equals = constraints.get("EncryptionContextEquals")
    subset = constraints.get("EncryptionContextSubset")
    if (equals is not None or subset is not None) and key.key_spec != "SYMMETRIC_DEFAULT":
        raise ValidationException(
            "Encryption context grant constraints are valid only for symmetric encryption keys."
        )
    for pairs in (equals, subset):
        collision = case_collision(pairs)
        if collision is not None:
            raise ValidationException(
                f"Grant constraint keys are case-insensitive: more than one key is named "
                f"{collision!r} when case is ignored."
            )
    require_usable_for_crypto(key)
    retiring = req.get("RetiringPrincipal") or req.get("RetiringServicePrincipal")
    grantee_id = _bound_id(rt, grantee, service=not req.get("GranteePrincipal"))
    retiring_id = _bound_id(rt, retiring, service=not req.get("RetiringPrincipal"))
    dry_run(req)
    name = req.get("Name")
    with rt.storage.transaction():
        if name is not None:
            existing_id = rt.storage.get_document(KIND_NAME, key.arn, name)
            if existing_id is not None:
                existing = load_grant(rt.storage, key.arn, orjson.loads(existing_id))
                if existing is not None:
                    return {
                        "GrantId": existing.grant_id,
                        "GrantToken": encode_token(existing.grant_id, key.arn),
                    }
        count = len(rt.storage.list_documents(KIND, key.arn, limit=MAX_GRANTS_PER_KEY))
        if count >= MAX_GRANTS_PER_KEY:
            raise LimitExceededException(
                f"The key {key.arn} already has the maximum of {MAX_GRANTS_PER_KEY} grants."
            )
        grant = GrantRecord(
            grant_id=os.urandom(32).hex(),
            key_arn=key.arn,
            key_id=key.key_id,
            grantee_principal=grantee,
            operations=tuple(operations),
            created_at=ctx.now,
            issuing_account=f"arn:{rt.partition}:iam::{ctx.principal.account_id}:root",
            name=name,
            retiring_principal=retiring,
            encryption_context_equals=equals,
            encryption_context_subset=subset,
            grantee_id=grantee_id,
            retiring_id=retiring_id,
        )
        rt.storage.put_document(
            KIND, key.arn, grant.grant_id, orjson.dumps(grant.to_doc()).decode(), ctx.now
        )
        if name is not None:
            rt.storage.put_document(
                KIND_NAME, key.arn, name, orjson.dumps(grant.grant_id).decode(), ctx.now
            )
        if grant.retiring_principal:
            rt.storage.put_document(
                KIND_RETIRING,
                grant.retiring_principal,
                grant.grant_id,
                orjson.dumps(key.arn).decode(),
                ctx.now,
            )
    rt.forget_grants(key.arn)
    return {"GrantId": grant.grant_id, "GrantToken": encode_token(grant.grant_id, key.arn)}


def _bound_id(rt: Runtime, principal: str | None, service: bool = False) -> str | None:
    """The unique id of a grantee or retiring principal that names an IAM user or role (which
    must exist: InvalidArnException otherwise, as AWS answers); None for other principals.
    A principal that is neither an account nor an IAM or STS ARN (``nobody``, a service name
    outside the ...ServicePrincipal members) is InvalidArnException too: a grant to it could
    never be used, and AWS refuses it."""
    if principal is None:
        return None
    if not service and _principal_account(principal) is None:
        raise InvalidArnException(f"{principal} is not a valid principal ARN.")
    if not is_entity_arn(principal):
        return None
    found = unique_id(rt.storage, principal)
    if found is None:
        raise InvalidArnException(f"{principal} is not a valid principal: no such user or role.")
    return found


def _principal_named(principal: Principal, arn: str | None, bound_id: str | None) -> bool:
    """Whether a grant's grantee or retiring principal (``arn``, bound to ``bound_id`` when it is
    an IAM user or role) is ``principal``: by unique id when bound (a session matches its role),
    otherwise by exact ARN."""
    if bound_id is not None:
        return principal.unique_id == bound_id
    return arn is not None and principal.arn == arn


class _Shown:
    """How a listing shows grant principals: a bound IAM user or role that no longer exists
    (or exists again under a new unique id) as its unique id, as AWS shows it."""

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._current: dict[str, str | None] = {}

    def __call__(self, arn: str, bound_id: str | None) -> str:
        if bound_id is None:
            return arn
        if arn not in self._current:
            self._current[arn] = unique_id(self._rt.storage, arn)
        return arn if self._current[arn] == bound_id else bound_id


def _entry(grant: GrantRecord, shown: _Shown) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "KeyId": grant.key_arn,
        "GrantId": grant.grant_id,
        "CreationDate": grant.created_at,
        "GranteePrincipal": shown(grant.grantee_principal, grant.grantee_id),
        "IssuingAccount": grant.issuing_account,
        "Operations": list(grant.operations),
    }
    if grant.name is not None:
        entry["Name"] = grant.name
    if grant.retiring_principal is not None:
        entry["RetiringPrincipal"] = shown(grant.retiring_principal, grant.retiring_id)
    constraints = grant.constraints()
    if constraints is not None:
        entry["Constraints"] = constraints
    return entry


def list_grants(rt: Runtime, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    key = rt.resolve_key(ctx, req["KeyId"], allow_alias=False)
    rt.access.authorize_key(ctx, "kms:ListGrants", key, req)
    limit = req.get("Limit") or 50
    after = decode_marker(req.get("Marker"))
    grants = [
        g
        for g in grants_for_key(rt.storage, key.arn)
        if (req.get("GrantId") is None or g.grant_id == req["GrantId"])
        and (req.get("GranteePrincipal") is None or g.grantee_principal == req["GranteePrincipal"])
        and (after is None or g.grant_id > after)
    ]
    shown = _Shown(rt)
    result: dict[str, Any] = {"Grants": [_entry(g, shown) for g in grants[:limit]]}
    result["Truncated"] = len(grants) > limit
    if len(grants) > limit:
        result["NextMarker"] = encode_marker(grants[limit - 1].grant_id)
    return result


def _principal_account(principal: str) -> str | None:
    """The account of a principal ARN (``arn:aws:iam::A:...``, ``arn:aws:sts::A:...``) or of a
    bare account id; None for anything else."""
    if principal.isdigit() and len(principal) == 12:
        return principal
    arn = parse_arn(principal)
    if arn is None or arn.service not in ("iam", "sts"):
        return None
    account = arn.account_id
    return account if account.isdigit() and len(account) == 12 else None


def list_retirable_grants(rt: Runtime, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    """AWS: "You must specify a principal in your Amazon Web Services account"; the authorized
    resource is that principal. Grants on keys of other accounts that name it are listed; a
    service principal's grants only on the caller's account's keys."""
    principal = req.get("RetiringPrincipal")
    service = req.get("RetiringServicePrincipal")
    caller_account = ctx.principal.account_id
    if principal:
        account = _principal_account(principal)
        if account is None:
            raise InvalidArnException(f"{principal} is not a valid principal ARN.")
        if account != caller_account:
            raise AccessDeniedException(
                f"User: {ctx.principal.arn} is not authorized to perform: "
                f"kms:ListRetirableGrants on resource: {principal} because the retiring "
                "principal is not in the caller's account"
            )
        rt.access.authorize_account(ctx, "kms:ListRetirableGrants", principal, req)
    elif service:
        principal = service
        rt.access.authorize_account(ctx, "kms:ListRetirableGrants", "*", req)
    else:
        raise ValidationException("RetiringPrincipal is required.")
    limit = req.get("Limit") or 50
    after = decode_marker(req.get("Marker"))
    # A grant bound to the unique id of a user or role that has since been deleted belongs to
    # that principal, not to one created again under the same name.
    current = unique_id(rt.storage, principal) if is_entity_arn(principal) else None
    index = rt.storage.list_documents(KIND_RETIRING, principal, after=after, limit=limit + 1)
    grants = []
    for grant_id, key_arn_json in index:
        key_arn = orjson.loads(key_arn_json)
        if service and not _in_account(key_arn, caller_account):
            continue
        grant = load_grant(rt.storage, key_arn, grant_id)
        if grant is not None and grant.retiring_id in (None, current):
            grants.append(grant)
    shown = _Shown(rt)
    result: dict[str, Any] = {"Grants": [_entry(g, shown) for g in grants[:limit]]}
    result["Truncated"] = len(index) > limit
    if len(index) > limit:
        result["NextMarker"] = encode_marker(index[limit - 1][0])
    return result


def _in_account(arn: str, account_id: str) -> bool:
    parsed = parse_arn(arn)
    return parsed is not None and parsed.account_id == account_id


def _delete(rt: Runtime, grant: GrantRecord) -> None:
    with rt.storage.transaction():
        rt.storage.delete_document(KIND, grant.key_arn, grant.grant_id)
        if grant.name is not None:
            rt.storage.delete_document(KIND_NAME, grant.key_arn, grant.name)
        if grant.retiring_principal:
            rt.storage.delete_document(KIND_RETIRING, grant.retiring_principal, grant.grant_id)
    rt.forget_grants(grant.key_arn)


def retire_grant(rt: Runtime, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    token = req.get("GrantToken")
    if token is not None:
        grant_id, key_arn = decode_token(token)
        key = rt.load_key(key_arn)
        if key is None:
            raise InvalidGrantTokenException("Invalid grant token.")
    elif req.get("KeyId") and req.get("GrantId"):
        key = rt.resolve_key(ctx, req["KeyId"], allow_alias=False)
        grant_id = req["GrantId"]
    else:
        raise ValidationException("Either GrantToken, or KeyId and GrantId, are required.")
    grant = load_grant(rt.storage, key.arn, grant_id)
    if grant is None:
        if token is not None:
            raise InvalidGrantTokenException("Invalid grant token.")
        raise NotFoundException(f"Grant {grant_id} does not exist for key {key.arn}")
    principal = ctx.principal
    may_retire = (
        _principal_named(principal, grant.retiring_principal, grant.retiring_id)
        or (
            "RetireGrant" in grant.operations
            and _principal_named(principal, grant.grantee_principal, grant.grantee_id)
        )
        or (principal.kind == "root" and principal.account_id == key.account_id)
    )
    if not may_retire:
        raise AccessDeniedException(
            f"User: {principal.arn} is not authorized to perform: kms:RetireGrant on resource: "
            f"{key.arn} because the grant does not name it as a retiring or grantee principal"
        )
    dry_run(req)
    _delete(rt, grant)
    return {}


def revoke_grant(rt: Runtime, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    key = rt.resolve_key(ctx, req["KeyId"], allow_alias=False)
    rt.access.authorize_key(ctx, "kms:RevokeGrant", key, req)
    grant = load_grant(rt.storage, key.arn, req["GrantId"])
    if grant is None:
        raise InvalidGrantIdException(f"Grant {req['GrantId']} does not exist for key {key.arn}")
    dry_run(req)
    _delete(rt, grant)
    return {}
