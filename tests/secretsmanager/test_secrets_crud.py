"""Secrets Manager's core operations through boto3 against a real server: create, read, put,
describe, update, delete, restore, tags, versions and labels, with AWS's errors."""

from __future__ import annotations

import uuid

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from tests.conftest import Server


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def _message(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Message"])


def _name(prefix: str = "app") -> str:
    return f"{prefix}/{uuid.uuid4().hex[:10]}"


def test_create_and_get_string(sm: BaseClient, sm_server: Server) -> None:
    name = _name()
    created = sm.create_secret(Name=name, SecretString='{"user":"u","password":"p"}')
    arn = created["ARN"]
    assert arn.startswith(f"arn:aws:secretsmanager:us-east-1:{sm_server.account_id}:secret:{name}-")
    assert len(arn.rsplit("-", 1)[1]) == 6
    assert created["Name"] == name
    got = sm.get_secret_value(SecretId=name)
    assert got["SecretString"] == '{"user":"u","password":"p"}'
    assert got["VersionId"] == created["VersionId"]
    assert got["VersionStages"] == ["AWSCURRENT"]
    assert got["ARN"] == arn
    assert "SecretBinary" not in got
    # By complete ARN and by partial ARN (without the random suffix).
    assert sm.get_secret_value(SecretId=arn)["SecretString"] == got["SecretString"]
    partial = arn.rsplit("-", 1)[0]
    assert sm.get_secret_value(SecretId=partial)["SecretString"] == got["SecretString"]


def test_binary_secret(sm: BaseClient) -> None:
    name = _name()
    sm.create_secret(Name=name, SecretBinary=b"\x00\x01binary\xff")
    got = sm.get_secret_value(SecretId=name)
    assert got["SecretBinary"] == b"\x00\x01binary\xff"
    assert "SecretString" not in got


def test_missing_secret(sm: BaseClient) -> None:
    with pytest.raises(ClientError) as caught:
        sm.get_secret_value(SecretId=_name("missing"))
    assert _code(caught) == "ResourceNotFoundException"
    assert _message(caught) == "Secrets Manager can't find the specified secret."


def test_secret_without_value(sm: BaseClient) -> None:
    name = _name()
    created = sm.create_secret(Name=name, Description="no value yet")
    assert "VersionId" not in created
    with pytest.raises(ClientError) as caught:
        sm.get_secret_value(SecretId=name)
    assert _code(caught) == "ResourceNotFoundException"
    assert _message(caught) == (
        "Secrets Manager can't find the specified secret value for staging label: AWSCURRENT"
    )
    put = sm.put_secret_value(SecretId=name, SecretString="first")
    assert put["VersionStages"] == ["AWSCURRENT"]


def test_duplicate_name_and_idempotent_retry(sm: BaseClient) -> None:
    name = _name()
    token = str(uuid.uuid4())
    first = sm.create_secret(Name=name, SecretString="v", ClientRequestToken=token)
    again = sm.create_secret(Name=name, SecretString="v", ClientRequestToken=token)
    assert again["VersionId"] == first["VersionId"] == token
    with pytest.raises(ClientError) as caught:
        sm.create_secret(Name=name, SecretString="other", ClientRequestToken=token)
    assert _code(caught) == "ResourceExistsException"
    with pytest.raises(ClientError) as caught:
        sm.create_secret(Name=name, SecretString="v")
    assert _code(caught) == "ResourceExistsException"
    assert _message(caught) == f"The operation failed because the secret {name} already exists."


def test_put_secret_value_labels_and_idempotency(sm: BaseClient) -> None:
    name = _name()
    v1 = sm.create_secret(Name=name, SecretString="one")["VersionId"]
    token = str(uuid.uuid4())
    put = sm.put_secret_value(SecretId=name, SecretString="two", ClientRequestToken=token)
    assert put["VersionId"] == token
    assert put["VersionStages"] == ["AWSCURRENT"]
    # Same token, same value: nothing happens.
    same = sm.put_secret_value(SecretId=name, SecretString="two", ClientRequestToken=token)
    assert same["VersionId"] == token
    # Same token, another value: refused.
    with pytest.raises(ClientError) as caught:
        sm.put_secret_value(SecretId=name, SecretString="three", ClientRequestToken=token)
    assert _code(caught) == "ResourceExistsException"
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "two"
    previous = sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")
    assert previous["SecretString"] == "one"
    assert previous["VersionId"] == v1
    assert sm.get_secret_value(SecretId=name, VersionId=v1)["SecretString"] == "one"
    pending = sm.put_secret_value(
        SecretId=name, SecretString="four", VersionStages=["AWSPENDING", "custom"]
    )
    assert sorted(pending["VersionStages"]) == ["AWSPENDING", "custom"]
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "two"
    assert sm.get_secret_value(SecretId=name, VersionStage="custom")["SecretString"] == "four"
    stages = sm.describe_secret(SecretId=name)["VersionIdsToStages"]
    assert stages == {
        v1: ["AWSPREVIOUS"],
        token: ["AWSCURRENT"],
        pending["VersionId"]: ["AWSPENDING", "custom"],
    }


def test_update_secret_version_stage(sm: BaseClient) -> None:
    name = _name()
    v1 = sm.create_secret(Name=name, SecretString="one")["VersionId"]
    v2 = sm.put_secret_value(SecretId=name, SecretString="two", VersionStages=["AWSPENDING"])[
        "VersionId"
    ]
    with pytest.raises(ClientError) as caught:
        sm.update_secret_version_stage(SecretId=name, VersionStage="AWSCURRENT", MoveToVersionId=v2)
    assert _code(caught) == "InvalidParameterException"
    sm.update_secret_version_stage(
        SecretId=name, VersionStage="AWSCURRENT", MoveToVersionId=v2, RemoveFromVersionId=v1
    )
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "two"
    assert sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")["VersionId"] == v1
    sm.update_secret_version_stage(SecretId=name, VersionStage="AWSPENDING", RemoveFromVersionId=v2)
    assert sm.describe_secret(SecretId=name)["VersionIdsToStages"] == {
        v2: ["AWSCURRENT"],
        v1: ["AWSPREVIOUS"],
    }
    with pytest.raises(ClientError) as caught:
        sm.update_secret_version_stage(
            SecretId=name, VersionStage="AWSCURRENT", RemoveFromVersionId=v2
        )
    assert _code(caught) == "InvalidParameterException"
    sm.update_secret_version_stage(SecretId=name, VersionStage="mine", MoveToVersionId=v1)
    assert sm.get_secret_value(SecretId=name, VersionStage="mine")["SecretString"] == "one"


def test_list_secret_version_ids(sm: BaseClient) -> None:
    name = _name()
    v1 = sm.create_secret(Name=name, SecretString="one")["VersionId"]
    v2 = sm.put_secret_value(SecretId=name, SecretString="two")["VersionId"]
    v3 = sm.put_secret_value(SecretId=name, SecretString="three")["VersionId"]
    listed = sm.list_secret_version_ids(SecretId=name)
    assert {v["VersionId"] for v in listed["Versions"]} == {v2, v3}  # v1 is deprecated
    everything = sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)
    assert {v["VersionId"] for v in everything["Versions"]} == {v1, v2, v3}
    first = sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True, MaxResults=2)
    assert len(first["Versions"]) == 2
    rest = sm.list_secret_version_ids(
        SecretId=name, IncludeDeprecated=True, MaxResults=2, NextToken=first["NextToken"]
    )
    assert len(rest["Versions"]) == 1 and "NextToken" not in rest
    # The deprecated version is still readable by its id.
    assert sm.get_secret_value(SecretId=name, VersionId=v1)["SecretString"] == "one"


