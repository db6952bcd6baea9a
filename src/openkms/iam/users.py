"""IAM users: CreateUser, GetUser, ListUsers, DeleteUser, their tags and their policies."""

from __future__ import annotations

from typing import Any

from openkms.iam import ValidationError
from openkms.iam.entities import (
    USER,
    NewEntity,
    create_handler,
    delete_handler,
    list_handler,
    show,
    tag_handlers,
)
from openkms.iam.entity_policies import policy_handlers
from openkms.iam.handler import IamDeps, Params, Result
from openkms.iam.store import IamStore, User, account_store, name_from_arn
from openkms.service.accounts import root_arn
from openkms.service.context import RequestContext


def caller_user_name(ctx: RequestContext, store: IamStore) -> str | None:
    """The caller's own user name, None for the account root; ValidationError for others."""
    principal = ctx.principal
    if principal.kind == "user":
        return name_from_arn(principal.arn)
    if principal.kind == "root":
        return None
    raise ValidationError("Must specify userName when calling with non-User credentials")


def _build(deps: IamDeps, params: Params, new: NewEntity) -> User:
    return User(new.name, new.entity_id, new.path, new.arn, new.created_at, new.tags)


def get_user(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
    """The user named, else the caller (a user, or the account root)."""
    store = account_store(deps.storage, ctx.principal, deps.partition)
    name = params.get("UserName") or caller_user_name(ctx, store)
    if name is None:  # the account root
        arn = root_arn(deps.partition, store.account_id)
        account = deps.storage.get_account(store.account_id)
        out: dict[str, Any] = {"UserId": store.account_id, "Arn": arn}
        if account is not None:
            out["CreateDate"] = account.created_at
        return {"User": out}
    return show(deps, ctx, USER, name)


OPERATIONS = {
    "CreateUser": create_handler(USER, _build),
    "GetUser": get_user,
    "ListUsers": list_handler(USER),
    "DeleteUser": delete_handler(USER),
    **tag_handlers(USER),
    **policy_handlers(USER),
}
