"""Attacks on the key search (``OpenKMS.SearchKeys``, ``OpenKMS.CountKeysByState``): a tenant
must learn nothing through it that DescribeKey, ListResourceTags or ListAliases would refuse
him: not a key's existence in a match, its state, tags, aliases, description, nor how many keys
match. Plus a caller of another account, LIKE wildcards and huge queries."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Server, create_account, make_client, wait_until_recognized
from tests.search_support import call, search, search_server
from tests.security.support import SETTLE_SECONDS, client, new_user

__all__ = ["search_server"]

LIST_KEYS = {"Effect": "Allow", "Action": "kms:ListKeys", "Resource": "*"}


@pytest.fixture(scope="module")
def made(search_server: Server) -> dict[str, str]:
    kms = make_client(search_server)
    keys = {
        "secret": kms.create_key(
            Description="Project Falcon payroll",
            Tags=[{"TagKey": "project", "TagValue": "falcon"}],
        )["KeyMetadata"]["KeyId"],
        "open": kms.create_key(
            Description="shared logs", Tags=[{"TagKey": "team", "TagValue": "falcon-ops"}]
        )["KeyMetadata"]["KeyId"],
        "wild": kms.create_key(Description="100% done_now")["KeyMetadata"]["KeyId"],
    }
    kms.disable_key(KeyId=keys["secret"])
    kms.create_alias(AliasName="alias/falcon-hidden", TargetKeyId=keys["secret"])
    return keys


def _user(server: Server, *statements: dict[str, Any]) -> dict[str, str]:
    """A new IAM user with these identity policy statements, once the server knows him and
    his policy (caches settle within a second)."""
    user = new_user(client(server, "iam"), None, *statements)
    return _user_ready(server, user.creds)


def _user_ready(server: Server, creds: dict[str, str]) -> dict[str, str]:
    deadline = time.monotonic() + SETTLE_SECONDS
    while time.monotonic() < deadline:
        _, answer = call(server, "OpenKMS.CountKeysByState", {}, creds)
        if answer.get("__type") not in ("UnrecognizedClientException", "InvalidSignatureException"):
            break
        time.sleep(0.05)
    return creds


def _answers(server: Server, creds: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    pages = []
    while True:
        status, answer = call(server, "OpenKMS.SearchKeys", params, creds)
        assert status == 200, answer
        pages.append(answer)
        if not answer["Truncated"]:
            return pages
        params = {**params, "Marker": answer["NextMarker"]}


def test_no_permission_to_describe_learns_nothing(search_server: Server,
                                                  made: dict[str, str]) -> None:  # fmt: skip
    """May list keys (so he knows their ids) but describe none: every search answers the same
    as a search that matches nothing, and the count is empty."""
    creds = _user(search_server, LIST_KEYS)
    nothing = _answers(search_server, creds, Text="no-such-text-anywhere")
    for probe in ({"Text": "falcon"}, {"Text": "payroll"}, {"KeyState": "Disabled"},
                  {"Text": "falcon-hidden"}, {"Text": made["secret"][:8]},
                  {"KeySpec": "SYMMETRIC_DEFAULT"}):  # fmt: skip
        assert _answers(search_server, creds, **probe) == nothing, probe
    status, counted = call(search_server, "OpenKMS.CountKeysByState", {}, creds)
    assert (status, counted) == (200, {"KeyStates": {}, "Truncated": False})


def test_without_list_keys_search_is_refused(search_server: Server) -> None:
    creds = _user(search_server, {"Effect": "Allow", "Action": "kms:DescribeKey", "Resource": "*"})
    for target in ("OpenKMS.SearchKeys", "OpenKMS.CountKeysByState"):
        status, answer = call(search_server, target, {"Text": "falcon"}, creds)
        assert (status, answer["__type"]) == (400, "AccessDeniedException")
        assert "kms:ListKeys" in answer["message"]


def test_only_the_keys_he_may_describe(search_server: Server, made: dict[str, str]) -> None:
    creds = _user(
        search_server,
        LIST_KEYS,
        {"Effect": "Allow", "Action": ["kms:DescribeKey", "kms:ListResourceTags"],
         "Resource": search_server.key_arn(made["open"])},
    )  # fmt: skip
    assert search(search_server, creds, Text="falcon")["Keys"] == [made["open"]]
    assert search(search_server, creds, KeyState="Disabled")["Keys"] == []
    _, counted = call(search_server, "OpenKMS.CountKeysByState", {}, creds)
    assert counted["KeyStates"] == {"Enabled": 1}


def test_tags_and_aliases_need_their_own_permissions(search_server: Server,
                                                     made: dict[str, str]) -> None:  # fmt: skip
    """May describe every key, but not list tags or aliases: a match found only in a tag or an
    alias name is not returned."""
    creds = _user(
        search_server, LIST_KEYS, {"Effect": "Allow", "Action": "kms:DescribeKey", "Resource": "*"}
    )
    assert search(search_server, creds, Text="falcon-ops")["Keys"] == []
    assert search(search_server, creds, Text="falcon-hidden")["Keys"] == []
    # The description is what DescribeKey shows him: that match stands.
    assert search(search_server, creds, Text="falcon payroll")["Keys"] == [made["secret"]]
    tagger = _user(
        search_server,
        LIST_KEYS,
        {"Effect": "Allow", "Action": ["kms:DescribeKey", "kms:ListResourceTags",
                                       "kms:ListAliases"], "Resource": "*"},
    )  # fmt: skip
    assert search(search_server, tagger, Text="falcon-ops")["Keys"] == [made["open"]]
    assert search(search_server, tagger, Text="falcon-hidden")["Keys"] == [made["secret"]]


@pytest.fixture(scope="module")
def other_account(search_server: Server) -> Iterator[Server]:
    other = search_server.as_account(create_account(search_server.data_dir))
    wait_until_recognized(other)
    yield other


def test_another_account_sees_only_its_own(other_account: Server,
                                           made: dict[str, str]) -> None:  # fmt: skip
    assert search(other_account, Text="falcon")["Keys"] == []
    assert search(other_account)["Keys"] == []
    _, counted = call(other_account, "OpenKMS.CountKeysByState", {})
    assert counted == {"KeyStates": {}, "Truncated": False}
    # His own key, and only it.
    mine = make_client(other_account).create_key(Description="falcon of my own")
    assert search(other_account, Text="falcon")["Keys"] == [mine["KeyMetadata"]["KeyId"]]


def test_like_wildcards_are_plain_text(search_server: Server, made: dict[str, str]) -> None:
    assert search(search_server, Text="%")["Keys"] == [made["wild"]]
    assert search(search_server, Text="done_now")["Keys"] == [made["wild"]]
    assert search(search_server, Text="_")["Keys"] == [made["wild"]]
    assert search(search_server, Text="f%n")["Keys"] == []
    assert search(search_server, Text="falco_")["Keys"] == []
    assert search(search_server, Text="' OR '1'='1")["Keys"] == []
    assert search(search_server, Text="\\")["Keys"] == []


def test_huge_queries_are_refused(search_server: Server) -> None:
    status, answer = call(search_server, "OpenKMS.SearchKeys", {"Text": "a" * 257})
    assert (status, answer["__type"]) == (400, "ValidationException")
    assert len(answer["message"]) < 400  # the text is not echoed whole
    status, answer = call(search_server, "OpenKMS.SearchKeys", {"Text": "%_" * 50_000})
    assert (status, answer["__type"]) == (400, "ValidationException")
    assert len(answer["message"]) < 400
    status, answer = call(search_server, "OpenKMS.SearchKeys", {"Limit": 10**30})
    assert (status, answer["__type"]) == (400, "SerializationException")
    status, answer = call(search_server, "OpenKMS.SearchKeys", {"Limit": 2**40})
    assert (status, answer["__type"]) == (400, "ValidationException")


def test_a_grant_is_enough_to_find_a_key(search_server: Server, made: dict[str, str]) -> None:
    """Authorization is DescribeKey's own, grants included: a grant for DescribeKey on one key
    makes that key (and only it) findable by the grantee."""
    iam = client(search_server, "iam")
    user = new_user(iam, None, LIST_KEYS)
    creds = _user_ready(search_server, user.creds)
    assert search(search_server, creds, Text="shared logs")["Keys"] == []
    make_client(search_server).create_grant(
        KeyId=made["open"], GranteePrincipal=user.arn, Operations=["DescribeKey"]
    )
    assert search(search_server, creds, Text="shared logs")["Keys"] == [made["open"]]
    assert search(search_server, creds, Text="falcon payroll")["Keys"] == []
