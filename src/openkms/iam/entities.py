"""Users, groups and roles as data, and the handlers the three kinds share.

An ``EntityKind`` holds what differs between them: where and under which names they are stored
(``EntityDoc``: ``user``, ``User``, ``iam-user``), the parameter that names one (``UserName``),
the prefix of its unique id, how it is shown, what keeps it from being deleted, whether it has
tags (and refuses permissions boundaries), and its quota of inline policy text. From one kind the
factories below build its Create, Get, List, Delete and Tag/Untag/List…Tags handlers;
``openkms.iam.entity_policies`` builds its attached and inline policy handlers the same way.
Every handler looks the entity up, asks ``iam:<Action>`` on its ARN (path "/" when it does not
exist) and only then says whether it exists.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from openkms.iam import DeleteConflict, InvalidInput, NoSuchEntity
from openkms.iam.authz import require
from openkms.iam.handler import Handler, IamDeps, Params, Result
from openkms.iam.store import (
    GROUPS,
    ROLES,
    USERS,
    EntityDoc,
    Group,
    IamStore,
    Role,
    Tags,
    User,
    account_store,
    encode_document,
    merge_tags,
    new_id,
    path_matches,
    remove_tags,
    request_tag_context,
    tags_from_params,
    tags_out,
)
from openkms.iam.unique_ids import stale
from openkms.policy.principal_ids import substitute_principals
from openkms.service.context import RequestContext
from openkms.storage.base import Storage


# --- how each kind is shown: (storage, entity, in detail) -> result member ---------------------
def user_out(storage: Storage, user: User, detail: bool = True) -> dict[str, Any]:
    """A user; its tags only in detail (GetUser, CreateUser), not in lists."""
    out: dict[str, Any] = {
        "Path": user.path,
        "UserName": user.name,
        "UserId": user.user_id,
        "Arn": user.arn,
        "CreateDate": user.created_at,
    }
    if detail and user.tags:
        out["Tags"] = tags_out(user.tags)
    return out


def group_out(storage: Storage, group: Group, detail: bool = True) -> dict[str, Any]:
    return {
        "Path": group.path,
        "GroupName": group.name,
        "GroupId": group.group_id,
        "Arn": group.arn,
        "CreateDate": group.created_at,
    }


def shown_trust_policy(storage: Storage, role: Role) -> str:
    """The trust policy as IAM shows it: a named user or role that no longer exists (or exists
    again under a new unique id) appears as its unique id."""
    if not role.trust_principal_ids:
        return role.trust_policy
    return substitute_principals(role.trust_policy, stale(storage, role.trust_principal_ids))


def role_out(storage: Storage, role: Role, detail: bool = True) -> dict[str, Any]:
    """A role; its tags and ``RoleLastUsed`` only in detail (GetRole)."""
    out: dict[str, Any] = {
        "Path": role.path,
        "RoleName": role.name,
        "RoleId": role.role_id,
        "Arn": role.arn,
        "CreateDate": role.created_at,
        "AssumeRolePolicyDocument": encode_document(shown_trust_policy(storage, role)),
        "MaxSessionDuration": role.max_session_seconds,
    }
    if role.description is not None:
        out["Description"] = role.description
    if detail:
        if role.tags:
            out["Tags"] = tags_out(role.tags)
        out["RoleLastUsed"] = {}
    return out


# --- what keeps an entity from being deleted, in the order IAM checks it ----------------------
@dataclass(frozen=True, slots=True)
class Blocker:
    present: Callable[[IamStore, str, Any], object]  # (store, kind, entity) -> truthy if blocked
    message: str


_ACCESS_KEYS = Blocker(
    lambda store, kind, user: [
        k for k in store.storage.list_access_keys(store.account_id) if k.principal_arn == user.arn
    ],
    "Cannot delete entity, must delete access keys first.",
)
_INLINE = Blocker(
    lambda store, kind, entity: store.inline_policies(kind, entity.name),
    "Cannot delete entity, must delete policies first.",
)
_ATTACHED = Blocker(
    lambda store, kind, entity: store.attachments(kind, entity.name),
    "Cannot delete entity, must detach all policies first.",
)
_GROUPS_OF_USER = Blocker(
    lambda store, kind, user: store.group_names_of(user.name),
    "Cannot delete entity, must remove users from group first.",
)
_MEMBERS = Blocker(
    lambda store, kind, group: store.member_names_of(group.name),
    "Cannot delete entity, must remove users from group first.",
)


# --- the kinds -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class EntityKind:
    doc: EntityDoc[Any]  # kind ("user"), label ("User"), where it is stored
    id_prefix: str  # of its unique id
    render: Callable[[Storage, Any, bool], dict[str, Any]]
    delete_blockers: tuple[Blocker, ...]
    max_inline_size: int  # aggregate characters of its inline policies, whitespace not counted
    tagged: bool  # has tags; refuses PermissionsBoundary

    @property
    def kind(self) -> str:
        """``user``, ``group`` or ``role``: in ARNs, messages and policy documents' names."""
        return self.doc.kind

    @property
    def label(self) -> str:
        """``User``, ``Group`` or ``Role``: in action names and result members."""
        return self.doc.label

    @property
    def name_param(self) -> str:
        return f"{self.label}Name"


