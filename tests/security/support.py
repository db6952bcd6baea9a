"""Helpers for the attack tests: IAM users, roles and sessions through boto3's iam and sts
clients, and the error code of a call."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.conftest import Server

# A changed policy, grant or IAM entity takes effect within the cache TTL (1 s).
SETTLE_SECONDS = 3.0

Creds = dict[str, str]


def client(server: Server, service: str, creds: Creds | None = None) -> BaseClient:
    creds = creds or root_creds(server)
    return boto3.session.Session().client(
        service,
        endpoint_url=server.endpoint,
        region_name=server.region,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds.get("SessionToken"),
        config=Config(retries={"max_attempts": 1}),
    )


def root_creds(server: Server) -> Creds:
    return {"AccessKeyId": server.access_key_id, "SecretAccessKey": server.secret_access_key}


def code(call: Callable[[], Any]) -> str:
    """The AWS error code of ``call``, or "OK"."""
    try:
        call()
    except ClientError as exc:
        return str(exc.response["Error"]["Code"])
    return "OK"


def eventually(expected: str, call: Callable[[], Any], seconds: float = SETTLE_SECONDS) -> None:
    """Polls ``call`` until it answers ``expected`` (caches settle within a second)."""
    deadline = time.monotonic() + seconds
    while True:
        got = code(call)
        if got == expected or time.monotonic() > deadline:
            assert got == expected
            return
        time.sleep(0.1)


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def root_statement(account_id: str) -> dict[str, Any]:
    """The default key policy's "Enable IAM User Permissions" statement."""
    return {
        "Sid": "Enable IAM User Permissions",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class User:
    name: str
    arn: str
    user_id: str
    creds: Creds


def new_user(iam: BaseClient, name: str | None = None, *identity: dict[str, Any]) -> User:
    """An IAM user with an access key and, if given, an inline identity policy."""
    name = name or unique("user")
    made = iam.create_user(UserName=name)["User"]
    key = iam.create_access_key(UserName=name)["AccessKey"]
    if identity:
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=policy(*identity))
    creds = {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}
    return User(name, made["Arn"], made["UserId"], creds)


def delete_user(iam: BaseClient, name: str) -> None:
    """Deletes a user with its access keys and inline policies (IAM refuses otherwise)."""
    for key in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]:
        iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
    for policy_name in iam.list_user_policies(UserName=name)["PolicyNames"]:
        iam.delete_user_policy(UserName=name, PolicyName=policy_name)
    iam.delete_user(UserName=name)


@dataclass
class Role:
    name: str
    arn: str
    role_id: str


def new_role(
    iam: BaseClient, account_id: str, name: str | None = None, *identity: dict[str, Any]
) -> Role:
    """A role that any principal of ``account_id`` with sts:AssumeRole permission may assume."""
    name = name or unique("role")
    trust = policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
            "Action": "sts:AssumeRole",
        }
    )
    made = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]
    if identity:
        iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=policy(*identity))
    return Role(name, made["Arn"], made["RoleId"])


def delete_role(iam: BaseClient, name: str) -> None:
    for policy_name in iam.list_role_policies(RoleName=name)["PolicyNames"]:
        iam.delete_role_policy(RoleName=name, PolicyName=policy_name)
    iam.delete_role(RoleName=name)


ASSUME_ANY_ROLE = {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}


def assume(server: Server, creds: Creds, role_arn: str, session_name: str = "s1") -> Creds:
    """Temporary credentials of a session of ``role_arn`` (retried while IAM changes settle)."""
    sts = client(server, "sts", creds)
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        try:
            got = sts.assume_role(RoleArn=role_arn, RoleSessionName=session_name)["Credentials"]
            break
        except ClientError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    return {
        "AccessKeyId": got["AccessKeyId"],
        "SecretAccessKey": got["SecretAccessKey"],
        "SessionToken": got["SessionToken"],
    }
