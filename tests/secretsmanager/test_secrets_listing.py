"""ListSecrets (filters, sort, pagination, planned deletions) and BatchGetSecretValue, through
boto3 and the AWS CLI (``aws secretsmanager`` with AWS_ENDPOINT_URL_SECRETS_MANAGER)."""

from __future__ import annotations

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from tests.secretsmanager.conftest import SmCli


@pytest.fixture(scope="module")
def listed(sm: BaseClient) -> list[str]:
    names = ["list/alpha", "list/beta", "list/gamma", "other/delta"]
    for i, name in enumerate(names):
        sm.create_secret(
            Name=name,
            SecretString=f"value-{i}",
            Description=f"Secret Number {i}",
            Tags=[{"Key": "team", "Value": "blue" if i % 2 else "red"}],
        )
    sm.create_secret(Name="list/deleted", SecretString="x")
    sm.delete_secret(SecretId="list/deleted")
    return names


def _names(response: dict[str, object]) -> list[str]:
    return [str(s["Name"]) for s in response["SecretList"]]  # type: ignore[attr-defined]


def test_filters(sm: BaseClient, listed: list[str]) -> None:
    by_name = sm.list_secrets(Filters=[{"Key": "name", "Values": ["list/"]}])
    assert sorted(_names(by_name)) == ["list/alpha", "list/beta", "list/gamma"]
    negated = sm.list_secrets(Filters=[{"Key": "name", "Values": ["!list/"]}])
    assert _names(negated) == ["other/delta"]
    by_tag = sm.list_secrets(
        Filters=[{"Key": "tag-key", "Values": ["team"]}, {"Key": "tag-value", "Values": ["blue"]}]
    )
    assert sorted(_names(by_tag)) == ["list/beta", "other/delta"]
    by_description = sm.list_secrets(
        Filters=[{"Key": "description", "Values": ["secret number 2"]}]
    )
    assert _names(by_description) == ["list/gamma"]
    everything = sm.list_secrets(Filters=[{"Key": "all", "Values": ["gamma"]}])
    assert _names(everything) == ["list/gamma"]


def test_sort_and_pages(sm: BaseClient, listed: list[str]) -> None:
    ascending = sm.list_secrets(SortBy="name", SortOrder="asc")
    assert _names(ascending) == sorted(listed)
    descending = sm.list_secrets(SortBy="name", SortOrder="desc")
    assert _names(descending) == sorted(listed, reverse=True)
    seen: list[str] = []
    token = None
    while True:
        kwargs = {"MaxResults": 3, "SortBy": "name", "SortOrder": "asc"}
        page = sm.list_secrets(**kwargs, **({"NextToken": token} if token else {}))
        seen += _names(page)
        token = page.get("NextToken")
        if token is None:
            break
    assert seen == sorted(listed)
    with pytest.raises(ClientError) as caught:
        sm.list_secrets(NextToken="not-a-token")
    assert caught.value.response["Error"]["Code"] == "InvalidNextTokenException"


def test_planned_deletion(sm: BaseClient, listed: list[str]) -> None:
    assert "list/deleted" not in _names(sm.list_secrets())
    with_deleted = sm.list_secrets(IncludePlannedDeletion=True)
    entry = [s for s in with_deleted["SecretList"] if s["Name"] == "list/deleted"]
    assert entry and "DeletedDate" in entry[0]


def test_list_entries_never_carry_values(sm: BaseClient, listed: list[str]) -> None:
    for entry in sm.list_secrets()["SecretList"]:
        assert "SecretString" not in entry and "SecretBinary" not in entry
        assert "SecretVersionsToStages" in entry


def test_batch_get(sm: BaseClient, listed: list[str]) -> None:
    got = sm.batch_get_secret_value(SecretIdList=["list/alpha", "list/beta", "nope/none"])
    values = {v["Name"]: v["SecretString"] for v in got["SecretValues"]}
    assert values == {"list/alpha": "value-0", "list/beta": "value-1"}
    assert got["Errors"] == [
        {
            "SecretId": "nope/none",
            "ErrorCode": "ResourceNotFoundException",
            "Message": "Secrets Manager can't find the specified secret.",
        }
    ]
    filtered = sm.batch_get_secret_value(Filters=[{"Key": "name", "Values": ["other/"]}])
    assert [v["SecretString"] for v in filtered["SecretValues"]] == ["value-3"]
    with pytest.raises(ClientError) as caught:
        sm.batch_get_secret_value()
    assert caught.value.response["Error"]["Code"] == "InvalidParameterException"


def test_aws_cli(sm_cli: SmCli) -> None:
    created = sm_cli("create-secret", "--name", "cli/secret", "--secret-string", "from-cli").json
    assert created["Name"] == "cli/secret"
    got = sm_cli("get-secret-value", "--secret-id", "cli/secret").json
    assert got["SecretString"] == "from-cli"
    sm_cli("put-secret-value", "--secret-id", "cli/secret", "--secret-string", "second")
    assert sm_cli("get-secret-value", "--secret-id", "cli/secret").json["SecretString"] == "second"
    listed = sm_cli("list-secrets", "--filters", "Key=name,Values=cli/").json
    assert [s["Name"] for s in listed["SecretList"]] == ["cli/secret"]
    missing = sm_cli("describe-secret", "--secret-id", "cli/none", check=False)
    assert missing.returncode != 0 and "ResourceNotFoundException" in missing.stderr
    deleted = sm_cli(
        "delete-secret", "--secret-id", "cli/secret", "--force-delete-without-recovery"
    ).json
    assert deleted["Name"] == "cli/secret"
