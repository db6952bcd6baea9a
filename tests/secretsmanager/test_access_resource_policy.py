"""Resource policies of secrets: Get/Put/Delete/Validate/ListResourcePolicies with AWS's
members and errors, and what a stored policy decides for same-account callers (IAM's rule: an
identity policy or a resource-policy statement naming the caller suffices; an explicit Deny in
either wins)."""

from __future__ import annotations

import json
from collections.abc import Iterator
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
    unique,
)

READ = "secretsmanager:GetSecretValue"


@pytest.fixture(scope="module")
def sm(server: Server) -> BaseClient:
    return client(server, "secretsmanager")


@pytest.fixture(scope="module")
def iam(server: Server) -> BaseClient:
    return client(server, "iam")


@pytest.fixture
def reader(server: Server, iam: BaseClient) -> Iterator[User]:
    """An IAM user with no identity policy for secrets; only kms:Decrypt (the managed key's
    policy delegates to the account's identity policies)."""
    user = new_user(iam, None, {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"})
    yield user
    delete_user(iam, user.name)


def new_secret(sm: BaseClient, value: str = "s3cr3t") -> dict[str, Any]:
    out: dict[str, Any] = sm.create_secret(Name=unique("policy/secret"), SecretString=value)
    return out


def allow(principal: Any, action: Any = READ, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Principal": principal, "Action": action, "Resource": "*", **extra}


def test_put_get_list_delete(sm: BaseClient, server: Server) -> None:
    secret = new_secret(sm)
    arn = secret["ARN"]
    assert sm.list_resource_policies(SecretId=arn)["ResourcePolicies"] == []
    got = sm.get_resource_policy(SecretId=arn)
    assert got["ARN"] == arn and got["Name"] == secret["Name"]
    assert "ResourcePolicy" not in got

    text = policy(allow({"AWS": f"arn:aws:iam::{server.account_id}:root"}))
    put = sm.put_resource_policy(SecretId=secret["Name"], ResourcePolicy=text)
    assert {k: put[k] for k in ("ARN", "Name")} == {"ARN": arn, "Name": secret["Name"]}
    assert put.get("PolicyName", "default") == "default"
    got = sm.get_resource_policy(SecretId=arn)
    assert json.loads(got["ResourcePolicy"]) == json.loads(text)
    listed = sm.list_resource_policies(SecretId=arn)["ResourcePolicies"]
    assert listed == [{"PolicyName": "default"}]
    described = sm.describe_secret(SecretId=arn)
    assert described["ARN"] == arn

    deleted = sm.delete_resource_policy(SecretId=arn)
    assert deleted["ARN"] == arn and deleted["Name"] == secret["Name"]
    assert "ResourcePolicy" not in sm.get_resource_policy(SecretId=arn)
    # Deleting again is not an error, as in AWS.
    sm.delete_resource_policy(SecretId=arn)


def test_only_the_default_policy_name(sm: BaseClient, server: Server) -> None:
    arn = new_secret(sm)["ARN"]
    text = policy(allow({"AWS": f"arn:aws:iam::{server.account_id}:root"}))
    assert (
        code(lambda: sm.put_resource_policy(SecretId=arn, ResourcePolicy=text, PolicyName="other"))
        == "InvalidParameterException"
    )
    assert (
        code(lambda: sm.delete_resource_policy(SecretId=arn, PolicyName="other"))
        == "InvalidParameterException"
    )
    assert (
        code(lambda: sm.get_resource_policy(SecretId=arn, PolicyName="other"))
        == "ResourceNotFoundException"
    )


def test_missing_secret(sm: BaseClient) -> None:
    missing = unique("policy/missing")
    for call in (
        lambda: sm.get_resource_policy(SecretId=missing),
        lambda: sm.delete_resource_policy(SecretId=missing),
        lambda: sm.put_resource_policy(SecretId=missing, ResourcePolicy=policy(allow("*"))),
        lambda: sm.list_resource_policies(SecretId=missing),
        lambda: sm.validate_resource_policy(SecretId=missing, ResourcePolicy=policy(allow("*"))),
    ):
        assert code(call) == "ResourceNotFoundException"


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        json.dumps({"Statement": [{"Effect": "Allow", "Action": READ, "Resource": "*"}]}),
        policy(allow({"AWS": "arn:aws:iam::111122223333:user/no-such-user-ever"})),
        policy(allow("*", action="kms:Decrypt")),
        policy({**allow("*"), "Resource": "arn:aws:s3:::bucket"}),
        policy({**allow("*"), "Effect": "Maybe"}),
    ],
)
def test_malformed_policies_are_refused(sm: BaseClient, text: str) -> None:
    arn = new_secret(sm)["ARN"]
    assert (
        code(lambda: sm.put_resource_policy(SecretId=arn, ResourcePolicy=text))
        == "MalformedPolicyDocumentException"
    )
    assert "ResourcePolicy" not in sm.get_resource_policy(SecretId=arn)


def test_validate_resource_policy(sm: BaseClient, server: Server) -> None:
    good = policy(allow({"AWS": f"arn:aws:iam::{server.account_id}:root"}))
    out = sm.validate_resource_policy(ResourcePolicy=good)
    assert out["PolicyValidationPassed"] is True
    assert out.get("ValidationErrors", []) == []

    public = sm.validate_resource_policy(ResourcePolicy=policy(allow("*")))
    assert public["PolicyValidationPassed"] is False
    assert public["ValidationErrors"] and all(
        set(e) == {"CheckName", "ErrorMessage"} for e in public["ValidationErrors"]
    )

    broken = sm.validate_resource_policy(ResourcePolicy='{"Statement": 5}')
    assert broken["PolicyValidationPassed"] is False
    # Against a secret: the same checks, on that secret (which must exist).
    arn = new_secret(sm)["ARN"]
    assert sm.validate_resource_policy(SecretId=arn, ResourcePolicy=good)["PolicyValidationPassed"]


def test_block_public_policy(sm: BaseClient, server: Server) -> None:
    arn = new_secret(sm)["ARN"]
    public = policy(allow("*"))
    assert (
        code(
            lambda: sm.put_resource_policy(
                SecretId=arn, ResourcePolicy=public, BlockPublicPolicy=True
            )
        )
        == "PublicPolicyException"
    )
    assert "ResourcePolicy" not in sm.get_resource_policy(SecretId=arn)
    # Restricted to the account by a condition: not broad, accepted even when blocking.
    pinned = policy(allow("*", Condition={
        "StringEquals": {"aws:PrincipalAccount": server.account_id}}))  # fmt: skip
    sm.put_resource_policy(SecretId=arn, ResourcePolicy=pinned, BlockPublicPolicy=True)
    # Without BlockPublicPolicy (AWS's default is not to block), a broad policy is stored.
    sm.put_resource_policy(SecretId=arn, ResourcePolicy=public)
    assert json.loads(sm.get_resource_policy(SecretId=arn)["ResourcePolicy"]) == json.loads(public)


def test_resource_policy_naming_a_user_lets_it_read(
    sm: BaseClient, server: Server, reader: User
) -> None:
    secret = new_secret(sm, "named")
    theirs = client(server, "secretsmanager", reader.creds)
    assert code(lambda: theirs.get_secret_value(SecretId=secret["ARN"])) == "AccessDeniedException"
    sm.put_resource_policy(
        SecretId=secret["ARN"], ResourcePolicy=policy(allow({"AWS": reader.arn}))
    )
    eventually("OK", lambda: theirs.get_secret_value(SecretId=secret["ARN"]))
    assert theirs.get_secret_value(SecretId=secret["ARN"])["SecretString"] == "named"
    # Only what the statement allows: DescribeSecret is still denied.
    assert code(lambda: theirs.describe_secret(SecretId=secret["ARN"])) == "AccessDeniedException"
    # The account's statement alone delegates to identity policies, which allow nothing here.
    sm.put_resource_policy(
        SecretId=secret["ARN"],
        ResourcePolicy=policy(allow({"AWS": f"arn:aws:iam::{server.account_id}:root"})),
    )
    eventually("AccessDeniedException", lambda: theirs.get_secret_value(SecretId=secret["ARN"]))


def test_resource_policy_deny_beats_identity_allow(
    sm: BaseClient, server: Server, iam: BaseClient
) -> None:
    user = new_user(iam, None, {"Effect": "Allow", "Action": ["secretsmanager:*", "kms:Decrypt"],
                                "Resource": "*"})  # fmt: skip
    try:
        secret = new_secret(sm, "denied")
        theirs = client(server, "secretsmanager", user.creds)
        eventually("OK", lambda: theirs.get_secret_value(SecretId=secret["ARN"]))
        deny = {"Effect": "Deny", "Principal": {"AWS": user.arn}, "Action": "secretsmanager:*",
                "Resource": "*"}  # fmt: skip
        sm.put_resource_policy(SecretId=secret["ARN"], ResourcePolicy=policy(deny))
        eventually("AccessDeniedException", lambda: theirs.get_secret_value(SecretId=secret["ARN"]))
        try:
            theirs.get_secret_value(SecretId=secret["ARN"])
        except theirs.exceptions.ClientError as exc:
            message = exc.response["Error"]["Message"]
            assert message == (
                f"User: {user.arn} is not authorized to perform: {READ} on resource: "
                f"{secret['ARN']} with an explicit deny in a resource-based policy"
            )
        # The policy's own owner (the account root) is not denied by a statement naming the
        # user, and can remove it.
        sm.delete_resource_policy(SecretId=secret["ARN"])
        eventually("OK", lambda: theirs.get_secret_value(SecretId=secret["ARN"]))
    finally:
        delete_user(iam, user.name)
