"""Condition keys computed on demand, and allow-decisions cached against the values of the keys
the evaluator looked up: a request that differs in any of them is evaluated again."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from openkms.errors import AccessDeniedException
from openkms.service import encryption, keys
from openkms.service.condition_keys import ConditionKeys
from openkms.service.context import Principal, RequestContext
from openkms.service.runtime import Runtime
from tests.unit.test_iam_support import ACCOUNT, Harness, allow, deny

USER_ARN = f"arn:aws:iam::{ACCOUNT}:user/alice"


def _ctx(principal: Principal, now: float, source_ip: str = "10.1.2.3") -> RequestContext:
    return RequestContext(
        principal=principal,
        region="us-east-1",
        request_id="r",
        now=now,
        operation="Encrypt",
        source_ip=source_ip,
        request_alias="alias/app",
    )


def test_every_key_of_a_request() -> None:
    principal = Principal(ACCOUNT, USER_ARN, "user", "AKIAALICE", "AIDAALICE")
    req: dict[str, Any] = {
        "EncryptionContext": {"team": "red", "app": "x"},
        "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
        "BypassPolicyLockoutSafetyCheck": True,
        "Tags": [{"TagKey": "Env", "TagValue": "a"}, {"TagKey": "env", "TagValue": "b"}],
    }
    got = ConditionKeys(
        _ctx(principal, 1_700_000_000.0), "kms:Encrypt", None, req, {"Dept": "ops"}, None
    )
    assert dict(got) == {
        "aws:principalarn": (USER_ARN,),
        "aws:principalaccount": (ACCOUNT,),
        "aws:principaltype": ("User",),
        "aws:userid": ("AIDAALICE",),
        "aws:username": ("alice",),
        "aws:principalisawsservice": ("false",),
        "aws:viaawsservice": ("false",),
        "aws:resourceaccount": (ACCOUNT,),
        "aws:currenttime": ("2023-11-14T22:13:20Z",),
        "aws:epochtime": ("1700000000",),
        "aws:securetransport": ("false",),
        "aws:requestedregion": ("us-east-1",),
        "aws:sourceip": ("10.1.2.3",),
        "kms:calleraccount": (ACCOUNT,),
        "kms:grantisforawsresource": ("false",),
        "kms:requestalias": ("alias/app",),
        "kms:encryptioncontextkeys": ("team", "app"),
        "aws:tagkeys": ("Env", "env"),
        "kms:encryptionalgorithm": ("SYMMETRIC_DEFAULT",),
        "kms:bypasspolicylockoutsafetycheck": ("true",),
        "kms:encryptioncontext:team": ("red",),
        "kms:encryptioncontext:app": ("x",),
        "aws:principaltag/dept": ("ops",),
        "aws:requesttag/env": ("b",),
    }
    assert got.iterated
    assert got.get("kms:keyspec") is None  # no key on an account-level action
    assert "aws:resourcetag/x" not in got


def test_a_context_key_spelled_twice_has_no_value_to_compare() -> None:
    """Condition key names are case-insensitive, the encryption context is not: with "Team" and
    "team" both present, kms:EncryptionContext:team has no single value and the request is
    denied (taking either pair would let the caller choose by ordering them). The key list and
    the other keys are unaffected."""
    principal = Principal(ACCOUNT, USER_ARN, "user", "AKIAALICE", "AIDAALICE")
    for context in ({"Team": "blue", "team": "red"}, {"team": "red", "Team": "blue"}):
        req: dict[str, Any] = {"EncryptionContext": {**context, "app": "x"}}
        got = ConditionKeys(_ctx(principal, 1.0), "kms:Encrypt", None, req, {}, None)
        with pytest.raises(AccessDeniedException, match="more than one key named 'team'"):
            got.get("kms:encryptioncontext:team")
        assert got.get("kms:encryptioncontext:app") == ("x",)
        assert got.get("kms:encryptioncontextkeys") == (*context, "app")


def test_only_what_is_asked_is_computed_and_recorded() -> None:
    principal = Principal(ACCOUNT, f"arn:aws:iam::{ACCOUNT}:root", "root", "AKIAROOT", ACCOUNT)
    got = ConditionKeys(_ctx(principal, 1.0), "kms:Decrypt", None, {}, {}, None)
    assert got.get("aws:sourceip") == ("10.1.2.3",)
    assert got.get("aws:username") is None
    assert got.get("aws:sourceip") == ("10.1.2.3",)
    assert got.asked == ["aws:sourceip", "aws:username"]
    assert not got.iterated


class _Kms:
    """KMS calls as an IAM user whose identity policy is written by the test."""

    def __init__(self, *statements: dict[str, Any]) -> None:
        self.iam = Harness()
        self.iam.user_with_key("alice", *statements)
        self.rt = Runtime(self.iam.storage, self.iam.root, self.iam.clock)
        root = self.iam.identities.principal_for(self.iam.root_creds.access_key_id, None)
        self.key_id = keys.create_key(self.rt, self._ctx(root), {})["KeyMetadata"]["KeyId"]
        key = self.iam.iam("ListAccessKeys", UserName="alice")["AccessKeyMetadata"][0]
        self.alice = self.iam.identities.principal_for(key["AccessKeyId"], None)

    def _ctx(self, principal: Principal, source_ip: str = "10.1.2.3") -> RequestContext:
        return dataclasses.replace(_ctx(principal, self.iam.clock.now(), source_ip))

    def encrypt(self, context: dict[str, str], source_ip: str = "10.1.2.3") -> None:
        req = {"KeyId": self.key_id, "Plaintext": b"x", "EncryptionContext": context}
        encryption.encrypt(self.rt, self._ctx(self.alice, source_ip), req)

    @property
    def hits(self) -> int:
        return int(self.rt.access._decisions.hits)


def test_a_cached_allow_needs_the_same_values_of_every_key_the_policy_read() -> None:
    kms = _Kms(
        deny("kms:*", Condition={"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
        allow("kms:Encrypt", Condition={"StringEquals": {"kms:EncryptionContext:team": "blue"}}),
    )
    kms.encrypt({"team": "blue"})
    before = kms.hits
    kms.encrypt({"team": "blue", "other": "ignored"})
    assert kms.hits == before + 1  # same source and team: answered from the cache
    with pytest.raises(AccessDeniedException):
        kms.encrypt({"team": "red"})
    with pytest.raises(AccessDeniedException):
        kms.encrypt({"team": "blue"}, source_ip="192.0.2.1")
    with pytest.raises(AccessDeniedException):
        kms.encrypt({})
    kms.encrypt({"team": "blue"})


def test_a_denial_is_never_cached() -> None:
    kms = _Kms(allow("kms:Encrypt", Condition={"StringEquals": {"aws:SourceIp": "10.1.2.3"}}))
    for _ in range(2):
        with pytest.raises(AccessDeniedException):
            kms.encrypt({}, source_ip="10.9.9.9")
    kms.encrypt({})


def test_large_caller_chosen_values_are_not_kept() -> None:
    kms = _Kms(allow("kms:Encrypt", Condition={"StringLike": {"kms:EncryptionContext:blob": "*"}}))
    big = {"blob": "x" * 2000}
    kms.encrypt(big)
    before = kms.hits
    kms.encrypt(big)
    assert kms.hits == before  # evaluated again, nothing of 2,000 characters was cached
