"""Attacks on secrets through their resource policies, against a real server.

* A stranger (an IAM user of the owner's account with no permissions) and another account
  without a resource-policy grant get AccessDeniedException for every secret operation, and
  cannot grant themselves access by writing the policy.
* A partner granted only GetSecretValue cannot widen its own grant (PutResourcePolicy,
  DeleteResourcePolicy) nor write the secret.
* A public policy (any principal, NotPrincipal, a wildcard service, a condition that does not
  pin the caller) is refused with BlockPublicPolicy.
* Policy text bombs: deep nesting, thousands of statements, pathological wildcards, the longest
  accepted text: each answered with AWS's error (never a 500) in bounded time, and a stored
  policy full of wildcards does not slow authorization down.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient
from botocore.config import Config

from tests.conftest import Server
from tests.security.support import (
    User,
    client,
    code,
    delete_user,
    eventually,
    new_user,
    policy,
    unique,
)

DENIED = "AccessDeniedException"
MALFORMED = "MalformedPolicyDocumentException"
READ = "secretsmanager:GetSecretValue"


@pytest.fixture(scope="module")
def sm(server: Server) -> BaseClient:
    return client(server, "secretsmanager")


@pytest.fixture(scope="module")
def stranger(server: Server) -> Iterator[User]:
    iam = client(server, "iam")
    user = new_user(iam)
    yield user
    delete_user(iam, user.name)


def secret(sm: BaseClient) -> str:
    arn: str = sm.create_secret(Name=unique("attack/secret"), SecretString="crown jewels")["ARN"]
    return arn


def every_operation(them: BaseClient, arn: str) -> dict[str, Callable[[], Any]]:
    text = policy({"Effect": "Allow", "Principal": "*", "Action": "secretsmanager:*",
                   "Resource": "*"})  # fmt: skip
    return {
        "GetSecretValue": lambda: them.get_secret_value(SecretId=arn),
        "DescribeSecret": lambda: them.describe_secret(SecretId=arn),
        "PutSecretValue": lambda: them.put_secret_value(SecretId=arn, SecretString="pwned"),
        "UpdateSecret": lambda: them.update_secret(SecretId=arn, Description="pwned"),
        "GetResourcePolicy": lambda: them.get_resource_policy(SecretId=arn),
        "PutResourcePolicy": lambda: them.put_resource_policy(SecretId=arn, ResourcePolicy=text),
        "DeleteResourcePolicy": lambda: them.delete_resource_policy(SecretId=arn),
        "ValidateResourcePolicy": lambda: them.validate_resource_policy(
            SecretId=arn, ResourcePolicy=text),
        "ListResourcePolicies": lambda: them.list_resource_policies(SecretId=arn),
        "DeleteSecret": lambda: them.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True),
        "TagResource": lambda: them.tag_resource(SecretId=arn, Tags=[{"Key": "k", "Value": "v"}]),
        "ReplicateSecretToRegions": lambda: them.replicate_secret_to_regions(
            SecretId=arn, AddReplicaRegions=[{"Region": "us-west-2"}]),
    }  # fmt: skip


def test_stranger_in_the_same_account(sm: BaseClient, server: Server, stranger: User) -> None:
    arn = secret(sm)
    them = client(server, "secretsmanager", stranger.creds)
    for name, call in every_operation(them, arn).items():
        assert code(call) == DENIED, name
    assert sm.get_secret_value(SecretId=arn)["SecretString"] == "crown jewels"
    assert "ResourcePolicy" not in sm.get_resource_policy(SecretId=arn)


def test_another_account_without_a_grant(
    sm: BaseClient, server: Server, second_account: Server
) -> None:
    arn = secret(sm)
    them = client(second_account, "secretsmanager")  # the other account's root
    for name, call in every_operation(them, arn).items():
        assert code(call) == DENIED, name
    assert sm.get_secret_value(SecretId=arn)["SecretString"] == "crown jewels"
    assert "ResourcePolicy" not in sm.get_resource_policy(SecretId=arn)


def test_a_partner_cannot_widen_its_grant(
    sm: BaseClient, server: Server, second_account: Server
) -> None:
    arn = secret(sm)
    granted = policy({"Effect": "Allow", "Principal": {"AWS": second_account.account_id},
                      "Action": "secretsmanager:DescribeSecret", "Resource": "*"})  # fmt: skip
    sm.put_resource_policy(SecretId=arn, ResourcePolicy=granted)
    them = client(second_account, "secretsmanager")
    eventually("OK", lambda: them.describe_secret(SecretId=arn))
    for name, call in every_operation(them, arn).items():
        if name != "DescribeSecret":
            assert code(call) == DENIED, name
    assert json.loads(sm.get_resource_policy(SecretId=arn)["ResourcePolicy"]) == json.loads(granted)


@pytest.mark.parametrize(
    "statement",
    [
        {"Principal": "*"},
        {"Principal": {"AWS": "*"}},
        {"Principal": {"AWS": ["arn:aws:iam::444455556666:root", "*"]}},
        {"Principal": {"Service": "*"}},
        {"NotPrincipal": {"AWS": "arn:aws:iam::444455556666:root"}},
        {"Principal": "*", "Condition": {"StringEqualsIfExists": {
            "aws:PrincipalAccount": "444455556666"}}},
        {"Principal": "*", "Condition": {"StringLike": {"aws:PrincipalAccount": "*"}}},
        {"Principal": "*", "Condition": {"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}},
        {"Principal": "*", "Condition": {"StringNotEquals": {
            "aws:PrincipalAccount": "444455556666"}}},
    ],
)  # fmt: skip
def test_block_public_policy_refuses_broad_access(
    sm: BaseClient, statement: dict[str, Any]
) -> None:
    arn = secret(sm)
    text = policy({"Effect": "Allow", "Action": READ, "Resource": "*", **statement})
    assert (
        code(
            lambda: sm.put_resource_policy(
                SecretId=arn, ResourcePolicy=text, BlockPublicPolicy=True
            )
        )
        == "PublicPolicyException"
    )
    assert "ResourcePolicy" not in sm.get_resource_policy(SecretId=arn)
    assert sm.validate_resource_policy(ResourcePolicy=text)["PolicyValidationPassed"] is False


def nested(depth: int) -> str:
    return '{"Version":"2012-10-17","Statement":' + "[" * depth + "]" * depth + "}"


BOMBS: dict[str, str] = {
    "deep arrays": nested(9_000),
    "deep objects": '{"Statement":' + '{"a":' * 3_000 + "1" + "}" * 3_000 + "}",
    "many statements": policy(*[
        {"Sid": f"S{i}", "Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::444455556666:root"},
         "Action": READ, "Resource": "*"} for i in range(120)
    ]),
    "huge numbers": '{"Version":"2012-10-17","Statement":[{"Sid":' + "9" * 10_000 + "}]}",
    "lone surrogates": '{"Version":"2012-10-17","Id":"\\ud800\\udfff\\ud800","Statement":[]}',
    "NaN": '{"Version":"2012-10-17","Statement":[],"Id":NaN}',
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_policy_text_bombs(sm: BaseClient, name: str) -> None:
    arn = secret(sm)
    text = BOMBS[name]
    assert len(text) <= 20_480, len(text)
    started = time.monotonic()
    put = code(lambda: sm.put_resource_policy(SecretId=arn, ResourcePolicy=text))
    validated = code(lambda: sm.validate_resource_policy(SecretId=arn, ResourcePolicy=text))
    assert time.monotonic() - started < 5
    assert put in ("OK", MALFORMED), put
    assert validated in ("OK", MALFORMED), validated
    assert sm.get_secret_value(SecretId=arn)["SecretString"] == "crown jewels"


@pytest.mark.parametrize("name", ["huge numbers", "deep arrays", "NaN"])
def test_the_same_bombs_as_key_policies(server: Server, name: str) -> None:
    """The grammar is shared with KMS key policies: PutKeyPolicy answers them as malformed too
    (an integer beyond Python's 4,300-digit limit once escaped as a 500 there)."""
    kms = client(server, "kms")
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    assert code(lambda: kms.put_key_policy(KeyId=key_id, Policy=BOMBS[name])) == MALFORMED


def test_longer_than_the_model_allows(sm: BaseClient, server: Server) -> None:
    """Past NonEmptyResourcePolicyType's 20,480 characters the model's validation refuses it
    before any parsing (botocore's own check turned off, so the server answers)."""
    arn = secret(sm)
    loose = boto3.session.Session().client(
        "secretsmanager", endpoint_url=server.endpoint, region_name=server.region,
        aws_access_key_id=server.access_key_id, aws_secret_access_key=server.secret_access_key,
        config=Config(parameter_validation=False, retries={"max_attempts": 1}),
    )  # fmt: skip
    text = policy({"Effect": "Allow", "Principal": {"AWS": server.account_id}, "Action": READ,
                   "Resource": "*", "Sid": "x" * 21_000})  # fmt: skip
    assert code(lambda: loose.put_resource_policy(SecretId=arn, ResourcePolicy=text)) in (
        "ValidationException", "InvalidParameterException")  # fmt: skip
    assert "ResourcePolicy" not in sm.get_resource_policy(SecretId=arn)


def test_wildcard_heavy_policy_keeps_authorization_fast(
    sm: BaseClient, server: Server, second_account: Server
) -> None:
    """A stored policy of many wildcard patterns that almost match: the matcher is linear, so
    a request evaluated against it is answered promptly."""
    arn = secret(sm)
    pattern = "secretsmanager:" + "*G" * 60 + "x"
    statements = [
        {"Sid": f"W{i}", "Effect": "Allow",
         "Principal": {"AWS": second_account.account_id},
         "Action": pattern, "Resource": "*"}
        for i in range(40)
    ]  # fmt: skip
    text = policy(*statements)
    assert len(text) <= 20_480
    sm.put_resource_policy(SecretId=arn, ResourcePolicy=text)
    them = client(second_account, "secretsmanager")
    started = time.monotonic()
    for _ in range(20):
        assert code(lambda: them.get_secret_value(SecretId=arn)) == DENIED
    assert time.monotonic() - started < 10
