"""IAM entities as JSON documents in the storage document store, one account per scope.

Kinds and names (names of users, groups, roles and managed policies are unique in an account
regardless of case, as in IAM, so their document name is the lower-cased name)::

    iam-user            alice                          User
    iam-group           admins                         Group
    iam-role            deployer                       Role
    iam-policy          readonly                       ManagedPolicy (with its attachment count)
    iam-policy-version  readonly/v3                    PolicyVersion (the JSON text)
    iam-inline          user/alice/PolicyName          InlinePolicy
    iam-attach          user/alice/arn:...:policy/x    {"PolicyArn", "PolicyName"}
    iam-membership      user/alice/admins, group/admins/alice   (both directions)

Access keys of users live in the access-key table (``Storage.put_access_key``) with the user's
ARN as principal; STS sessions are kept by ``openkms.iam.sessions``.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import quote, unquote

import orjson

from openkms.iam import EntityAlreadyExists, InvalidInput, LimitExceeded, NoSuchEntity
from openkms.service.context import Principal
from openkms.storage.base import Storage, StorageConflict

USER = "iam-user"
GROUP = "iam-group"
ROLE = "iam-role"
POLICY = "iam-policy"
POLICY_VERSION = "iam-policy-version"
INLINE = "iam-inline"
ATTACH = "iam-attach"
MEMBERSHIP = "iam-membership"

_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_PAGE = 1000

Tags = tuple[tuple[str, str], ...]


def new_id(prefix: str) -> str:
    """An IAM unique id: a four-letter prefix (AIDA, AGPA, AROA, ANPA) and 17 characters."""
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(17))


def key_of(name: str) -> str:
    return name.lower()


@dataclass(frozen=True, slots=True)
class User:
    name: str
    user_id: str
    path: str
    arn: str
    created_at: float
    tags: Tags = ()


@dataclass(frozen=True, slots=True)
class Group:
    name: str
    group_id: str
    path: str
    arn: str
    created_at: float


@dataclass(frozen=True, slots=True)
class Role:
    name: str
    role_id: str
    path: str
    arn: str
    created_at: float
    trust_policy: str
    max_session_seconds: int = 3600
    description: str | None = None
    tags: Tags = ()
    # The unique id of each IAM user or role ARN the trust policy names, as it was when the
    # policy was stored (openkms.iam.unique_ids): a principal deleted and created again under the
    # same name is not trusted.
    trust_principal_ids: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ManagedPolicy:
    name: str
    policy_id: str
    path: str
    arn: str
    created_at: float
    updated_at: float
    default_version: str = "v1"
    next_version: int = 2
    attachment_count: int = 0
    description: str | None = None
    tags: Tags = ()


@dataclass(frozen=True, slots=True)
class PolicyVersion:
    version_id: str
    document: str
    created_at: float


@dataclass(frozen=True, slots=True)
class InlinePolicy:
    name: str
    document: str


@dataclass(frozen=True, slots=True)
class Attachment:
    policy_arn: str
    policy_name: str


@dataclass(frozen=True, slots=True)
class Membership:
    group: str
    user: str


_E = TypeVar("_E")


class _Named(Protocol):
    @property
    def name(self) -> str: ...


_N = TypeVar("_N", bound=_Named)


@dataclass(frozen=True, slots=True)
class EntityDoc(Generic[_N]):
    """Where users, groups or roles are stored: ``kind`` (user, group, role) names them in
    messages, ARNs and the owner prefix of their policies; ``label`` in ``EntityAlreadyExists``."""

    kind: str
    label: str
    document: str
    cls: type[_N]


USERS = EntityDoc("user", "User", USER, User)
GROUPS = EntityDoc("group", "Group", GROUP, Group)
ROLES = EntityDoc("role", "Role", ROLE, Role)


def _dump(entity: Any) -> str:
    return orjson.dumps(dataclasses.asdict(entity)).decode()


def _load(cls: type[_E], text: str) -> _E:
    data: dict[str, Any] = orjson.loads(text)
    if "tags" in data:
        data["tags"] = tuple((str(k), str(v)) for k, v in data["tags"])
    return cls(**data)


def encode_marker(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode()).decode("ascii")


def decode_marker(marker: str | None) -> str | None:
    if marker is None:
        return None
    try:
        return base64.b64decode(marker.encode("ascii"), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise InvalidInput("Invalid Marker.") from exc


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Any]
    marker: str | None  # for the next page; None when this is the last

    @property
    def truncated(self) -> bool:
        return self.marker is not None


class IamStore:
    """The IAM entities of one account."""

    def __init__(self, storage: Storage, account_id: str, partition: str = "aws") -> None:
        self.storage = storage
        self.account_id = account_id
        self.partition = partition

    # -- ARNs ----------------------------------------------------------------------------------
    def arn(self, kind: str, path: str, name: str) -> str:
        return f"arn:{self.partition}:iam::{self.account_id}:{kind}{path}{name}"

    # -- generic document helpers -------------------------------------------------------------
    def _get(self, kind: str, name: str, cls: type[_E]) -> _E | None:
        text = self.storage.get_document(kind, self.account_id, name)
        return None if text is None else _load(cls, text)

    def _put(self, kind: str, name: str, entity: Any, now: float, *, create: bool) -> None:
        self.storage.put_document(
            kind, self.account_id, name, _dump(entity), now, create_only=create
        )

    def _iter(
        self, kind: str, prefix: str = "", after: str | None = None
    ) -> Iterator[tuple[str, str]]:
        cursor = after
        while True:
            batch = self.storage.list_documents(
                kind, self.account_id, prefix=prefix, after=cursor, limit=_PAGE
            )
            yield from batch
            if len(batch) < _PAGE:
                return
            cursor = batch[-1][0]

    def page(
        self,
        kind: str,
        cls: type[_E],
        *,
        prefix: str = "",
        marker: str | None = None,
        max_items: int | None = None,
        keep: Callable[[_E], bool] | None = None,
    ) -> Page:
        limit = max_items or 100
        after = decode_marker(marker)
        if after is not None and not after.startswith(prefix):
            raise InvalidInput("Invalid Marker.")
        items: list[Any] = []
        last = ""
        for name, text in self._iter(kind, prefix, after):
            entity = _load(cls, text)
            if keep is not None and not keep(entity):
                continue
            if len(items) == limit:
                return Page(items, encode_marker(last))
            items.append(entity)
            last = name
        return Page(items, None)

    def all(self, kind: str, cls: type[_E], prefix: str = "") -> list[_E]:
        return [_load(cls, text) for _, text in self._iter(kind, prefix)]

    # -- users, groups and roles ----------------------------------------------------------------
    def get_entity(self, doc: EntityDoc[_N], name: str) -> _N | None:
        return self._get(doc.document, key_of(name), doc.cls)

    def require_entity(self, doc: EntityDoc[_N], name: str) -> _N:
        entity = self.get_entity(doc, name)
        if entity is None:
            raise NoSuchEntity(f"The {doc.kind} with name {name} cannot be found.")
        return entity

    def put_entity(
        self, doc: EntityDoc[_N], entity: _N, now: float, *, create: bool = False
    ) -> None:
        try:
            self._put(doc.document, key_of(entity.name), entity, now, create=create)
        except StorageConflict as exc:
            raise EntityAlreadyExists(
                f"{doc.label} with name {entity.name} already exists."
            ) from exc

    def delete_entity(self, doc: EntityDoc[_N], entity: _N) -> None:
        self.storage.delete_document(doc.document, self.account_id, key_of(entity.name))

    def get_user(self, name: str) -> User | None:
        return self.get_entity(USERS, name)

    def require_user(self, name: str) -> User:
        return self.require_entity(USERS, name)

    def put_user(self, user: User, now: float, *, create: bool = False) -> None:
        self.put_entity(USERS, user, now, create=create)

    def delete_user(self, user: User) -> None:
        self.delete_entity(USERS, user)

    def get_group(self, name: str) -> Group | None:
        return self.get_entity(GROUPS, name)

    def put_group(self, group: Group, now: float, *, create: bool = False) -> None:
        self.put_entity(GROUPS, group, now, create=create)

    def get_role(self, name: str) -> Role | None:
        return self.get_entity(ROLES, name)

    def require_role(self, name: str) -> Role:
        return self.require_entity(ROLES, name)

    # -- managed policies ----------------------------------------------------------------------
    def get_policy(self, name: str) -> ManagedPolicy | None:
        return self._get(POLICY, key_of(name), ManagedPolicy)

    def policy_by_arn(self, arn: str) -> ManagedPolicy | None:
        """The local managed policy with this ARN (path included), or None."""
        head = f"arn:{self.partition}:iam::{self.account_id}:policy/"
        if not arn.startswith(head):
            return None
        name = arn.rsplit("/", 1)[-1]
        policy = self.get_policy(name)
        return policy if policy is not None and policy.arn == arn else None

    def put_policy(self, policy: ManagedPolicy, now: float, *, create: bool = False) -> None:
        try:
            self._put(POLICY, key_of(policy.name), policy, now, create=create)
        except StorageConflict as exc:
            raise EntityAlreadyExists(
                f"A policy called {policy.name} already exists. Duplicate names are not allowed."
            ) from exc

    def delete_policy(self, policy: ManagedPolicy) -> None:
        for version in self.policy_versions(policy):
            self.delete_policy_version(policy, version.version_id)
        self.storage.delete_document(POLICY, self.account_id, key_of(policy.name))

    def _version_name(self, policy: ManagedPolicy, version_id: str) -> str:
        return f"{key_of(policy.name)}/{version_id}"

    def get_policy_version(self, policy: ManagedPolicy, version_id: str) -> PolicyVersion | None:
        return self._get(POLICY_VERSION, self._version_name(policy, version_id), PolicyVersion)

    def put_policy_version(self, policy: ManagedPolicy, version: PolicyVersion, now: float) -> None:
        self._put(
            POLICY_VERSION,
            self._version_name(policy, version.version_id),
            version,
            now,
            create=True,
        )

    def delete_policy_version(self, policy: ManagedPolicy, version_id: str) -> bool:
        return self.storage.delete_document(
            POLICY_VERSION, self.account_id, self._version_name(policy, version_id)
        )

    def policy_versions(self, policy: ManagedPolicy) -> list[PolicyVersion]:
        versions = self.all(POLICY_VERSION, PolicyVersion, f"{key_of(policy.name)}/")
        return sorted(versions, key=lambda v: int(v.version_id[1:].split(".")[0]))

    def default_document(self, policy: ManagedPolicy) -> str | None:
        version = self.get_policy_version(policy, policy.default_version)
        return None if version is None else version.document

    # -- inline policies (kind is "user", "group" or "role") -----------------------------------
    @staticmethod
    def _owner(kind: str, entity_name: str) -> str:
        return f"{kind}/{key_of(entity_name)}/"

    def get_inline(self, kind: str, entity_name: str, policy_name: str) -> InlinePolicy | None:
        return self._get(INLINE, self._owner(kind, entity_name) + policy_name, InlinePolicy)

    def put_inline(self, kind: str, entity_name: str, policy: InlinePolicy, now: float) -> None:
        self._put(INLINE, self._owner(kind, entity_name) + policy.name, policy, now, create=False)

    def delete_inline(self, kind: str, entity_name: str, policy_name: str) -> bool:
        return self.storage.delete_document(
            INLINE, self.account_id, self._owner(kind, entity_name) + policy_name
        )

    def inline_policies(self, kind: str, entity_name: str) -> list[InlinePolicy]:
        return self.all(INLINE, InlinePolicy, self._owner(kind, entity_name))

    def inline_page(
        self, kind: str, entity_name: str, marker: str | None, max_items: int | None
    ) -> Page:
        return self.page(
            INLINE,
            InlinePolicy,
            prefix=self._owner(kind, entity_name),
            marker=marker,
            max_items=max_items,
        )

    # -- attached managed policies -------------------------------------------------------------
    def is_attached(self, kind: str, entity_name: str, policy_arn: str) -> bool:
        name = self._owner(kind, entity_name) + policy_arn
        return self.storage.get_document(ATTACH, self.account_id, name) is not None

    def attach(self, kind: str, entity_name: str, policy: ManagedPolicy, now: float) -> None:
        self._put(
            ATTACH,
            self._owner(kind, entity_name) + policy.arn,
            Attachment(policy.arn, policy.name),
            now,
            create=False,
        )

    def detach(self, kind: str, entity_name: str, policy_arn: str) -> bool:
        return self.storage.delete_document(
            ATTACH, self.account_id, self._owner(kind, entity_name) + policy_arn
        )

    def attachments(self, kind: str, entity_name: str) -> list[Attachment]:
        return self.all(ATTACH, Attachment, self._owner(kind, entity_name))

    def attachment_page(
        self,
        kind: str,
        entity_name: str,
        marker: str | None,
        max_items: int | None,
        keep: Callable[[Attachment], bool] | None = None,
    ) -> Page:
        return self.page(
            ATTACH,
            Attachment,
            prefix=self._owner(kind, entity_name),
            marker=marker,
            max_items=max_items,
            keep=keep,
        )

    # -- group memberships ---------------------------------------------------------------------
    def add_member(self, group: Group, user: User, now: float) -> None:
        doc = _dump(Membership(group.name, user.name))
        for name in (
            f"user/{key_of(user.name)}/{key_of(group.name)}",
            f"group/{key_of(group.name)}/{key_of(user.name)}",
        ):
            self.storage.put_document(MEMBERSHIP, self.account_id, name, doc, now)

    def remove_member(self, group: Group, user: User) -> bool:
        a = self.storage.delete_document(
            MEMBERSHIP, self.account_id, f"user/{key_of(user.name)}/{key_of(group.name)}"
        )
        b = self.storage.delete_document(
            MEMBERSHIP, self.account_id, f"group/{key_of(group.name)}/{key_of(user.name)}"
        )
        return a or b

    def is_member(self, group: Group, user: User) -> bool:
        name = f"user/{key_of(user.name)}/{key_of(group.name)}"
        return self.storage.get_document(MEMBERSHIP, self.account_id, name) is not None

    def group_names_of(self, user_name: str) -> list[str]:
        return [
            str(orjson.loads(text)["group"])
            for _, text in self._iter(MEMBERSHIP, f"user/{key_of(user_name)}/")
        ]

    def member_names_of(self, group_name: str) -> list[str]:
        return [
            str(orjson.loads(text)["user"])
            for _, text in self._iter(MEMBERSHIP, f"group/{key_of(group_name)}/")
        ]


def name_from_arn(arn: str) -> str:
    """The entity name of an IAM ARN: its last path segment."""
    return arn.rsplit("/", 1)[-1]


def path_matches(path: str, prefix: str | None) -> bool:
    return prefix is None or path.startswith(prefix)


# --- tags ----------------------------------------------------------------------------------
MAX_TAGS = 50


def tags_from_params(raw: list[dict[str, str]] | None) -> Tags:
    """``[{"Key":..., "Value":...}]`` as given, checked: keys unique regardless of case and not
    under the reserved ``aws:`` prefix."""
    tags: list[tuple[str, str]] = []
    seen: set[str] = set()
    for item in raw or []:
        key, value = item["Key"], item.get("Value", "")
        if key.lower() in seen:
            raise InvalidInput(
                "Duplicate tag keys found. Please note that Tag keys are case insensitive."
            )
        if key.lower().startswith("aws:"):
            raise InvalidInput("User-defined tag keys can't start with 'aws:'.")
        seen.add(key.lower())
        tags.append((key, value))
    return tuple(tags)


def merge_tags(current: Tags, new: Tags) -> Tags:
    """``current`` with ``new`` added; a key given again (in any case) takes the new value."""
    replaced = {k.lower() for k, _ in new}
    merged = [(k, v) for k, v in current if k.lower() not in replaced] + list(new)
    if len(merged) > MAX_TAGS:
        raise LimitExceeded(f"Cannot exceed quota for TagsPerEntity: {MAX_TAGS}")
    return tuple(merged)


def remove_tags(current: Tags, keys: list[str]) -> Tags:
    gone = {k.lower() for k in keys}
    return tuple((k, v) for k, v in current if k.lower() not in gone)


def tags_out(tags: Tags) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags]


def request_tag_context(tags: Tags) -> dict[str, tuple[str, ...]]:
    """``aws:RequestTag/...`` and ``aws:TagKeys`` for a request that passes tags."""
    context: dict[str, tuple[str, ...]] = {f"aws:RequestTag/{k}": (v,) for k, v in tags}
    if tags:
        context["aws:TagKeys"] = tuple(k for k, _ in tags)
    return context


def account_store(storage: Storage, principal: Principal, partition: str) -> IamStore:
    """The IAM store of the caller's account."""
    return IamStore(storage, principal.account_id, partition)


# --- policy documents ----------------------------------------------------------------------
def decode_document(text: str) -> str:
    """A policy document as the request carries it: JSON, or JSON URL-encoded once more
    (IAM accepts both)."""
    stripped = text.lstrip()
    if stripped.startswith("%7B") or stripped.startswith("%7b"):
        return unquote(stripped)
    return text


def encode_document(text: str) -> str:
    """A policy document as IAM returns it: URL-encoded (botocore decodes it again)."""
    return quote(text, safe="")


def policy_size(text: str) -> int:
    """IAM's size of a policy: its characters, whitespace not counted."""
    return sum(1 for c in text if not c.isspace())
