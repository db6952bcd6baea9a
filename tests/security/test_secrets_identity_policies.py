"""Attacks by an IAM user whose identity policy scopes Secrets Manager to some secrets: reaching
another secret by name, partial ARN, BatchGetSecretValue or a staging label the policy's
condition does not allow, or taking a secret by re-tagging it."""

from __future__ import annotations

import uuid

import pytest
from botocore.client import BaseClient

from tests.conftest import Server
from tests.secretsmanager.conftest import sm_client
from tests.security.support import client, code, new_user


@pytest.fixture(scope="module")
def team() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def scoped(server: Server, team: str) -> BaseClient:
    owner = sm_client(server)
    owner.create_secret(Name=f"{team}-a/db", SecretString="a-db")
    owner.create_secret(Name=f"{team}-b/db", SecretString="b-db")
    owner.create_secret(
        Name=f"{team}-tagged", SecretString="tagged", Tags=[{"Key": "team", "Value": "a"}]
    )
    prefix = f"arn:aws:secretsmanager:us-east-1:{server.account_id}:secret:{team}-a/"
    user = new_user(
        client(server, "iam"),
        None,
        {
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue", "secretsmanager:BatchGetSecretValue"],
            "Resource": [prefix + "*"],
            "Condition": {"StringEquals": {"secretsmanager:VersionStage": "AWSCURRENT"}},
        },
        {"Effect": "Allow", "Action": "secretsmanager:BatchGetSecretValue", "Resource": "*"},
        {
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": "*",
            "Condition": {"StringEquals": {"secretsmanager:ResourceTag/team": "b"}},
        },
        {"Effect": "Allow", "Action": "secretsmanager:TagResource", "Resource": "*"},
    )
    return sm_client(server, user.creds)


def test_scope_by_arn_prefix_and_condition(scoped: BaseClient, team: str) -> None:
    # Allowed only with the AWSCURRENT stage named (the condition key must be present).
    assert code(lambda: scoped.get_secret_value(SecretId=f"{team}-a/db")) == "AccessDeniedException"
    got = scoped.get_secret_value(SecretId=f"{team}-a/db", VersionStage="AWSCURRENT")
    assert got["SecretString"] == "a-db"
    assert (
        code(lambda: scoped.get_secret_value(SecretId=f"{team}-a/db", VersionStage="AWSPREVIOUS"))
        == "AccessDeniedException"
    )
    for ref in (f"{team}-b/db", f"{team}-b/db".rsplit("/", 1)[0] + "/db"):
        assert (
            code(lambda ref=ref: scoped.get_secret_value(SecretId=ref, VersionStage="AWSCURRENT"))
            == "AccessDeniedException"
        )


def test_batch_get_checks_each_secret(scoped: BaseClient, team: str) -> None:
    batch = scoped.batch_get_secret_value(SecretIdList=[f"{team}-b/db"])
    assert batch["SecretValues"] == []
    assert batch["Errors"][0]["ErrorCode"] == "AccessDeniedException"
    # Filters need secretsmanager:ListSecrets, which the policy does not give.
    assert (
        code(lambda: scoped.batch_get_secret_value(Filters=[{"Key": "name", "Values": [team]}]))
        == "AccessDeniedException"
    )


def test_retagging_grants_nothing_without_the_condition(scoped: BaseClient, team: str) -> None:
    name = f"{team}-tagged"
    assert code(lambda: scoped.get_secret_value(SecretId=name)) == "AccessDeniedException"
    # The user may tag: re-tagging to team=b then matches the ResourceTag condition, which is
    # what such a policy allows on AWS too; the test pins that the tag read is the stored one,
    # after the change, and never a tag the request itself carries.
    scoped.tag_resource(SecretId=name, Tags=[{"Key": "team", "Value": "b"}])
    assert scoped.get_secret_value(SecretId=name)["SecretString"] == "tagged"
