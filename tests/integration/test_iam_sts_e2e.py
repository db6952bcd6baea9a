"""IAM and STS end to end: a real server process, boto3's ``iam``/``sts`` clients and the AWS CLI.

The server is started by a module-scoped fixture of this file (``openkms accounts create`` then
``openkms serve``), on a free port with its own data directory. Tests create what they need
under unique names, so they may run in any order and on several xdist workers (each worker
starts its own server).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

REGION = "us-east-1"
AWS_CLI = Path(sys.executable).with_name("aws")


@dataclass(frozen=True)
class Server:
    endpoint: str
    account_id: str
    access_key_id: str
    secret_access_key: str
    data_dir: Path

    def client(self, service: str, *, endpoint: bool = True, **creds: str | None) -> Any:
        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=self.endpoint if endpoint else None,
            aws_access_key_id=creds.get("key", self.access_key_id),
            aws_secret_access_key=creds.get("secret", self.secret_access_key),
            aws_session_token=creds.get("token"),
            config=Config(retries={"max_attempts": 1}),
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _openkms(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "openkms.cli.main", *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("openkms-iam")
    account = json.loads(_openkms("accounts", "create", "--data-dir", str(data_dir)).stdout)
    port = _free_port()
    log = (data_dir / "server.log").open("wb")
    command = [sys.executable, "-m", "openkms.cli.main", "serve", "--data-dir", str(data_dir)]
    command += ["--workers", "1"]
    process = subprocess.Popen(
        [*command, "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError((data_dir / "server.log").read_text())
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{endpoint}/healthz", timeout=1) as answer,
            ):
                if answer.status == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not become healthy")
            time.sleep(0.05)
        yield Server(
            endpoint,
            account["AccountId"],
            account["AccessKeyId"],
            account["SecretAccessKey"],
            data_dir,
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def code(exc: ClientError) -> str:
    return str(exc.response["Error"]["Code"])


def status(exc: ClientError) -> int:
    return int(exc.response["ResponseMetadata"]["HTTPStatusCode"])


def new_user(server: Server, iam: Any, *statements: dict[str, Any]) -> tuple[str, Any, Any]:
    """(user name, its iam client, its sts client)."""
    name = unique("user")
    iam.create_user(UserName=name)
    if statements:
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=policy(*statements))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    creds = {"key": key["AccessKeyId"], "secret": key["SecretAccessKey"]}
    return name, server.client("iam", **creds), server.client("sts", **creds)


# --- boto3 ---------------------------------------------------------------------------------
def test_root_identity(server: Server) -> None:
    me = server.client("sts").get_caller_identity()
    assert me["Account"] == server.account_id
    assert me["UserId"] == server.account_id
    assert me["Arn"] == f"arn:aws:iam::{server.account_id}:root"


def test_endpoint_from_service_specific_environment(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_IAM", server.endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", server.endpoint)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    iam = server.client("iam", endpoint=False)
    sts = server.client("sts", endpoint=False)
    name = unique("env")
    assert iam.create_user(UserName=name)["User"]["UserName"] == name
    assert sts.get_caller_identity()["Account"] == server.account_id
    iam.delete_user(UserName=name)


def test_users_groups_and_policies(server: Server) -> None:
    iam = server.client("iam")
    name, user_iam, user_sts = new_user(server, iam)
    me = user_sts.get_caller_identity()
    assert me["Arn"] == f"arn:aws:iam::{server.account_id}:user/{name}"
    assert me["UserId"].startswith("AIDA")
    with pytest.raises(ClientError) as caught:
        user_iam.list_users()
    assert (code(caught.value), status(caught.value)) == ("AccessDenied", 403)

    group = unique("readers")
    iam.create_group(GroupName=group)
    iam.add_user_to_group(GroupName=group, UserName=name)
    listing = iam.create_policy(
        PolicyName=unique("list"),
        PolicyDocument=policy({"Effect": "Allow", "Action": "iam:List*", "Resource": "*"}),
    )["Policy"]
    iam.attach_group_policy(GroupName=group, PolicyArn=listing["Arn"])
    users = [u["UserName"] for u in user_iam.list_users()["Users"]]
    assert name in users
    assert [g["GroupName"] for g in iam.list_groups_for_user(UserName=name)["Groups"]] == [group]
    version = iam.get_policy_version(PolicyArn=listing["Arn"], VersionId="v1")["PolicyVersion"]
    assert version["Document"]["Statement"][0]["Action"] == "iam:List*"  # boto3 decodes it

    with pytest.raises(ClientError) as caught:
        iam.delete_policy(PolicyArn=listing["Arn"])
    assert (code(caught.value), status(caught.value)) == ("DeleteConflict", 409)
    with pytest.raises(ClientError) as caught:
        iam.delete_user(UserName=name)
    assert (code(caught.value), status(caught.value)) == ("DeleteConflict", 409)
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_user(UserName=unique("ghost"))
    with pytest.raises(iam.exceptions.EntityAlreadyExistsException):
        iam.create_group(GroupName=group.upper())
    with pytest.raises(iam.exceptions.MalformedPolicyDocumentException):
        iam.put_user_policy(UserName=name, PolicyName="bad", PolicyDocument='{"Statement": 3}')
    iam.create_access_key(UserName=name)
    with pytest.raises(iam.exceptions.LimitExceededException):
        iam.create_access_key(UserName=name)

    iam.detach_group_policy(GroupName=group, PolicyArn=listing["Arn"])
    iam.remove_user_from_group(GroupName=group, UserName=name)
    iam.delete_group(GroupName=group)
    iam.delete_policy(PolicyArn=listing["Arn"])
    for key in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]:
        iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
    iam.delete_user(UserName=name)


def test_deactivated_and_deleted_keys_stop_working(server: Server) -> None:
    iam = server.client("iam")
    name, _, user_sts = new_user(server, iam)
    key_id = iam.list_access_keys(UserName=name)["AccessKeyMetadata"][0]["AccessKeyId"]
    user_sts.get_caller_identity()
    iam.update_access_key(UserName=name, AccessKeyId=key_id, Status="Inactive")
    time.sleep(1.2)  # the identity cache's TTL
    with pytest.raises(ClientError) as caught:
        user_sts.get_caller_identity()
    assert (code(caught.value), status(caught.value)) == ("InvalidClientTokenId", 403)
    iam.update_access_key(UserName=name, AccessKeyId=key_id, Status="Active")
    time.sleep(1.2)
    user_sts.get_caller_identity()
    iam.delete_access_key(UserName=name, AccessKeyId=key_id)
    time.sleep(1.2)
    with pytest.raises(ClientError) as caught:
        user_sts.get_caller_identity()
    assert code(caught.value) == "InvalidClientTokenId"


def test_authentication_errors(server: Server) -> None:
    with pytest.raises(ClientError) as caught:
        server.client("iam", secret="wrong" * 8).list_users()
    assert (code(caught.value), status(caught.value)) == ("SignatureDoesNotMatch", 403)
    with pytest.raises(ClientError) as caught:
        server.client("sts", key="AKIAUNKNOWNUNKNOWN00").get_caller_identity()
    assert code(caught.value) == "InvalidClientTokenId"
    assert caught.value.response["Error"]["Message"] == (
        "The security token included in the request is invalid."
    )


def test_roles_and_assume_role_validation(server: Server) -> None:
    iam = server.client("iam")
    role = unique("role")
    trust = policy(
        {"Effect": "Allow", "Principal": {"AWS": server.account_id}, "Action": "sts:AssumeRole"}
    )
    created = iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust)["Role"]
    assert created["RoleId"].startswith("AROA")
    assert (
        iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]["Statement"][0]["Action"]
        == "sts:AssumeRole"
    )
    with pytest.raises(ClientError) as caught:
        server.client("sts").assume_role(RoleArn=created["Arn"], RoleSessionName="root-try")
    assert caught.value.response["Error"]["Message"] == "Roles may not be assumed by root accounts."
    _, _, user_sts = new_user(
        server, iam, {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}
    )
    with pytest.raises(ClientError) as caught:
        user_sts.assume_role(RoleArn=created["Arn"], RoleSessionName="long", DurationSeconds=7200)
    assert (code(caught.value), status(caught.value)) == ("ValidationError", 400)
    answer = user_sts.assume_role(RoleArn=created["Arn"], RoleSessionName="ok")
    assert answer["Credentials"]["AccessKeyId"].startswith("ASIA")
    assert len(answer["Credentials"]["SessionToken"]) >= 100
    assert answer["AssumedRoleUser"]["Arn"] == (
        f"arn:aws:sts::{server.account_id}:assumed-role/{role}/ok"
    )


def test_assumed_role_sessions(server: Server) -> None:
    iam = server.client("iam")
    role = unique("session-role")
    trust = policy(
        {"Effect": "Allow", "Principal": {"AWS": server.account_id}, "Action": "sts:AssumeRole"}
    )
    role_arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    iam.put_role_policy(
        RoleName=role,
        PolicyName="read",
        PolicyDocument=policy(
            {"Effect": "Allow", "Action": ["iam:GetRole", "kms:ListKeys"], "Resource": "*"}
        ),
    )
    _, _, user_sts = new_user(
        server, iam, {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}
    )
    credentials = user_sts.assume_role(RoleArn=role_arn, RoleSessionName="e2e")["Credentials"]
    session = {
        "key": credentials["AccessKeyId"],
        "secret": credentials["SecretAccessKey"],
        "token": credentials["SessionToken"],
    }
    me = server.client("sts", **session).get_caller_identity()
    assert me["Arn"] == f"arn:aws:sts::{server.account_id}:assumed-role/{role}/e2e"
    assert me["UserId"].endswith(":e2e")
    session_iam = server.client("iam", **session)
    assert session_iam.get_role(RoleName=role)["Role"]["Arn"] == role_arn
    with pytest.raises(ClientError) as caught:
        session_iam.list_users()
    assert code(caught.value) == "AccessDenied"
    kms = server.client("kms", **session)
    assert "Keys" in kms.list_keys()  # the KMS side reads the role's policies too
    with pytest.raises(ClientError) as caught:
        kms.create_key()
    assert code(caught.value) == "AccessDeniedException"

    without_token = dict(session, token=None)
    with pytest.raises(ClientError) as caught:
        server.client("sts", **without_token).get_caller_identity()
    assert (code(caught.value), status(caught.value)) == ("InvalidClientTokenId", 403)
    wrong_token = dict(session, token=credentials["SessionToken"][::-1])
    with pytest.raises(ClientError) as caught:
        server.client("sts", **wrong_token).get_caller_identity()
    assert code(caught.value) == "InvalidClientTokenId"


# --- the AWS CLI ---------------------------------------------------------------------------
def aws(server: Server, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {
        "AWS_ACCESS_KEY_ID": server.access_key_id,
        "AWS_SECRET_ACCESS_KEY": server.secret_access_key,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_ENDPOINT_URL_IAM": server.endpoint,
        "AWS_ENDPOINT_URL_STS": server.endpoint,
    }
    return subprocess.run(
        [str(AWS_CLI), *args, "--output", "json"],
        capture_output=True,
        text=True,
        env=env,
        check=check,
        timeout=60,
    )


@pytest.mark.skipif(not AWS_CLI.exists(), reason="the AWS CLI is not installed in this environment")
def test_aws_cli(server: Server) -> None:
    name = unique("cli")
    created = json.loads(aws(server, "iam", "create-user", "--user-name", name).stdout)
    assert created["User"]["Arn"] == f"arn:aws:iam::{server.account_id}:user/{name}"
    document = policy({"Effect": "Allow", "Action": "kms:Encrypt", "Resource": "*"})
    aws(
        server,
        "iam",
        "put-user-policy",
        "--user-name",
        name,
        "--policy-name",
        "enc",
        "--policy-document",
        document,
    )
    got = json.loads(
        aws(server, "iam", "get-user-policy", "--user-name", name, "--policy-name", "enc").stdout
    )
    assert got["PolicyDocument"] == json.loads(document)
    failed = aws(server, "iam", "get-user", "--user-name", unique("ghost"), check=False)
    assert failed.returncode != 0
    assert "(NoSuchEntity)" in failed.stderr
    identity = json.loads(aws(server, "sts", "get-caller-identity").stdout)
    assert identity["Arn"] == f"arn:aws:iam::{server.account_id}:root"


def test_policy_simulator_reports_matched_statements_and_missing_context(server: Server) -> None:
    """SimulatePrincipalPolicy, through boto3 against a real server: the statements that
    decided (policy name, type, position) and the condition keys the request did not supply."""
    iam = server.client("iam")
    user = unique("sim")
    iam.create_user(UserName=user)
    document = policy(
        {"Effect": "Allow", "Action": "kms:Encrypt", "Resource": "*"},
        {
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": "*",
            "Condition": {"StringEquals": {"kms:EncryptionContext:app": "web"}},
        },
    )
    iam.put_user_policy(UserName=user, PolicyName="inline", PolicyDocument=document)
    answer = iam.simulate_principal_policy(
        PolicySourceArn=f"arn:aws:iam::{server.account_id}:user/{user}",
        ActionNames=["kms:Encrypt", "kms:Decrypt"],
    )
    encrypt, decrypt = answer["EvaluationResults"]
    assert encrypt["EvalDecision"] == "allowed"
    matched = encrypt["MatchedStatements"]
    assert [(m["SourcePolicyId"], m["SourcePolicyType"]) for m in matched] == [("inline", "user")]
    assert matched[0]["StartPosition"]["Line"] == 1
    assert decrypt["EvalDecision"] == "implicitDeny"
    assert decrypt["MissingContextValues"] == ["kms:encryptioncontext:app"]
