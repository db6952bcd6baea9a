"""The key search service (openkms.service.key_search) on the in-memory fakes: matching,
paging by windows, validation, and that an answer never depends on keys the caller may not
describe."""

from __future__ import annotations

import json
from typing import Any

import pytest

from openkms.errors import InvalidMarkerException, SerializationException, ValidationException
from openkms.iam.store import IamStore, User
from openkms.service import aliases, key_search, keys, tags
from tests.unit.service_helpers import ACCOUNT, Harness

# A key policy that gives the account (its root) nothing: the root may not describe the key.
LOCKED = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/none"},
                   "Action": "kms:*", "Resource": "*"}],
})  # fmt: skip


def make(h: Harness, description: str, *, locked: bool = False, **extra: Any) -> str:
    params: dict[str, Any] = {"Description": description, **extra}
    if locked:
        params.update(Policy=LOCKED, BypassPolicyLockoutSafetyCheck=True)
    key_id: str = h.call(keys.create_key, params)["KeyMetadata"]["KeyId"]
    return key_id


def search_all(h: Harness, **params: Any) -> tuple[list[str], list[dict[str, Any]]]:
    found: list[str] = []
    answers: list[dict[str, Any]] = []
    while True:
        answer = h.call(key_search.search_keys, params)
        answers.append(answer)
        found += [k["KeyId"] for k in answer["Keys"]]
        if not answer["Truncated"]:
            return found, answers
        params = {**params, "Marker": answer["NextMarker"]}


@pytest.fixture
def h(monkeypatch: pytest.MonkeyPatch) -> Harness:
    harness = Harness()
    # LOCKED names a user, who must exist.
    IamStore(harness.storage, ACCOUNT).put_user(
        User("none", "AIDANONENONENONENONE", "/", f"arn:aws:iam::{ACCOUNT}:user/none", 1.0), 1.0
    )
    # Small windows and batches, so that a few keys cross their edges.
    monkeypatch.setattr(key_search, "WINDOW", 3)
    monkeypatch.setattr(key_search, "BATCH", 2)
    return harness


def test_text_and_filters(h: Harness) -> None:
    payroll = make(h, "Payroll database")
    logs = make(h, "logs")
    h.call(keys.disable_key, {"KeyId": logs})
    tagged = make(h, "x", Tags=[{"TagKey": "team", "TagValue": "Needle-Ops"}])
    aliased = make(h, "y")
    h.call(aliases.create_alias, {"AliasName": "alias/Billing", "TargetKeyId": aliased})
    assert search_all(h, Text="PAYROLL")[0] == [payroll]
    assert search_all(h, Text="needle")[0] == [tagged]
    assert search_all(h, Text="billing")[0] == [aliased]
    assert search_all(h, KeyState="Disabled")[0] == [logs]
    assert sorted(search_all(h, KeySpec="SYMMETRIC_DEFAULT")[0]) == sorted(
        [payroll, logs, tagged, aliased]
    )
    assert search_all(h, Text=payroll[:8])[0] == [payroll]
    assert search_all(h, Text="%")[0] == []
    tags.untag_resource(h.rt, h.ctx(), {"KeyId": tagged, "TagKeys": ["team"]})
    assert search_all(h, Text="needle")[0] == []


def test_counts_by_state(h: Harness) -> None:
    for _ in range(4):
        make(h, "a")
    disabled = make(h, "b")
    h.call(keys.disable_key, {"KeyId": disabled})
    make(h, "c", locked=True)
    totals: dict[str, int] = {}
    params: dict[str, Any] = {}
    while True:
        answer = h.call(key_search.count_keys_by_state, params)
        for state, count in answer["KeyStates"].items():
            totals[state] = totals.get(state, 0) + count
        if not answer["Truncated"]:
            break
        params = {"Marker": answer["NextMarker"]}
    assert totals == {"Enabled": 4, "Disabled": 1}


def test_answers_do_not_depend_on_keys_the_caller_may_not_describe(h: Harness) -> None:
    """The same visible keys, with hidden keys that match or not: the same pages, markers
    included (a window ends at a key id, whatever matched in it)."""
    visible = [make(h, f"v{i}") for i in range(4)]
    hidden = [make(h, "secret-project", locked=True) for _ in range(5)]
    found, matching = search_all(h, Text="secret", Limit=2)
    assert found == []
    # Change what the hidden keys hold: they no longer match. The answers stay the same.
    for key_id in hidden:
        record = h.rt.load_key(h.rt.key_arn_for(ACCOUNT, "us-east-1", key_id))
        assert record is not None
        h.storage.update_key(record.with_changes(description="other"))
        h.rt.forget_key(record.arn)
    assert search_all(h, Text="secret", Limit=2)[1] == matching
    assert len(visible) == 4


def test_a_full_page_ends_at_a_key_returned(h: Harness) -> None:
    made = sorted(make(h, "same") for _ in range(5))
    answer = h.call(key_search.search_keys, {"Text": "same", "Limit": 2})
    assert [k["KeyId"] for k in answer["Keys"]] == made[:2]
    found, _ = search_all(h, Text="same", Limit=2)
    assert found == made


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"Text": "x" * 257}, ValidationException),
        ({"Limit": 0}, ValidationException),
        ({"Limit": 101}, ValidationException),
        ({"KeyState": "Bogus"}, ValidationException),
        ({"Text": 5}, SerializationException),
        ({"MultiRegion": "yes"}, SerializationException),
        ({"Limit": "5"}, SerializationException),
        ({"Marker": "not-ours"}, InvalidMarkerException),
    ],
)
def test_validation(h: Harness, params: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        h.call(key_search.search_keys, params)


def test_validation_message_is_awss() -> None:
    h = Harness()
    with pytest.raises(ValidationException) as caught:
        h.call(key_search.search_keys, {"Limit": 0, "KeyState": "Bogus"})
    message = caught.value.message
    assert message.startswith("2 validation errors detected: Value 'Bogus' at 'keyState'")
    assert "Value '0' at 'limit' failed to satisfy constraint" in message
