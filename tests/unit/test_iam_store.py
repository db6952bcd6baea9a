"""The IAM document store, against the memory fake and SQLite; helpers for tags and documents."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from openkms.iam import EntityAlreadyExists, InvalidInput, LimitExceeded, NoSuchEntity
from openkms.iam.store import (
    Group,
    IamStore,
    InlinePolicy,
    ManagedPolicy,
    PolicyVersion,
    User,
    decode_document,
    decode_marker,
    encode_document,
    encode_marker,
    merge_tags,
    name_from_arn,
    new_id,
    policy_size,
    remove_tags,
    request_tag_context,
    tags_from_params,
)
from openkms.storage.base import Storage
from openkms.storage.memory import MemoryStorage
from openkms.storage.sqlite import SqliteStorage

ACCOUNT = "111122223333"


@pytest.fixture(params=["memory", "sqlite"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    backend: Storage = (
        MemoryStorage() if request.param == "memory" else SqliteStorage(str(tmp_path / "db"))
    )
    yield backend
    backend.close()


@pytest.fixture
def store(storage: Storage) -> IamStore:
    return IamStore(storage, ACCOUNT)


def make_user(store: IamStore, name: str, path: str = "/") -> User:
    return User(name, new_id("AIDA"), path, store.arn("user", path, name), 1.0)


def test_ids() -> None:
    for prefix in ("AIDA", "AGPA", "AROA", "ANPA"):
        assert re.fullmatch(prefix + r"[A-Z2-7]{17}", new_id(prefix))
    assert len({new_id("AIDA") for _ in range(100)}) == 100


def test_users_are_found_regardless_of_case(store: IamStore) -> None:
    user = make_user(store, "Alice", "/x/")
    store.put_user(user, 1.0, create=True)
    assert store.get_user("alice") == user
    assert store.require_user("ALICE").arn == f"arn:aws:iam::{ACCOUNT}:user/x/Alice"
    with pytest.raises(EntityAlreadyExists):
        store.put_user(make_user(store, "aLiCe"), 1.0, create=True)
    store.delete_user(user)
    assert store.get_user("Alice") is None
    with pytest.raises(NoSuchEntity, match=r"The user with name Alice cannot be found\."):
        store.require_user("Alice")


def test_accounts_do_not_share_entities(storage: Storage) -> None:
    a, b = IamStore(storage, ACCOUNT), IamStore(storage, "444455556666")
    a.put_user(make_user(a, "same"), 1.0, create=True)
    assert b.get_user("same") is None
    b.put_user(make_user(b, "same"), 1.0, create=True)
    assert a.require_user("same").arn != b.require_user("same").arn


def test_pages_follow_markers_and_filters(store: IamStore) -> None:
    for i in range(25):
        store.put_user(make_user(store, f"user{i:02d}", "/even/" if i % 2 == 0 else "/odd/"), 1.0)
    seen: list[str] = []
    marker = None
    while True:
        page = store.page(
            "iam-user", User, marker=marker, max_items=4, keep=lambda u: u.path == "/even/"
        )
        seen += [u.name for u in page.items]
        if not page.truncated:
            break
        marker = page.marker
    assert seen == [f"user{i:02d}" for i in range(0, 25, 2)]
    assert store.page("iam-user", User).items[0].name == "user00"
    with pytest.raises(InvalidInput):
        store.page("iam-user", User, marker="%%%")
    with pytest.raises(InvalidInput):  # a marker from another listing
        store.page("iam-inline", InlinePolicy, prefix="user/x/", marker=encode_marker("zzz"))


def test_markers_round_trip() -> None:
    assert decode_marker(encode_marker("user/é/ü")) == "user/é/ü"
    assert decode_marker(None) is None


def test_groups_roles_and_memberships(store: IamStore) -> None:
    group = Group("Admins", new_id("AGPA"), "/", store.arn("group", "/", "Admins"), 1.0)
    store.put_group(group, 1.0, create=True)
    with pytest.raises(EntityAlreadyExists):
        store.put_group(group, 1.0, create=True)
    user = make_user(store, "u")
    store.put_user(user, 1.0)
    store.add_member(group, user, 1.0)
    assert store.is_member(group, user)
    assert store.group_names_of("U") == ["Admins"]
    assert store.member_names_of("admins") == ["u"]
    assert store.remove_member(group, user)
    assert not store.remove_member(group, user)
    assert store.group_names_of("u") == []
    with pytest.raises(NoSuchEntity, match=r"The role with name r cannot be found\."):
        store.require_role("r")


def test_policies_versions_inline_and_attachments(store: IamStore) -> None:
    arn = store.arn("policy", "/p/", "Mine")
    policy = ManagedPolicy("Mine", new_id("ANPA"), "/p/", arn, 1.0, 1.0)
    store.put_policy(policy, 1.0, create=True)
    with pytest.raises(EntityAlreadyExists, match="A policy called Mine already exists"):
        store.put_policy(policy, 1.0, create=True)
    assert store.policy_by_arn(arn) == policy
    assert store.policy_by_arn(store.arn("policy", "/other/", "Mine")) is None
    assert store.policy_by_arn("arn:aws:iam::aws:policy/Mine") is None
    for n in (1, 2, 10, 9):
        store.put_policy_version(policy, PolicyVersion(f"v{n}", f'{{"n":{n}}}', 1.0), 1.0)
    assert [v.version_id for v in store.policy_versions(policy)] == ["v1", "v2", "v9", "v10"]
    assert store.default_document(policy) == '{"n":1}'
    store.put_inline("user", "Bob", InlinePolicy("b", "{}"), 1.0)
    store.put_inline("user", "bob", InlinePolicy("a", "{}"), 1.0)
    store.put_inline("user", "bobby", InlinePolicy("c", "{}"), 1.0)
    assert [p.name for p in store.inline_policies("user", "BOB")] == ["a", "b"]
    assert store.delete_inline("user", "bob", "a")
    assert not store.delete_inline("user", "bob", "a")
    store.attach("role", "r", policy, 1.0)
    assert store.is_attached("role", "R", arn)
    assert [a.policy_name for a in store.attachments("role", "r")] == ["Mine"]
    assert store.detach("role", "r", arn)
    assert store.attachments("role", "r") == []
    store.delete_policy(policy)
    assert store.get_policy("mine") is None
    assert store.policy_versions(policy) == []


def test_tags_helpers() -> None:
    tags = tags_from_params([{"Key": "A", "Value": "1"}, {"Key": "b", "Value": ""}])
    assert tags == (("A", "1"), ("b", ""))
    with pytest.raises(InvalidInput, match="Duplicate tag keys"):
        tags_from_params([{"Key": "a", "Value": "1"}, {"Key": "A", "Value": "2"}])
    with pytest.raises(InvalidInput):
        tags_from_params([{"Key": "aws:reserved", "Value": "1"}])
    assert merge_tags(tags, (("a", "9"),)) == (("b", ""), ("a", "9"))
    assert remove_tags(tags, ["B", "missing"]) == (("A", "1"),)
    with pytest.raises(LimitExceeded):
        merge_tags(tuple((f"k{i}", "v") for i in range(50)), (("one-more", "v"),))
    assert request_tag_context(tags) == {
        "aws:RequestTag/A": ("1",),
        "aws:RequestTag/b": ("",),
        "aws:TagKeys": ("A", "b"),
    }
    assert request_tag_context(()) == {}


def test_document_helpers() -> None:
    document = '{"Version": "2012-10-17", "Statement": []}'
    encoded = encode_document(document)
    assert encoded.startswith("%7B%22Version%22%3A%20")
    assert decode_document(encoded) == document
    assert decode_document(document) == document
    assert policy_size(' { "a" :\n "b c" } ') == 10
    assert name_from_arn("arn:aws:iam::1:user/a/b/name") == "name"
