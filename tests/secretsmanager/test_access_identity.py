"""Identity policies and KMS key policies on the secrets path.

A secret read needs two permissions of the caller: ``secretsmanager:GetSecretValue`` on the
secret, and ``kms:Decrypt`` on its KMS key, evaluated on the caller's behalf with
``kms:ViaService`` = ``secretsmanager.<region>.amazonaws.com``. A key policy that denies the
caller, or an identity policy scoped to another secret, gets AccessDeniedException and never
the value."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.client import BaseClient

from tests.conftest import Server
from tests.security.support import (
    client,
    code,
    delete_user,
    eventually,
    new_user,
    policy,
    root_statement,
    unique,
)

DENIED = "AccessDeniedException"


@pytest.fixture(scope="module")
def sm(server: Server) -> BaseClient:
    return client(server, "secretsmanager")


@pytest.fixture(scope="module")
def iam(server: Server) -> BaseClient:
    return client(server, "iam")


@pytest.fixture(scope="module")
def kms(server: Server) -> BaseClient:
    return client(server, "kms")


@pytest.fixture
def cleanup(iam: BaseClient) -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        delete_user(iam, name)


def user_client(server: Server, iam: BaseClient, cleanup: list[str],
                *statements: dict[str, Any]) -> BaseClient:  # fmt: skip
    user = new_user(iam, None, *statements)
    cleanup.append(user.name)
    return client(server, "secretsmanager", user.creds)


def test_identity_policy_scoped_to_one_secret(
    sm: BaseClient, server: Server, iam: BaseClient, cleanup: list[str]
) -> None:
    mine = sm.create_secret(Name=unique("ident/mine"), SecretString="mine")["ARN"]
    other = sm.create_secret(Name=unique("ident/other"), SecretString="other")["ARN"]
    theirs = user_client(server, iam, cleanup, {
        "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": mine,
    }, {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"})  # fmt: skip
    eventually("OK", lambda: theirs.get_secret_value(SecretId=mine))
    assert theirs.get_secret_value(SecretId=mine)["SecretString"] == "mine"
    assert code(lambda: theirs.get_secret_value(SecretId=other)) == DENIED
    assert code(lambda: theirs.put_secret_value(SecretId=mine, SecretString="x")) == DENIED


def test_identity_deny_wins(
    sm: BaseClient, server: Server, iam: BaseClient, cleanup: list[str]
) -> None:
    arn = sm.create_secret(Name=unique("ident/deny"), SecretString="v")["ARN"]
    theirs = user_client(server, iam, cleanup,
        {"Effect": "Allow", "Action": ["secretsmanager:*", "kms:*"], "Resource": "*"},
        {"Effect": "Deny", "Action": "secretsmanager:GetSecretValue", "Resource": arn},
    )  # fmt: skip
    eventually(DENIED, lambda: theirs.get_secret_value(SecretId=arn))
    assert theirs.describe_secret(SecretId=arn)["ARN"] == arn


def test_no_permission_at_all(sm: BaseClient, server: Server, iam: BaseClient,
                              cleanup: list[str]) -> None:  # fmt: skip
    arn = sm.create_secret(Name=unique("ident/none"), SecretString="v")["ARN"]
    theirs = user_client(server, iam, cleanup)
    try:
        theirs.get_secret_value(SecretId=arn)
        raise AssertionError("read without permission")
    except theirs.exceptions.ClientError as exc:
        assert exc.response["Error"]["Code"] == DENIED
        assert (
            "because no identity-based policy allows the secretsmanager:GetSecretValue"
            in (exc.response["Error"]["Message"])
        )


def test_key_policy_that_denies_the_caller(
    sm: BaseClient, server: Server, iam: BaseClient, kms: BaseClient, cleanup: list[str]
) -> None:
    """The secrets side allows, the KMS key's policy denies: AccessDeniedException, not the
    value; the same user reads a secret under a key that does not deny it."""
    theirs_user = new_user(iam, None, {
        "Effect": "Allow", "Action": ["secretsmanager:GetSecretValue", "kms:Decrypt"],
        "Resource": "*",
    })  # fmt: skip
    cleanup.append(theirs_user.name)
    denying = kms.create_key(Policy=policy(root_statement(server.account_id), {
        "Effect": "Deny", "Principal": {"AWS": theirs_user.arn}, "Action": "kms:Decrypt",
        "Resource": "*",
    }))["KeyMetadata"]["Arn"]  # fmt: skip
    plain = kms.create_key(Policy=policy(root_statement(server.account_id)))["KeyMetadata"]["Arn"]
    locked = sm.create_secret(Name=unique("ident/kmsdeny"), SecretString="locked",
                              KmsKeyId=denying)["ARN"]  # fmt: skip
    fine = sm.create_secret(Name=unique("ident/kmsok"), SecretString="fine", KmsKeyId=plain)["ARN"]
    theirs = client(server, "secretsmanager", theirs_user.creds)
    eventually("OK", lambda: theirs.get_secret_value(SecretId=fine))
    assert code(lambda: theirs.get_secret_value(SecretId=locked)) == DENIED
    # The owner (whom the key policy does not deny) still reads it.
    assert sm.get_secret_value(SecretId=locked)["SecretString"] == "locked"


def test_kms_via_service_condition(
    sm: BaseClient, server: Server, iam: BaseClient, kms: BaseClient, cleanup: list[str]
) -> None:
    """kms:Decrypt allowed only through Secrets Manager in this Region: the secret reads, a
    direct Decrypt by the same user does not."""
    key = kms.create_key(Policy=policy(root_statement(server.account_id)))["KeyMetadata"]["Arn"]
    arn = sm.create_secret(Name=unique("ident/via"), SecretString="via", KmsKeyId=key)["ARN"]
    user = new_user(iam, None, {
        "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*",
    }, {
        "Effect": "Allow", "Action": ["kms:Decrypt", "kms:Encrypt"], "Resource": "*",
        "Condition": {"StringEquals": {
            "kms:ViaService": f"secretsmanager.{server.region}.amazonaws.com"}},
    })  # fmt: skip
    cleanup.append(user.name)
    theirs = client(server, "secretsmanager", user.creds)
    eventually("OK", lambda: theirs.get_secret_value(SecretId=arn))
    assert theirs.get_secret_value(SecretId=arn)["SecretString"] == "via"
    their_kms = client(server, "kms", user.creds)
    assert code(lambda: their_kms.encrypt(KeyId=key, Plaintext=b"x")) == DENIED
