"""The unique ids of IAM users and roles named by ARN (key policies, grants, trust policies).

A principal named by ARN is bound to the unique id it has when the policy or grant is stored
(:func:`bind`); a name that is no existing user or role is refused, as AWS refuses it. The
binding decides who the principal is from then on: :func:`stale` says which bindings no longer
hold (the principal was deleted, or deleted and created again under the same name), so that
their ids, not the ARNs, are shown. See ``openkms.policy.principal_ids``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from openkms.iam.store import IamStore, name_from_arn
from openkms.policy.matching import IAM_ENTITY_RE
from openkms.policy.principal_ids import entity_principals, id_principals
from openkms.storage.base import Storage

__all__ = ["bind", "bind_policy", "is_entity_arn", "stale", "unique_id"]


def is_entity_arn(arn: str) -> bool:
    """Whether ``arn`` names an IAM user or role (the principals bound to unique ids)."""
    return IAM_ENTITY_RE.match(arn) is not None


def unique_id(storage: Storage, arn: str) -> str | None:
    """The unique id of the IAM user or role that ``arn`` names now, or None."""
    match = IAM_ENTITY_RE.match(arn)
    if match is None:
        return None
    store = IamStore(storage, match.group(1), arn.split(":", 2)[1])
    name = name_from_arn(arn)
    if match.group(2) == "user":
        user = store.get_user(name)
        return user.user_id if user is not None and user.arn.lower() == arn.lower() else None
    role = store.get_role(name)
    return role.role_id if role is not None and role.arn.lower() == arn.lower() else None


def bind(storage: Storage, arns: Iterable[str]) -> tuple[dict[str, str], list[str]]:
    """(ARN -> unique id for each user or role ARN that exists, the ARNs that do not)."""
    bindings: dict[str, str] = {}
    missing: list[str] = []
    for arn in arns:
        found = unique_id(storage, arn)
        if found is None:
            missing.append(arn)
        else:
            bindings[arn] = found
    return bindings, missing


def bind_policy(storage: Storage, text: str) -> tuple[dict[str, str], list[str]]:
    """The bindings of a (grammatically valid) policy's user and role principals, and the
    principals it names that are invalid: ARNs of no existing user or role, and unique ids
    (a policy names principals by ARN; ids appear only in what is shown for deleted ones)."""
    bindings, missing = bind(storage, entity_principals(text))
    return bindings, missing + id_principals(text)


def stale(storage: Storage, bindings: Mapping[str, str]) -> dict[str, str]:
    """The bindings whose ARN no longer names the principal they were made for (ARN -> id)."""
    return {arn: uid for arn, uid in bindings.items() if unique_id(storage, arn) != uid}
