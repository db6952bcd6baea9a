"""Resource exhaustion through Secrets Manager: values over 64 KiB, more than 100 versions of
a secret in a day, more than 50 tags, a flood of staging labels on one version. Each is refused
with AWS's error; nothing grows without bound."""

from __future__ import annotations

import uuid

from tests.conftest import Server
from tests.secretsmanager.conftest import sm_client
from tests.security.support import code


def test_value_over_the_limit(server: Server) -> None:
    sm = sm_client(server)
    name = f"limits/{uuid.uuid4().hex[:8]}"
    assert code(lambda: sm.create_secret(Name=name, SecretString="x" * 65_537)) == (
        "ValidationException"
    )
    assert code(lambda: sm.create_secret(Name=name, SecretBinary=b"x" * 65_537)) == (
        "ValidationException"
    )
    sm.create_secret(Name=name, SecretString="ok")
    assert code(lambda: sm.put_secret_value(SecretId=name, SecretString="y" * 65_537)) == (
        "ValidationException"
    )


def test_more_than_100_versions_in_a_day(server: Server) -> None:
    sm = sm_client(server)
    name = f"limits/{uuid.uuid4().hex[:8]}"
    sm.create_secret(Name=name, SecretString="0")
    for i in range(1, 100):
        sm.put_secret_value(SecretId=name, SecretString=str(i))
    assert code(lambda: sm.put_secret_value(SecretId=name, SecretString="101")) == (
        "LimitExceededException"
    )
    versions = sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)["Versions"]
    assert len(versions) == 100
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "99"


def test_more_than_50_tags(server: Server) -> None:
    sm = sm_client(server)
    name = f"limits/{uuid.uuid4().hex[:8]}"
    sm.create_secret(Name=name, Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(50)])
    assert code(
        lambda: sm.tag_resource(SecretId=name, Tags=[{"Key": "one-more", "Value": "v"}])
    ) == ("InvalidParameterException")
    assert (
        code(
            lambda: sm.create_secret(
                Name=name + "x", Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(51)]
            )
        )
        == "InvalidParameterException"
    )


def test_labels_per_version(server: Server) -> None:
    sm = sm_client(server)
    name = f"limits/{uuid.uuid4().hex[:8]}"
    version = sm.create_secret(Name=name, SecretString="v")["VersionId"]
    for i in range(19):  # AWSCURRENT + 19 = 20
        sm.update_secret_version_stage(SecretId=name, VersionStage=f"l{i}", MoveToVersionId=version)
    assert (
        code(
            lambda: sm.update_secret_version_stage(
                SecretId=name, VersionStage="one-too-many", MoveToVersionId=version
            )
        )
        == "LimitExceededException"
    )
