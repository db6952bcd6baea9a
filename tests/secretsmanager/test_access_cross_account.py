"""Cross-account access to a secret, as AWS documents it ("Access AWS Secrets Manager secrets
from a different account"): the owner's resource policy names the other account (or its
principal), the secret is encrypted under a customer managed key whose key policy lets that
account decrypt, and the caller's own identity policy allows both. Take away any one of them
and the caller gets AccessDeniedException, never the secret; the AWS managed key
``aws/secretsmanager`` can never be used across accounts (its key policy pins kms:CallerAccount).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.client import BaseClient

from tests.conftest import Server
from tests.security.support import (
    User,
    client,
    code,
    delete_user,
    eventually,
    new_user,
    policy,
    root_statement,
    unique,
)

READ = "secretsmanager:GetSecretValue"
DENIED = "AccessDeniedException"


@dataclass
class Shared:
    owner: Server
    partner: Server
    sm: BaseClient  # the owner's
    kms: BaseClient  # the owner's
    key_arn: str
    bob: User  # in the partner account
    bob_sm: BaseClient


def key_policy(owner: str, partner: str, *, partner_may_decrypt: bool = True) -> str:
    statements: list[dict[str, Any]] = [root_statement(owner)]
    if partner_may_decrypt:
        statements.append({
            "Sid": "Partner", "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{partner}:root"},
            "Action": ["kms:Decrypt", "kms:DescribeKey"], "Resource": "*",
        })  # fmt: skip
    return policy(*statements)


def grant_partner(sm: BaseClient, secret_arn: str, partner: str) -> None:
    sm.put_resource_policy(
        SecretId=secret_arn,
        ResourcePolicy=policy({
            "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{partner}:root"},
            "Action": [READ, "secretsmanager:DescribeSecret"], "Resource": "*",
        }),
    )  # fmt: skip


@pytest.fixture(scope="module")
def shared(server: Server, second_account: Server) -> Iterator[Shared]:
    kms = client(server, "kms")
    key_arn = kms.create_key(
        Description="shared secrets",
        Policy=key_policy(server.account_id, second_account.account_id),
    )["KeyMetadata"]["Arn"]
    partner_iam = client(second_account, "iam")
    bob = new_user(partner_iam, None, {
        "Effect": "Allow",
        "Action": [READ, "secretsmanager:DescribeSecret", "kms:Decrypt"],
        "Resource": "*",
    })  # fmt: skip
    yield Shared(
        server, second_account, client(server, "secretsmanager"), kms, key_arn, bob,
        client(second_account, "secretsmanager", bob.creds),
    )  # fmt: skip
    delete_user(partner_iam, bob.name)


def shared_secret(s: Shared, value: str, *, kms_key: str | None = None) -> str:
    params: dict[str, Any] = {"Name": unique("xacct/secret"), "SecretString": value}
    if kms_key is not None:
        params["KmsKeyId"] = kms_key
    arn: str = s.sm.create_secret(**params)["ARN"]
    return arn


def test_partner_reads_through_resource_policy_and_customer_key(shared: Shared) -> None:
    arn = shared_secret(shared, "for the partner", kms_key=shared.key_arn)
    assert code(lambda: shared.bob_sm.get_secret_value(SecretId=arn)) == DENIED
    grant_partner(shared.sm, arn, shared.partner.account_id)
    eventually("OK", lambda: shared.bob_sm.get_secret_value(SecretId=arn))
    got = shared.bob_sm.get_secret_value(SecretId=arn)
    assert got["SecretString"] == "for the partner"
    assert got["ARN"] == arn
    assert shared.bob_sm.describe_secret(SecretId=arn)["ARN"] == arn
    # Only what the resource policy names: PutSecretValue stays the owner's.
    assert code(lambda: shared.bob_sm.put_secret_value(SecretId=arn, SecretString="x")) == DENIED


def test_denied_without_the_resource_policy(shared: Shared) -> None:
    arn = shared_secret(shared, "not shared", kms_key=shared.key_arn)
    try:
        shared.bob_sm.get_secret_value(SecretId=arn)
        raise AssertionError("the partner read a secret that no resource policy shares")
    except shared.bob_sm.exceptions.ClientError as exc:
        assert exc.response["Error"]["Code"] == DENIED
        assert exc.response["Error"]["Message"] == (
            f"User: {shared.bob.arn} is not authorized to perform: {READ} on resource: {arn} "
            f"because no resource-based policy allows the {READ} action"
        )


def test_a_missing_secret_of_another_account_looks_like_a_denied_one(shared: Shared) -> None:
    """The answer says nothing about which secrets the other account has."""
    real = shared_secret(shared, "exists", kms_key=shared.key_arn)
    missing = real[:-12] + unique("nope")[-8:] + real[-7:]
    assert code(lambda: shared.bob_sm.get_secret_value(SecretId=real)) == DENIED
    assert code(lambda: shared.bob_sm.get_secret_value(SecretId=missing)) == DENIED


def test_the_aws_managed_key_never_crosses_accounts(shared: Shared) -> None:
    arn = shared_secret(shared, "managed key")  # encrypted under aws/secretsmanager
    grant_partner(shared.sm, arn, shared.partner.account_id)
    eventually(DENIED, lambda: shared.bob_sm.get_secret_value(SecretId=arn))
    # DescribeSecret needs no decrypt: the resource policy alone (with bob's identity policy)
    # allows it.
    assert shared.bob_sm.describe_secret(SecretId=arn)["ARN"] == arn


def test_denied_when_the_key_policy_does_not_name_the_partner(shared: Shared) -> None:
    key_arn = shared.kms.create_key(
        Policy=key_policy(shared.owner.account_id, shared.partner.account_id,
                          partner_may_decrypt=False),
    )["KeyMetadata"]["Arn"]  # fmt: skip
    arn = shared_secret(shared, "key not shared", kms_key=key_arn)
    grant_partner(shared.sm, arn, shared.partner.account_id)
    eventually(DENIED, lambda: shared.bob_sm.get_secret_value(SecretId=arn))
    assert shared.bob_sm.describe_secret(SecretId=arn)["ARN"] == arn


def test_denied_without_the_partners_identity_policy(shared: Shared) -> None:
    partner_iam = client(shared.partner, "iam")
    carol = new_user(partner_iam, None, {"Effect": "Allow", "Action": "kms:Decrypt",
                                         "Resource": "*"})  # fmt: skip
    try:
        arn = shared_secret(shared, "needs both sides", kms_key=shared.key_arn)
        grant_partner(shared.sm, arn, shared.partner.account_id)
        carol_sm = client(shared.partner, "secretsmanager", carol.creds)
        eventually(DENIED, lambda: carol_sm.get_secret_value(SecretId=arn))
    finally:
        delete_user(partner_iam, carol.name)


def test_names_resolve_in_the_callers_own_account(shared: Shared) -> None:
    """By name (or partial ARN) a caller reaches only its own account's secrets."""
    name = unique("xacct/by-name")
    arn = shared.sm.create_secret(Name=name, SecretString="owner's", KmsKeyId=shared.key_arn)["ARN"]
    grant_partner(shared.sm, arn, shared.partner.account_id)
    partner_root = client(shared.partner, "secretsmanager")
    assert code(lambda: partner_root.get_secret_value(SecretId=name)) == (
        "ResourceNotFoundException"
    )
