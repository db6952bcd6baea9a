"""Condition-key attacks: a role session slipping past a Deny aimed at its role, and the values
of AWS's global condition keys for the account root, an IAM user and a role session.

AWS rule (IAM User Guide, "AWS global condition context keys"):

* ``aws:PrincipalArn`` -- root ``arn:aws:iam::A:root``; IAM user its user ARN; role session
  **the role's ARN** ``arn:aws:iam::A:role/R``, never the assumed-role session ARN.
* ``aws:userid`` -- root the account id; IAM user its unique id ``AIDA...``; role session
  ``ROLEID:session-name``.
* ``aws:username`` -- IAM users only (absent for the root and for role sessions).
* ``aws:PrincipalAccount`` -- the principal's account; ``aws:PrincipalType`` -- ``Account``,
  ``User`` or ``AssumedRole``.
* ``aws:PrincipalIsAWSService`` and ``aws:ViaAWSService`` -- present in every request, ``false``
  for a caller signing its own request.
* ``aws:ResourceAccount`` -- the account that owns the resource (the key).
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.client import BaseClient

from tests.conftest import Server
from tests.security.support import (
    ASSUME_ANY_ROLE,
    assume,
    client,
    code,
    eventually,
    new_role,
    new_user,
    policy,
    unique,
)

DENIED = "AccessDeniedException"


@pytest.fixture(scope="module")
def iam(server: Server) -> BaseClient:
    return client(server, "iam")


def _admin(account_id: str) -> dict[str, Any]:
    """Lets the account root manage the key (and passes the lockout check), but not use it."""
    return {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
        "NotAction": ["kms:Encrypt", "kms:Decrypt"],
        "Resource": "*",
    }


def _encrypt_if(principal: str, conditions: dict[str, Any]) -> dict[str, Any]:
    return {
        "Effect": "Allow",
        "Principal": {"AWS": principal},
        "Action": "kms:Encrypt",
        "Resource": "*",
        "Condition": conditions,
    }


def _common(account_id: str) -> dict[str, dict[str, str]]:
    return {
        "StringEquals": {"aws:PrincipalAccount": account_id, "aws:ResourceAccount": account_id},
        "Bool": {"aws:PrincipalIsAWSService": "false", "aws:ViaAWSService": "false"},
    }


def _merge(*blocks: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for block in blocks:
        for operator, pairs in block.items():
            out.setdefault(operator, {}).update(pairs)
    return out


def test_role_session_is_stopped_by_a_deny_on_its_role_arn(
    server: Server, kms: BaseClient, iam: BaseClient
) -> None:
    """The attack: the key policy denies kms:Decrypt to a role through
    ``ArnEquals aws:PrincipalArn <role ARN>``; a session of that role decrypts anyway because the
    server gave it the session ARN as aws:PrincipalArn. AWS: a role session's aws:PrincipalArn
    is the role's ARN, so the Deny applies to every session of the role."""
    account = server.account_id
    role = new_role(iam, account, unique("blocked"), {"Effect": "Allow", "Action": "kms:*",
                                                      "Resource": "*"})  # fmt: skip
    key_policy = policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
            "Action": "kms:*",
            "Resource": "*",
        },
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "kms:Decrypt",
            "Resource": "*",
            "Condition": {"ArnEquals": {"aws:PrincipalArn": role.arn}},
        },
    )
    key_id = kms.create_key(Policy=key_policy)["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"payroll")["CiphertextBlob"]
    user = new_user(iam, unique("assumer"), ASSUME_ANY_ROLE)
    session = client(server, "kms", assume(server, user.creds, role.arn))
    eventually("OK", lambda: session.encrypt(KeyId=key_id, Plaintext=b"x"))
    assert code(lambda: session.decrypt(CiphertextBlob=blob)) == DENIED


def test_account_root_condition_values(server: Server, kms: BaseClient) -> None:
    """The account root: aws:PrincipalArn is ``...:root``, aws:userid the account id,
    aws:PrincipalType ``Account``, no aws:username."""
    account = server.account_id
    root = f"arn:aws:iam::{account}:root"
    conditions = _merge(
        _common(account),
        {
            "StringEquals": {
                "aws:PrincipalArn": root,
                "aws:userid": account,
                "aws:PrincipalType": "Account",
            },
            "Null": {"aws:username": "true"},
        },
    )
    key_id = kms.create_key(Policy=policy(_admin(account), _encrypt_if(root, conditions)))[
        "KeyMetadata"
    ]["KeyId"]
    assert code(lambda: kms.encrypt(KeyId=key_id, Plaintext=b"x")) == "OK"


def test_iam_user_condition_values(server: Server, kms: BaseClient, iam: BaseClient) -> None:
    """An IAM user: aws:PrincipalArn its ARN, aws:userid its AIDA... id, aws:username its
    name, aws:PrincipalType ``User``."""
    account = server.account_id
    user = new_user(iam, unique("valued"))
    assert user.user_id.startswith("AIDA")
    conditions = _merge(
        _common(account),
        {
            "StringEquals": {
                "aws:PrincipalArn": user.arn,
                "aws:userid": user.user_id,
                "aws:username": user.name,
                "aws:PrincipalType": "User",
            }
        },
    )
    key_id = kms.create_key(Policy=policy(_admin(account), _encrypt_if(user.arn, conditions)))[
        "KeyMetadata"
    ]["KeyId"]
    alice = client(server, "kms", user.creds)
    eventually("OK", lambda: alice.encrypt(KeyId=key_id, Plaintext=b"x"))


def test_role_session_condition_values(server: Server, kms: BaseClient, iam: BaseClient) -> None:
    """A role session: aws:PrincipalArn the role's ARN (not the session's), aws:userid
    ``AROA...:session-name``, aws:PrincipalType ``AssumedRole``, no aws:username."""
    account = server.account_id
    role = new_role(iam, account, unique("valued"))
    assert role.role_id.startswith("AROA")
    conditions = _merge(
        _common(account),
        {
            "StringEquals": {
                "aws:PrincipalArn": role.arn,
                "aws:userid": f"{role.role_id}:s1",
                "aws:PrincipalType": "AssumedRole",
            },
            "Null": {"aws:username": "true"},
        },
    )
    key_id = kms.create_key(Policy=policy(_admin(account), _encrypt_if(role.arn, conditions)))[
        "KeyMetadata"
    ]["KeyId"]
    user = new_user(iam, unique("assumer"), ASSUME_ANY_ROLE)
    session = client(server, "kms", assume(server, user.creds, role.arn, "s1"))
    eventually("OK", lambda: session.encrypt(KeyId=key_id, Plaintext=b"x"))
    # Not vacuous: the session ARN is not the role session's aws:PrincipalArn.
    session_arn = f"arn:aws:sts::{account}:assumed-role/{role.name}/s1"
    other = kms.create_key(
        Policy=policy(
            _admin(account),
            _encrypt_if(role.arn, {"StringEquals": {"aws:PrincipalArn": session_arn}}),
        )
    )["KeyMetadata"]["KeyId"]
    assert code(lambda: session.encrypt(KeyId=other, Plaintext=b"x")) == DENIED