def test_describe_and_update(sm: BaseClient, sm_kms: BaseClient) -> None:
    name = _name()
    sm.create_secret(
        Name=name, SecretString="v", Description="first", Tags=[{"Key": "team", "Value": "a"}]
    )
    described = sm.describe_secret(SecretId=name)
    assert described["Description"] == "first"
    assert described["Tags"] == [{"Key": "team", "Value": "a"}]
    assert "KmsKeyId" not in described
    assert "DeletedDate" not in described
    key = sm_kms.create_key()["KeyMetadata"]["Arn"]
    updated = sm.update_secret(SecretId=name, Description="second", KmsKeyId=key)
    assert "VersionId" not in updated
    described = sm.describe_secret(SecretId=name)
    assert described["Description"] == "second"
    assert described["KmsKeyId"] == key
    # Re-encrypted under the new key: still readable, and its version names the new key.
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "v"
    versions = sm.list_secret_version_ids(SecretId=name)["Versions"]
    assert versions[0]["KmsKeyIds"] == [key]
    changed = sm.update_secret(SecretId=name, SecretString="new value")
    assert sm.get_secret_value(SecretId=name)["VersionId"] == changed["VersionId"]


def test_delete_restore_and_force(sm: BaseClient) -> None:
    name = _name()
    sm.create_secret(Name=name, SecretString="v")
    deleted = sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    assert deleted["Name"] == name
    with pytest.raises(ClientError) as caught:
        sm.get_secret_value(SecretId=name)
    assert _code(caught) == "InvalidRequestException"
    assert "marked for deletion" in _message(caught)
    assert "DeletedDate" in sm.describe_secret(SecretId=name)
    with pytest.raises(ClientError) as caught:
        sm.create_secret(Name=name, SecretString="again")
    assert _code(caught) == "InvalidRequestException"
    sm.restore_secret(SecretId=name)
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "v"
    sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    with pytest.raises(ClientError) as caught:
        sm.describe_secret(SecretId=name)
    assert _code(caught) == "ResourceNotFoundException"
    sm.create_secret(Name=name, SecretString="reborn")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"RecoveryWindowInDays": 6},
        {"RecoveryWindowInDays": 31},
        {"RecoveryWindowInDays": 7, "ForceDeleteWithoutRecovery": True},
    ],
)
def test_delete_parameters(sm: BaseClient, kwargs: dict[str, object]) -> None:
    name = _name()
    sm.create_secret(Name=name, SecretString="v")
    with pytest.raises(ClientError) as caught:
        sm.delete_secret(SecretId=name, **kwargs)
    assert _code(caught) == "InvalidParameterException"
    assert sm.describe_secret(SecretId=name).get("DeletedDate") is None


