"""Access keys of IAM users (and of the account root): Create, List, Update, Delete.

They live in the access-key table with the owner's ARN as principal, so SigV4 finds them like
the root keys ``openkms accounts create`` issues. A deleted or deactivated key stops working
within the identity cache's TTL.
"""

from __future__ import annotations

import dataclasses

from openkms.iam import DeleteConflict, LimitExceeded, NoSuchEntity, ValidationError
from openkms.iam.authz import require
from openkms.iam.entities import USER, lookup
from openkms.iam.handler import IamDeps, Params, Result
from openkms.iam.store import IamStore, account_store
from openkms.iam.users import caller_user_name
from openkms.service.accounts import issue_access_key, root_arn
from openkms.service.context import RequestContext
from openkms.storage.records import AccessKeyRecord

MAX_KEYS_PER_USER = 2
ROOT_USER_NAME = "root"


@dataclasses.dataclass(frozen=True, slots=True)
class _Owner:
    name: str  # the user name, or "root"
    arn: str
    exists: bool


def _owner(deps: IamDeps, ctx: RequestContext, store: IamStore, params: Params) -> _Owner:
    name = params.get("UserName") or caller_user_name(ctx, store)
    if name is None:
        return _Owner(ROOT_USER_NAME, root_arn(deps.partition, store.account_id), True)
    user, arn = lookup(store, USER, name)
    return _Owner(name if user is None else user.name, arn, user is not None)


def _keys_of(deps: IamDeps, store: IamStore, owner: _Owner) -> list[AccessKeyRecord]:
    return [
        k for k in deps.storage.list_access_keys(store.account_id) if k.principal_arn == owner.arn
    ]


def _require_owner(owner: _Owner) -> None:
    if not owner.exists:
        raise NoSuchEntity(f"The user with name {owner.name} cannot be found.")


def _key_of(deps: IamDeps, store: IamStore, owner: _Owner, access_key_id: str) -> AccessKeyRecord:
    record = deps.storage.get_access_key(access_key_id)
    if record is None or record.account_id != store.account_id or record.principal_arn != owner.arn:
        raise NoSuchEntity(f"The Access Key with id {access_key_id} cannot be found.")
    return record


def create_access_key(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
    store = account_store(deps.storage, ctx.principal, deps.partition)
    owner = _owner(deps, ctx, store, params)
    require(deps.storage, ctx, "iam:CreateAccessKey", owner.arn)
    _require_owner(owner)
    with deps.storage.transaction():
        if len(_keys_of(deps, store, owner)) >= MAX_KEYS_PER_USER:
            raise LimitExceeded(f"Cannot exceed quota for AccessKeysPerUser: {MAX_KEYS_PER_USER}")
        issued = issue_access_key(deps.storage, deps.root, deps.clock, store.account_id, owner.arn)
    return {
        "AccessKey": {
            "UserName": owner.name,
            "AccessKeyId": issued.access_key_id,
            "Status": "Active",
            "SecretAccessKey": issued.secret_access_key,
            "CreateDate": deps.clock.now(),
        }
    }


def list_access_keys(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
    store = account_store(deps.storage, ctx.principal, deps.partition)
    owner = _owner(deps, ctx, store, params)
    require(deps.storage, ctx, "iam:ListAccessKeys", owner.arn)
    _require_owner(owner)
    return {
        "AccessKeyMetadata": [
            {
                "UserName": owner.name,
                "AccessKeyId": k.access_key_id,
                "Status": k.status,
                "CreateDate": k.created_at,
            }
            for k in _keys_of(deps, store, owner)
        ],
        "IsTruncated": False,
    }


def _last_active_root_key(
    deps: IamDeps, store: IamStore, owner: _Owner, record: AccessKeyRecord
) -> bool:
    """Whether ``record`` is the account root's last active key: removing it would lock the
    account out (openkms has no console to sign in to)."""
    if not owner.arn.endswith(":root") or record.status != "Active":
        return False
    active = [k for k in _keys_of(deps, store, owner) if k.status == "Active"]
    return len(active) <= 1


def update_access_key(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
    store = account_store(deps.storage, ctx.principal, deps.partition)
    owner = _owner(deps, ctx, store, params)
    require(deps.storage, ctx, "iam:UpdateAccessKey", owner.arn)
    status = params["Status"]
    if status not in ("Active", "Inactive"):
        raise ValidationError(
            f"1 validation error detected: Value '{status}' at 'status' failed to satisfy "
            "constraint: Member must satisfy enum value set: [Active, Inactive]"
        )
    with deps.storage.transaction():
        _require_owner(owner)
        record = _key_of(deps, store, owner, params["AccessKeyId"])
        if status == "Inactive" and _last_active_root_key(deps, store, owner, record):
            raise DeleteConflict("Cannot deactivate the last active access key of the root user.")
        deps.storage.put_access_key(dataclasses.replace(record, status=status))
    return None


def delete_access_key(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
    store = account_store(deps.storage, ctx.principal, deps.partition)
    owner = _owner(deps, ctx, store, params)
    require(deps.storage, ctx, "iam:DeleteAccessKey", owner.arn)
    with deps.storage.transaction():
        _require_owner(owner)
        record = _key_of(deps, store, owner, params["AccessKeyId"])
        if _last_active_root_key(deps, store, owner, record):
            raise DeleteConflict("Cannot delete the last active access key of the root user.")
        deps.storage.delete_access_key(record.access_key_id)
    return None


OPERATIONS = {
    "CreateAccessKey": create_access_key,
    "ListAccessKeys": list_access_keys,
    "UpdateAccessKey": update_access_key,
    "DeleteAccessKey": delete_access_key,
}
