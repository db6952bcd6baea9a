"""Attacks on Secrets Manager rotation, against a real server whose operator mapped two rotation
functions (one of this account, one of another account): a caller who may rotate the secret but
not invoke the function, a caller naming another account's function, a caller whose RotateSecret
is explicitly denied. Each is refused with AWS's error, nothing is written, and no function runs
(the functions record every event they receive)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.conftest import Server, ServerProcess, create_account, server_from_account
from tests.security.support import client, delete_user, new_user

HANDLERS = Path(__file__).resolve().parents[1] / "secretsmanager"
OTHER_ACCOUNT = "444455556666"


@pytest.fixture(scope="module")
def rotation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path, str]]:
    base = tmp_path_factory.mktemp("rotation-attacks")
    data_dir = tmp_path_factory.mktemp("openkms-rotation-attacks")
    account = create_account(data_dir)
    record = base / "events.jsonl"
    own = f"arn:aws:lambda:us-east-1:{account['AccountId']}:function:rotator"
    other = f"arn:aws:lambda:us-east-1:{OTHER_ACCOUNT}:function:rotator"
    command = json.dumps([sys.executable, "-m", "openkms.secretsmanager.rotation.runner",
                          "--stdin", "--path", str(HANDLERS), "rotation_handlers:record"])
    (base / "functions.toml").write_text("".join(
        f'[functions."{arn}"]\ncommand = {command}\nenv = {{ RECORD_FILE = "{record}" }}\n\n'
        for arn in (own, other)
    ))
    (base / "openkms.toml").write_text(f'rotation_functions = "{base / "functions.toml"}"\n')
    proc = ServerProcess(data_dir, extra_args=("--config", str(base / "openkms.toml")))
    proc.start()
    try:
        yield server_from_account(proc.endpoint, data_dir, account), record, own
    finally:
        proc.stop()


def error_of(call: object) -> tuple[str, str]:
    try:
        call()  # type: ignore[operator]
    except ClientError as exc:
        return exc.response["Error"]["Code"], exc.response["Error"].get("Message", "")
    return "OK", ""


def test_rotating_without_lambda_invoke_permission_is_refused(
    rotation: tuple[Server, Path, str],
) -> None:
    server, record, function = rotation
    root_sm = client(server, "secretsmanager")
    iam = client(server, "iam")
    arn = root_sm.create_secret(Name="attack/no-invoke", SecretString="v1")["ARN"]
    user = new_user(iam, None, {"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"})
    try:
        sm = client(server, "secretsmanager", user.creds)
        deadline = time.monotonic() + 3
        while True:  # the new user's key and policy settle within the cache TTL
            found, message = error_of(lambda: sm.rotate_secret(
                SecretId=arn, RotationLambdaARN=function,
                RotationRules={"AutomaticallyAfterDays": 1}))
            if found != "UnrecognizedClientException" or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert found == "AccessDeniedException"
        assert "lambda:InvokeFunction" in message and function in message
        described = root_sm.describe_secret(SecretId=arn)
        assert "RotationEnabled" not in described and "RotationLambdaARN" not in described
        assert list(described["VersionIdsToStages"].values()) == [["AWSCURRENT"]]
    finally:
        delete_user(iam, user.name)
    assert not record.exists() or arn not in record.read_text()


def test_naming_another_accounts_function_is_refused(rotation: tuple[Server, Path, str]) -> None:
    server, record, _ = rotation
    sm = client(server, "secretsmanager")
    arn = sm.create_secret(Name="attack/other-account", SecretString="v1")["ARN"]
    other = f"arn:aws:lambda:us-east-1:{OTHER_ACCOUNT}:function:rotator"
    found, message = error_of(lambda: sm.rotate_secret(SecretId=arn, RotationLambdaARN=other))
    assert (found, message) == ("AccessDeniedException",
        "Secrets Manager cannot invoke the specified Lambda function. Ensure that the function "
        "policy grants access to the principal secretsmanager.amazonaws.com.")
    assert "RotationEnabled" not in sm.describe_secret(SecretId=arn)
    assert not record.exists() or arn not in record.read_text()


def test_an_explicit_deny_of_rotate_secret_wins(rotation: tuple[Server, Path, str]) -> None:
    server, record, function = rotation
    root_sm = client(server, "secretsmanager")
    iam = client(server, "iam")
    arn = root_sm.create_secret(Name="attack/denied", SecretString="v1")["ARN"]
    user = new_user(
        iam, None,
        {"Effect": "Allow", "Action": ["secretsmanager:*", "lambda:InvokeFunction"],
         "Resource": "*"},
        {"Effect": "Deny", "Action": "secretsmanager:RotateSecret", "Resource": arn},
    )
    try:
        sm = client(server, "secretsmanager", user.creds)
        deadline = time.monotonic() + 3
        while True:
            found, _ = error_of(lambda: sm.rotate_secret(SecretId=arn, RotationLambdaARN=function))
            if found != "UnrecognizedClientException" or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert found == "AccessDeniedException"
        assert "RotationEnabled" not in root_sm.describe_secret(SecretId=arn)
    finally:
        delete_user(iam, user.name)
    assert not record.exists() or arn not in record.read_text()


def test_with_both_permissions_the_function_receives_the_event(
    rotation: tuple[Server, Path, str],
) -> None:
    server, record, function = rotation
    root_sm = client(server, "secretsmanager")
    iam = client(server, "iam")
    arn = root_sm.create_secret(Name="attack/allowed", SecretString="v1")["ARN"]
    user = new_user(iam, None, {"Effect": "Allow",
                                "Action": ["secretsmanager:*", "lambda:InvokeFunction"],
                                "Resource": "*"})
    try:
        sm = client(server, "secretsmanager", user.creds)
        deadline = time.monotonic() + 3
        while True:
            found, _ = error_of(lambda: sm.rotate_secret(SecretId=arn, RotationLambdaARN=function))
            if found != "UnrecognizedClientException" or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert found == "OK"
    finally:
        delete_user(iam, user.name)
    deadline = time.monotonic() + 60
    while not (record.exists() and arn in record.read_text()):
        assert time.monotonic() < deadline, "the function was never invoked"
        time.sleep(0.1)
    events = [json.loads(line)["event"] for line in record.read_text().splitlines()]
    assert next(e["Step"] for e in events if e["SecretId"] == arn) == "createSecret"


def test_the_audit_log_shows_the_rotation_but_never_its_token(
    rotation: tuple[Server, Path, str],
) -> None:
    """RotationStarted and RotationFailed (the recording function never moves AWSCURRENT) as
    service events of the secret's account; the RotationToken, a credential of the rotation,
    appears in neither the audit log nor the server's log."""
    server, record, function = rotation
    sm = client(server, "secretsmanager")
    arn = sm.create_secret(Name="attack/audited", SecretString="v1")["ARN"]
    sm.rotate_secret(SecretId=arn, RotationLambdaARN=function)
    audit = server.data_dir / "audit.log"

    def service_events() -> list[dict[str, object]]:
        records = [json.loads(line) for line in audit.read_text().splitlines() if line.strip()]
        return [r for r in records if r.get("eventType") == "AwsServiceEvent"
                and r.get("additionalEventData") == {"SecretId": arn}]

    deadline = time.monotonic() + 60
    while [r["eventName"] for r in service_events()] != ["RotationStarted", "RotationFailed"]:
        assert time.monotonic() < deadline, f"no rotation events: {service_events()}"
        time.sleep(0.1)
    assert all(r["userIdentity"] == {"accountId": server.account_id,
                                     "invokedBy": "secretsmanager.amazonaws.com"}
               for r in service_events())
    tokens = {json.loads(line)["event"]["RotationToken"]
              for line in record.read_text().splitlines()
              if json.loads(line)["event"]["SecretId"] == arn}
    assert len(tokens) == 1
    token = tokens.pop()
    assert token not in audit.read_text()
    assert token not in server.stderr_log.read_text("utf-8", "replace")