def test_window_range_is_checked_before_the_conflict_with_force(sm: BaseClient) -> None:
    name = _name()
    sm.create_secret(Name=name, SecretString="v")
    with pytest.raises(ClientError) as caught:
        sm.delete_secret(SecretId=name, RecoveryWindowInDays=0, ForceDeleteWithoutRecovery=True)
    assert _message(caught) == (
        "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive)."
    )


def test_tags(sm: BaseClient) -> None:
    name = _name()
    sm.create_secret(Name=name, SecretString="v")
    sm.tag_resource(SecretId=name, Tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
    sm.tag_resource(SecretId=name, Tags=[{"Key": "a", "Value": "3"}])
    sm.untag_resource(SecretId=name, TagKeys=["b"])
    assert sm.describe_secret(SecretId=name)["Tags"] == [{"Key": "a", "Value": "3"}]
    with pytest.raises(ClientError) as caught:
        sm.tag_resource(SecretId=name, Tags=[{"Key": "aws:x", "Value": "1"}])
    assert _code(caught) == "InvalidParameterException"


def test_both_values_refused(sm: BaseClient) -> None:
    with pytest.raises(ClientError) as caught:
        sm.create_secret(Name=_name(), SecretString="s", SecretBinary=b"b")
    assert _code(caught) == "InvalidParameterException"


def test_invalid_name(sm: BaseClient) -> None:
    with pytest.raises(ClientError) as caught:
        sm.create_secret(Name="bad name with spaces", SecretString="s")
    assert _code(caught) == "ValidationException"
    assert _message(caught).startswith("Invalid name.")


def test_random_password(sm: BaseClient) -> None:
    password = sm.get_random_password()["RandomPassword"]
    assert len(password) == 32
    digits = sm.get_random_password(
        PasswordLength=50, ExcludeLowercase=True, ExcludeUppercase=True, ExcludePunctuation=True
    )["RandomPassword"]
    assert len(digits) == 50 and digits.isdigit()
    with pytest.raises(ClientError) as caught:
        sm.get_random_password(
            ExcludeLowercase=True,
            ExcludeUppercase=True,
            ExcludePunctuation=True,
            ExcludeNumbers=True,
        )
    assert _code(caught) == "InvalidParameterException"