USER = EntityKind(
    doc=USERS,
    id_prefix="AIDA",
    render=user_out,
    delete_blockers=(_ACCESS_KEYS, _INLINE, _ATTACHED, _GROUPS_OF_USER),
    max_inline_size=2048,
    tagged=True,
)
GROUP = EntityKind(
    doc=GROUPS,
    id_prefix="AGPA",
    render=group_out,
    delete_blockers=(_MEMBERS, _INLINE, _ATTACHED),
    max_inline_size=5120,
    tagged=False,
)
ROLE = EntityKind(
    doc=ROLES,
    id_prefix="AROA",
    render=role_out,
    delete_blockers=(_INLINE, _ATTACHED),
    max_inline_size=10240,
    tagged=True,
)
KINDS: dict[str, EntityKind] = {k.kind: k for k in (USER, GROUP, ROLE)}


def lookup(store: IamStore, kind: EntityKind, name: str) -> tuple[Any, str]:
    """(the entity or None, its ARN — with path "/" when it does not exist)."""
    entity = store.get_entity(kind.doc, name)
    return entity, entity.arn if entity is not None else store.arn(kind.kind, "/", name)


@dataclass(frozen=True, slots=True)
class Target:
    """The entity a request names, looked up before the caller was authorized."""

    store: IamStore
    kind: EntityKind
    name: str  # its exact name when it exists, else as given
    exists: bool

    def require(self) -> None:
        if not self.exists:
            raise NoSuchEntity(f"The {self.kind.kind} with name {self.name} cannot be found.")


def target(
    deps: IamDeps,
    ctx: RequestContext,
    kind: EntityKind,
    action: str,
    name: str,
    extra: dict[str, tuple[str, ...]] | None = None,
) -> Target:
    """The entity ``name`` of ``kind``, once the caller may do ``iam:<action>`` on it."""
    store = account_store(deps.storage, ctx.principal, deps.partition)
    entity, arn = lookup(store, kind, name)
    require(deps.storage, ctx, f"iam:{action}", arn, extra)
    return Target(store, kind, name if entity is None else entity.name, entity is not None)


def no_boundaries(params: Params) -> None:
    if "PermissionsBoundary" in params:
        raise InvalidInput("Permissions boundaries are not supported by this server.")


def listing(result: dict[str, Any], marker: str | None) -> dict[str, Any]:
    """A page of results: ``Marker`` only when there is a next page."""
    if marker:
        result["Marker"] = marker
    return result


# --- the handlers ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class NewEntity:
    """What every new user, group and role has; a kind's builder adds the rest."""

    name: str
    entity_id: str
    path: str
    arn: str
    created_at: float
    tags: Tags


Builder = Callable[[IamDeps, Params, NewEntity], Any]