def test_a_rotation_started_right_after_an_abandoned_one_runs(
    rotation: tuple[Server, Path, str],
) -> None:
    """Race: a new AWSCURRENT by hand abandons the rotation in progress, and RotateSecret at
    once starts another while the first job still holds the secret's slot. The second rotation
    ran never (RotateSecret answered its VersionId, its AWSPENDING stayed, and the scheduler
    skips a secret whose rotation is pending): it must run once the first job has stopped."""
    server, record, function = rotation
    sm = client(server, "secretsmanager")
    arn = sm.create_secret(Name="attack/abandon-race", SecretString="v1")["ARN"]
    first = sm.rotate_secret(SecretId=arn, RotationLambdaARN=function)["VersionId"]
    sm.put_secret_value(SecretId=arn, SecretString="by hand")
    second = sm.rotate_secret(SecretId=arn)["VersionId"]
    assert second != first

    def steps(token: str) -> list[str]:
        lines = record.read_text().splitlines() if record.exists() else []
        events = [json.loads(line)["event"] for line in lines]
        return [e["Step"] for e in events if e["ClientRequestToken"] == token]

    deadline = time.monotonic() + 60
    while steps(second)[-1:] != ["finishSecret"]:
        assert time.monotonic() < deadline, f"the second rotation never ran: {steps(second)}"
        time.sleep(0.1)
    assert steps(second) == ["createSecret", "setSecret", "testSecret", "finishSecret"]
    assert "finishSecret" not in steps(first)
    assert sm.get_secret_value(SecretId=arn)["SecretString"] == "by hand"
