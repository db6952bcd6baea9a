"""Secrets Manager encrypts through the KMS on the caller's behalf, as AWS does: the AWS
managed key alias/aws/secretsmanager (KeyManager AWS, AWS's key policy, closed to everyone's
changes), the caller's own KMS permissions deciding, kms:ViaService in the evaluation, KMS audit
records invoked by the service, and no secret value in any record or log."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from tests.conftest import Server
from tests.secretsmanager.conftest import sm_client
from tests.security.support import client, code, eventually, new_user, policy, root_statement

MARKER = "s3cr3t-" + uuid.uuid4().hex  # a value that must never be written anywhere


def _records(server: Server) -> list[dict[str, Any]]:
    path = server.data_dir / "audit.log"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _wait_for(server: Server, predicate: Any, seconds: float = 5.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + seconds
    while True:
        found = [r for r in _records(server) if predicate(r)]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_default_key_is_the_aws_managed_key(sm: BaseClient, sm_kms: BaseClient) -> None:
    sm.create_secret(Name="managed/one", SecretString="v")
    key = sm_kms.describe_key(KeyId="alias/aws/secretsmanager")["KeyMetadata"]
    assert key["KeyManager"] == "AWS"
    assert key["KeyState"] == "Enabled"
    text = sm_kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"]
    doc = json.loads(text)
    conditions = json.dumps([s.get("Condition") for s in doc["Statement"]])
    assert "secretsmanager.us-east-1.amazonaws.com" in conditions
    assert "kms:CallerAccount" in conditions
    versions = sm.list_secret_version_ids(SecretId="managed/one")["Versions"]
    assert versions[0]["KmsKeyIds"] == [key["Arn"]]
    # One key per account and Region, reused.
    sm.create_secret(Name="managed/two", SecretString="v")
    aliases = sm_kms.list_aliases()["Aliases"]
    assert [a["AliasName"] for a in aliases].count("alias/aws/secretsmanager") == 1


@pytest.mark.parametrize(
    "call",
    [
        lambda kms, key: kms.put_key_policy(
            KeyId=key, PolicyName="default", Policy=policy(root_statement("000000000000"))
        ),
        lambda kms, key: kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7),
        lambda kms, key: kms.disable_key(KeyId=key),
        lambda kms, key: kms.tag_resource(KeyId=key, Tags=[{"TagKey": "a", "TagValue": "b"}]),
        lambda kms, key: kms.create_alias(AliasName="alias/mine", TargetKeyId=key),
        # Used directly, not through Secrets Manager: no kms:ViaService.
        lambda kms, key: kms.generate_data_key(KeyId=key, KeySpec="AES_256"),
        lambda kms, key: kms.encrypt(KeyId=key, Plaintext=b"x"),
    ],
)
def test_nobody_may_change_or_use_the_managed_key_directly(
    sm: BaseClient, sm_kms: BaseClient, call: Any
) -> None:
    sm.create_secret(Name=f"managed/{uuid.uuid4().hex[:6]}", SecretString="v")
    key = sm_kms.describe_key(KeyId="alias/aws/secretsmanager")["KeyMetadata"]["Arn"]
    assert code(lambda: call(sm_kms, key)) == "AccessDeniedException"


def test_caller_without_kms_decrypt_gets_access_denied(
    sm: BaseClient, sm_kms: BaseClient, sm_server: Server
) -> None:
    # A customer managed key with the default policy: IAM policies decide.
    key = sm_kms.create_key()["KeyMetadata"]["Arn"]
    sm.create_secret(Name="kms/customer", SecretString="v", KmsKeyId=key)
    iam = client(sm_server, "iam")
    reader = new_user(
        iam,
        None,
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"},
    )
    as_reader = sm_client(sm_server, reader.creds)
    with pytest.raises(ClientError) as caught:
        as_reader.get_secret_value(SecretId="kms/customer")
    assert caught.value.response["Error"]["Code"] == "AccessDeniedException"
    assert caught.value.response["Error"]["Message"] == "Access to KMS is not allowed"
    # Allowed kms:Decrypt only through Secrets Manager: now the value is served.
    iam.put_user_policy(
        UserName=reader.name,
        PolicyName="kms",
        PolicyDocument=policy(
            {
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": key,
                "Condition": {
                    "StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}
                },
            }
        ),
    )
    eventually("OK", lambda: as_reader.get_secret_value(SecretId="kms/customer"))
    # The same permission does not work directly (no kms:ViaService there).
    blob = sm_kms.encrypt(KeyId=key, Plaintext=b"x")["CiphertextBlob"]
    direct = client(sm_server, "kms", reader.creds)
    assert code(lambda: direct.decrypt(CiphertextBlob=blob)) == "AccessDeniedException"
    # With the managed key, secretsmanager:GetSecretValue alone is enough (its key policy
    # admits every principal of the account through Secrets Manager).
    sm.create_secret(Name="kms/managed", SecretString="w")
    assert as_reader.get_secret_value(SecretId="kms/managed")["SecretString"] == "w"


def test_audit_records_and_no_value_anywhere(sm: BaseClient, sm_server: Server) -> None:
    created = sm.create_secret(Name="audit/one", SecretString=MARKER)
    sm.put_secret_value(SecretId="audit/one", SecretBinary=MARKER.encode() + b"-bin")
    sm.get_secret_value(SecretId="audit/one")
    sm.batch_get_secret_value(SecretIdList=["audit/one"])
    sm.update_secret(SecretId="audit/one", SecretString=MARKER + "-updated")
    password = sm.get_random_password()["RandomPassword"]
    gets = _wait_for(
        sm_server,
        lambda r: (
            r.get("eventName") == "GetRandomPassword"
            and r.get("eventSource") == "secretsmanager.amazonaws.com"
        ),
    )
    assert gets, "the last call's record was not written"
    gets = [r for r in _records(sm_server) if r.get("eventName") == "GetSecretValue"]
    assert gets[-1]["requestParameters"] == {"secretId": "audit/one"}
    assert gets[-1]["responseElements"] is None
    creates = [r for r in _records(sm_server) if r.get("eventName") == "CreateSecret"]
    assert creates[-1]["responseElements"]["aRN"] == created["ARN"]  # CloudTrail's spelling
    assert {"type": "AWS::SecretsManager::Secret", "ARN": created["ARN"]}.items() <= (
        gets[-1]["resources"][0].items()
    )
    kms_calls = [
        r
        for r in _records(sm_server)
        if r.get("eventSource") == "kms.amazonaws.com"
        and r["userIdentity"].get("invokedBy") == "secretsmanager.amazonaws.com"
        and r["requestParameters"]["encryptionContext"]["SecretARN"] == created["ARN"]
    ]
    names = {r["eventName"] for r in kms_calls}
    assert {"GenerateDataKey", "Decrypt"} <= names
    context = kms_calls[0]["requestParameters"]["encryptionContext"]
    assert context["SecretARN"] == created["ARN"]
    assert "SecretVersionId" in context
    assert kms_calls[0]["sourceIPAddress"] == "secretsmanager.amazonaws.com"
    # The value (string, binary, base64 of the binary) and the password appear nowhere.
    import base64

    needles = [
        MARKER,
        base64.b64encode(MARKER.encode() + b"-bin").decode(),
        password,
    ]
    for path in Path(sm_server.data_dir).rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for needle in needles:
                assert needle.encode() not in data, f"{needle!r} found in {path}"