def create_handler(kind: EntityKind, build: Builder) -> Handler:
    """Create<Kind>: the entity is shown as in a list, with the tags it was created with."""

    def create(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
        store = account_store(deps.storage, ctx.principal, deps.partition)
        if kind.tagged:
            no_boundaries(params)
        name, path = params[kind.name_param], params.get("Path", "/")
        tags = tags_from_params(params.get("Tags")) if kind.tagged else ()
        arn = store.arn(kind.kind, path, name)
        require(deps.storage, ctx, f"iam:Create{kind.label}", arn, request_tag_context(tags))
        new = NewEntity(name, new_id(kind.id_prefix), path, arn, ctx.now, tags)
        entity = build(deps, params, new)
        with deps.storage.transaction():
            store.put_entity(kind.doc, entity, ctx.now, create=True)
        out = kind.render(deps.storage, entity, False)
        return {kind.label: out | ({"Tags": tags_out(tags)} if tags else {})}

    return create


def show(deps: IamDeps, ctx: RequestContext, kind: EntityKind, name: str) -> Result:
    """Get<Kind> of the entity ``name``, in detail."""
    entity = target(deps, ctx, kind, f"Get{kind.label}", name).store.require_entity(kind.doc, name)
    return {kind.label: kind.render(deps.storage, entity, True)}


def get_handler(kind: EntityKind) -> Handler:
    def get(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
        return show(deps, ctx, kind, params[kind.name_param])

    return get


def list_handler(kind: EntityKind) -> Handler:
    """List<Kind>s under ``PathPrefix``, paginated."""
    plural = f"{kind.label}s"

    def list_(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
        store = account_store(deps.storage, ctx.principal, deps.partition)
        prefix = params.get("PathPrefix")
        require(deps.storage, ctx, f"iam:List{plural}", store.arn(kind.kind, prefix or "/", ""))
        page = store.page(
            kind.doc.document,
            kind.doc.cls,
            marker=params.get("Marker"),
            max_items=params.get("MaxItems"),
            keep=lambda e: path_matches(e.path, prefix),
        )
        result = {
            plural: [kind.render(deps.storage, e, False) for e in page.items],
            "IsTruncated": page.truncated,
        }
        return listing(result, page.marker)

    return list_


def delete_handler(kind: EntityKind) -> Handler:
    def delete(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
        name = params[kind.name_param]
        store = target(deps, ctx, kind, f"Delete{kind.label}", name).store
        with deps.storage.transaction():
            entity = store.require_entity(kind.doc, name)
            for blocker in kind.delete_blockers:
                if blocker.present(store, kind.kind, entity):
                    raise DeleteConflict(blocker.message)
            store.delete_entity(kind.doc, entity)
        return None

    return delete


def tag_handlers(kind: EntityKind) -> dict[str, Handler]:
    """Tag<Kind>, Untag<Kind> and List<Kind>Tags."""
    label = kind.label

    def update(
        store: IamStore, ctx: RequestContext, name: str, change: Callable[[Tags], Tags]
    ) -> None:
        entity = store.require_entity(kind.doc, name)
        store.put_entity(kind.doc, dataclasses.replace(entity, tags=change(entity.tags)), ctx.now)

    def tag(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
        tags = tags_from_params(params["Tags"])
        name = params[kind.name_param]
        store = target(deps, ctx, kind, f"Tag{label}", name, request_tag_context(tags)).store
        with deps.storage.transaction():
            update(store, ctx, name, lambda current: merge_tags(current, tags))
        return None

    def untag(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
        keys: list[str] = params["TagKeys"]
        name = params[kind.name_param]
        store = target(deps, ctx, kind, f"Untag{label}", name, {"aws:TagKeys": tuple(keys)}).store
        with deps.storage.transaction():
            update(store, ctx, name, lambda current: remove_tags(current, keys))
        return None

    def list_tags(deps: IamDeps, ctx: RequestContext, params: Params) -> Result:
        name = params[kind.name_param]
        store = target(deps, ctx, kind, f"List{label}Tags", name).store
        entity = store.require_entity(kind.doc, name)
        return {"Tags": tags_out(entity.tags), "IsTruncated": False}

    return {f"Tag{label}": tag, f"Untag{label}": untag, f"List{label}Tags": list_tags}
