"""Attacks that go unseen: IAM and STS calls made no audit record, so whoever created an access
key, granted themselves a policy or assumed a role left no trace.

Rule (CloudTrail): every IAM call is recorded with ``eventSource`` ``iam.amazonaws.com`` and
every STS call with ``sts.amazonaws.com`` (failed ones with ``errorCode``), with request
parameters; and no record holds a secret access key or a session token (``CreateAccessKey`` and
``AssumeRole`` responses keep the access key id only).
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.conftest import Server

TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
}


def _client(server: Server, service: str, **creds: str | None) -> Any:
    return boto3.session.Session().client(
        service,
        region_name=server.region,
        endpoint_url=server.endpoint,
        aws_access_key_id=creds.get("key", server.access_key_id),
        aws_secret_access_key=creds.get("secret", server.secret_access_key),
        aws_session_token=creds.get("token"),
        config=Config(retries={"max_attempts": 1}),
    )


def _records(data_dir: Path) -> list[dict[str, Any]]:
    out = []
    for path in sorted(data_dir.glob("audit*.log*")):
        for line in path.read_bytes().splitlines():
            entry = json.loads(line)
            if "eventVersion" in entry:
                out.append(entry)
    return out


def _wait_for(data_dir: Path, request_ids: set[str], timeout: float = 5.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        records = [r for r in _records(data_dir) if r.get("requestID") in request_ids]
        if len(records) >= len(request_ids) or time.monotonic() > deadline:
            return records
        time.sleep(0.05)


def _rid(response: dict[str, Any]) -> str:
    return str(response["ResponseMetadata"]["RequestId"])


def test_access_key_creation_policy_grant_and_role_assumption_are_audited(
    server: Server,
) -> None:
    """An insider creates a user, gives it an access key and an inline policy, creates a role
    and assumes it, then calls GetCallerIdentity with the session: every step is in the audit
    log, from the right event source, and none of the secrets is."""
    iam = _client(server, "iam")
    name = f"insider-{uuid.uuid4().hex[:8]}"
    rids: dict[str, str] = {}
    rids["CreateUser"] = _rid(iam.create_user(UserName=name))
    created = iam.create_access_key(UserName=name)
    rids["CreateAccessKey"] = _rid(created)
    secret = created["AccessKey"]["SecretAccessKey"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["kms:*", "sts:AssumeRole"], "Resource": "*"}],
    }
    rids["PutUserPolicy"] = _rid(
        iam.put_user_policy(UserName=name, PolicyName="all-kms", PolicyDocument=json.dumps(policy))
    )
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))
    rids["CreateRole"] = _rid(role)
    insider = _client(server, "sts", key=created["AccessKey"]["AccessKeyId"], secret=secret)
    assumed = insider.assume_role(RoleArn=role["Role"]["Arn"], RoleSessionName="s1")
    rids["AssumeRole"] = _rid(assumed)
    creds = assumed["Credentials"]
    session = _client(
        server,
        "sts",
        key=creds["AccessKeyId"],
        secret=creds["SecretAccessKey"],
        token=creds["SessionToken"],
    )
    rids["GetCallerIdentity"] = _rid(session.get_caller_identity())

    records = {r["requestID"]: r for r in _wait_for(server.data_dir, set(rids.values()))}
    for action, rid in rids.items():
        assert rid in records, f"{action} was not audited"
        record = records[rid]
        assert record["eventName"] == action
        service = "sts" if action in ("AssumeRole", "GetCallerIdentity") else "iam"
        assert record["eventSource"] == f"{service}.amazonaws.com"
        assert "errorCode" not in record

    assert records[rids["CreateUser"]]["requestParameters"] == {"userName": name}
    put = records[rids["PutUserPolicy"]]["requestParameters"]
    assert put["policyName"] == "all-kms" and json.loads(put["policyDocument"]) == policy
    key_record = records[rids["CreateAccessKey"]]["responseElements"]["accessKey"]
    assert key_record["accessKeyId"] == created["AccessKey"]["AccessKeyId"]
    assert "secretAccessKey" not in key_record
    assumed_record = records[rids["AssumeRole"]]
    assert assumed_record["responseElements"]["credentials"] == {
        "accessKeyId": creds["AccessKeyId"],
        "expiration": assumed_record["responseElements"]["credentials"]["expiration"],
    }
    caller = records[rids["GetCallerIdentity"]]
    assert caller["readOnly"] is True
    assert caller["userIdentity"]["type"] == "AssumedRole"
    assert caller["userIdentity"]["accessKeyId"] == creds["AccessKeyId"]

    everything = b"".join(p.read_bytes() for p in server.data_dir.glob("audit*.log*"))
    for secret_value in (secret, creds["SecretAccessKey"], creds["SessionToken"]):
        assert secret_value.encode() not in everything


def test_failed_iam_and_sts_calls_are_audited(server: Server) -> None:
    """A denied or failed IAM call is recorded with its errorCode; so is an STS call with an
    unknown access key (as an unauthenticated failure)."""
    iam = _client(server, "iam")
    with pytest.raises(ClientError) as caught:
        iam.get_user(UserName=f"nobody-{uuid.uuid4().hex[:8]}")
    rid = caught.value.response["ResponseMetadata"]["RequestId"]
    stranger = _client(server, "sts", key="AKIA" + "Q" * 16, secret="x" * 40)
    with pytest.raises(ClientError) as caught_sts:
        stranger.get_caller_identity()
    sts_rid = caught_sts.value.response["ResponseMetadata"]["RequestId"]
    records = {r["requestID"]: r for r in _wait_for(server.data_dir, {rid, sts_rid})}
    assert records[rid]["errorCode"] == "NoSuchEntity"
    assert records[rid]["eventSource"] == "iam.amazonaws.com"
    failed = records[sts_rid]
    assert failed["eventSource"] == "sts.amazonaws.com"
    assert failed["eventName"] == "GetCallerIdentity"
    assert failed["errorCode"] == "InvalidClientTokenId"
    assert failed["userIdentity"]["accessKeyId"] == "AKIA" + "Q" * 16
