"""Aliases: CreateAlias, UpdateAlias, DeleteAlias, ListAliases."""

from __future__ import annotations

from typing import Any

from openkms.domain.arn import alias_arn
from openkms.domain.key import KeyRecord, require_not_pending_deletion
from openkms.errors import (
    AccessDeniedException,
    AlreadyExistsException,
    LimitExceededException,
    NotFoundException,
    ValidationException,
)
from openkms.service.common import decode_marker, page
from openkms.service.context import RequestContext
from openkms.service.runtime import Runtime
from openkms.storage.base import StorageConflict
from openkms.storage.records import AliasRecord

MAX_ALIASES_PER_KEY = 50
_PREFIX = "alias/"
_RESERVED = "alias/aws/"


def _check_name(name: str) -> None:
    if not name.startswith(_PREFIX) or len(name) == len(_PREFIX):
        raise ValidationException(
            'Alias must start with the prefix "alias/". Please see '
            "https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html"
        )
    if name.startswith(_RESERVED):
        raise AccessDeniedException(
            "Alias names that begin with alias/aws/ are reserved for AWS managed keys."
        )


def _check_new_name(name: str) -> None:
    """CreateAlias and UpdateAlias: the model's pattern admits ``:``, AWS does not (only
    letters, digits, ``/``, ``_`` and ``-`` follow ``alias/``)."""
    _check_name(name)
    if ":" in name:
        raise ValidationException(f"{name} contains invalid characters for an alias")


def _authorize_alias(
    rt: Runtime, ctx: RequestContext, action: str, name: str, req: dict[str, Any]
) -> None:
    """CreateAlias, UpdateAlias and DeleteAlias need the permission on the alias itself (its
    ARN, in the caller's identity policies), as well as on the key or keys in their key policy
    (AWS "Controlling access to aliases")."""
    resource = alias_arn(rt.partition, ctx.region, ctx.principal.account_id, name)
    rt.access.authorize_account(ctx, action, resource, req)


def _target(rt: Runtime, ctx: RequestContext, key_ref: str) -> KeyRecord:
    if key_ref.startswith("alias/") or (key_ref.startswith("arn:") and ":alias/" in key_ref):
        raise ValidationException("Aliases must refer to keys. Not aliases")
    key = rt.resolve_key(ctx, key_ref, allow_alias=False)
    if key.account_id != ctx.principal.account_id:
        raise NotFoundException(f"Key '{key.arn}' does not exist")
    return key


def create_alias(rt: Runtime, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    name = req["AliasName"]
    _check_new_name(name)
    _authorize_alias(rt, ctx, "kms:CreateAlias", name, req)
    key = _target(rt, ctx, req["TargetKeyId"])
    rt.access.authorize_key(ctx, "kms:CreateAlias", key, req)
    require_not_pending_deletion(key)
    account, region = ctx.principal.account_id, ctx.region
    record = AliasRecord(account, region, name, key.key_id, ctx.now, ctx.now)
    with rt.storage.transaction():
        if (
            len(rt.storage.list_aliases(account, region, key.key_id, None, MAX_ALIASES_PER_KEY + 1))
            >= MAX_ALIASES_PER_KEY
        ):
            raise LimitExceededException(
                f"A KMS key can have at most {MAX_ALIASES_PER_KEY} aliases."
            )
        try:
            rt.storage.insert_alias(record)
        except StorageConflict as exc:
            raise AlreadyExistsException(
                f"An alias with the name {alias_arn(rt.partition, region, account, name)} "
                "already exists"
            ) from exc
    rt.forget_alias(account, region, name)
    return {}


def _existing(rt: Runtime, ctx: RequestContext, name: str) -> AliasRecord:
    alias = rt.storage.get_alias(ctx.principal.account_id, ctx.region, name)
    if alias is None:
        arn = alias_arn(rt.partition, ctx.region, ctx.principal.account_id, name)
        raise NotFoundException(f"Alias {arn} is not found.")
    return alias


def update_alias(rt: Runtime, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    name = req["AliasName"]
    _check_new_name(name)
    _authorize_alias(rt, ctx, "kms:UpdateAlias", name, req)
    new_key = _target(rt, ctx, req["TargetKeyId"])
    alias = _existing(rt, ctx, name)
    old_arn = rt.key_arn_for(alias.account_id, alias.region, alias.key_id)
    old_key = rt.load_key(old_arn)
    rt.access.authorize_key(ctx, "kms:UpdateAlias", new_key, req)
    if old_key is not None:
        rt.access.authorize_key(ctx, "kms:UpdateAlias", old_key, req)
        if (old_key.key_spec, old_key.key_usage) != (new_key.key_spec, new_key.key_usage):
            raise ValidationException(
                f"{old_key.arn} key usage and spec must match {new_key.arn} key usage and spec."
            )
    require_not_pending_deletion(new_key)
    with rt.storage.transaction():
        if rt.storage.get_alias(alias.account_id, alias.region, name) is None:
            raise NotFoundException(f"Alias {name} is not found.")
        rt.storage.update_alias(
            AliasRecord(
                alias.account_id, alias.region, name, new_key.key_id, alias.created_at, ctx.now
            )
        )
    rt.forget_alias(alias.account_id, alias.region, name)
    return {}


def delete_alias(rt: Runtime, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    name = req["AliasName"]
    _check_name(name)
    _authorize_alias(rt, ctx, "kms:DeleteAlias", name, req)
    alias = _existing(rt, ctx, name)
    key = rt.load_key(rt.key_arn_for(alias.account_id, alias.region, alias.key_id))
    if key is not None:
        rt.access.authorize_key(ctx, "kms:DeleteAlias", key, req)
    rt.storage.delete_alias(alias.account_id, alias.region, name)
    rt.forget_alias(alias.account_id, alias.region, name)
    return {}


def list_aliases(rt: Runtime, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    limit = req.get("Limit") or 50
    after = decode_marker(req.get("Marker"))
    key_id: str | None = None
    if req.get("KeyId") is not None:
        key = rt.resolve_key(ctx, req["KeyId"], allow_alias=False)
        rt.access.authorize_key(ctx, "kms:ListAliases", key, req)
        key_id = key.key_id
    else:
        rt.access.authorize_account(ctx, "kms:ListAliases", "*", req)
    account, region = ctx.principal.account_id, ctx.region
    aliases = rt.storage.list_aliases(account, region, key_id, after, limit + 1)
    result: dict[str, Any] = {
        "Aliases": [
            {
                "AliasName": a.alias_name,
                "AliasArn": alias_arn(rt.partition, region, account, a.alias_name),
                "TargetKeyId": a.key_id,
                "CreationDate": a.created_at,
                "LastUpdatedDate": a.updated_at,
            }
            for a in aliases[:limit]
        ]
    }
    result.update(page(aliases, limit, lambda a: a.alias_name))
    return result
