"""Attacks on Secrets Manager from another account: reading, describing, changing or deleting
a secret of account A with account B's credentials, by full ARN, by partial ARN and by name.

AWS rule (Secrets Manager User Guide, "Access AWS Secrets Manager secrets from a different
account"): another account's principal needs both an identity policy and the secret's resource
policy; without a resource policy every request is refused with AccessDeniedException, whether
or not the secret exists (so B cannot probe A's secret names); a name is always looked up in
the caller's own account."""

from __future__ import annotations

import uuid

import pytest
from botocore.client import BaseClient

from tests.conftest import Server
from tests.secretsmanager.conftest import sm_client
from tests.security.support import code


@pytest.fixture(scope="module")
def owner_secret(server: Server) -> str:
    owner = sm_client(server)
    return str(owner.create_secret(Name=f"xacct/{uuid.uuid4().hex[:8]}", SecretString="A's")["ARN"])


@pytest.fixture(scope="module")
def intruder(second_account: Server) -> BaseClient:
    return sm_client(second_account)


@pytest.mark.parametrize(
    "call",
    [
        lambda sm, ref: sm.get_secret_value(SecretId=ref),
        lambda sm, ref: sm.describe_secret(SecretId=ref),
        lambda sm, ref: sm.put_secret_value(SecretId=ref, SecretString="B's"),
        lambda sm, ref: sm.update_secret(SecretId=ref, Description="B was here"),
        lambda sm, ref: sm.delete_secret(SecretId=ref, ForceDeleteWithoutRecovery=True),
        lambda sm, ref: sm.tag_resource(SecretId=ref, Tags=[{"Key": "b", "Value": "b"}]),
        lambda sm, ref: sm.list_secret_version_ids(SecretId=ref),
        lambda sm, ref: sm.update_secret_version_stage(
            SecretId=ref, VersionStage="mine", MoveToVersionId="a" * 32
        ),
        lambda sm, ref: sm.restore_secret(SecretId=ref),
    ],
)
def test_another_account_is_refused_by_arn(
    intruder: BaseClient, owner_secret: str, call: object
) -> None:
    assert code(lambda: call(intruder, owner_secret)) == "AccessDeniedException"  # type: ignore[operator]
    partial = owner_secret.rsplit("-", 1)[0]
    assert code(lambda: call(intruder, partial)) == "AccessDeniedException"  # type: ignore[operator]


def test_existence_is_not_revealed(intruder: BaseClient, owner_secret: str) -> None:
    missing = owner_secret.rsplit(":", 1)[0] + ":no-such-secret-AbCdEf"
    assert code(lambda: intruder.get_secret_value(SecretId=missing)) == "AccessDeniedException"


def test_names_and_lists_stay_in_the_callers_account(
    intruder: BaseClient, owner_secret: str, server: Server
) -> None:
    name = owner_secret.split(":secret:", 1)[1].rsplit("-", 1)[0]
    assert code(lambda: intruder.get_secret_value(SecretId=name)) == "ResourceNotFoundException"
    listed = intruder.list_secrets()["SecretList"]
    assert owner_secret not in [s["ARN"] for s in listed]
    batch = intruder.batch_get_secret_value(SecretIdList=[owner_secret])
    assert batch["SecretValues"] == []
    assert batch["Errors"][0]["ErrorCode"] == "AccessDeniedException"
    # The owner's secret is untouched.
    owner = sm_client(server)
    assert owner.get_secret_value(SecretId=owner_secret)["SecretString"] == "A's"
    assert "Description" not in owner.describe_secret(SecretId=owner_secret)
