"""GetSecretValue's cache never stands in for authorization: once a value has been read (and
is held in memory), disabling its KMS key, a key policy that denies the caller, an identity
policy taken away or a resource policy that denies each stop the next reads (within the
one-second bound every cached authorization input has), and every read still leaves its KMS
Decrypt record (invoked by Secrets Manager) beside its own, as AWS's CloudTrail shows."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from botocore.client import BaseClient

from tests.conftest import Server
from tests.secretsmanager.conftest import sm_client
from tests.security.support import client, eventually, new_user, policy, root_statement, unique

DENIED = "AccessDeniedException"


def reader_policy() -> list[dict[str, Any]]:
    return [{"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue", "kms:Decrypt"],
             "Resource": "*"}]  # fmt: skip


def test_key_state_and_key_policy_are_checked_on_every_read(
    sm: BaseClient, sm_kms: BaseClient, sm_server: Server
) -> None:
    key = sm_kms.create_key(Policy=policy(root_statement(sm_server.account_id)))["KeyMetadata"]
    arn = sm.create_secret(Name=unique("cache/key"), SecretString="v", KmsKeyId=key["Arn"])["ARN"]
    for _ in range(3):
        assert sm.get_secret_value(SecretId=arn)["SecretString"] == "v"
    sm_kms.disable_key(KeyId=key["KeyId"])
    eventually("DecryptionFailure", lambda: sm.get_secret_value(SecretId=arn))
    sm_kms.enable_key(KeyId=key["KeyId"])
    eventually("OK", lambda: sm.get_secret_value(SecretId=arn))

    iam = client(sm_server, "iam")
    user = new_user(iam, None, *reader_policy())
    theirs = sm_client(sm_server, user.creds)
    eventually("OK", lambda: theirs.get_secret_value(SecretId=arn))
    for _ in range(3):
        theirs.get_secret_value(SecretId=arn)
    deny = {"Effect": "Deny", "Principal": {"AWS": user.arn}, "Action": "kms:Decrypt",
            "Resource": "*"}  # fmt: skip
    sm_kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default",
                          Policy=policy(root_statement(sm_server.account_id), deny))  # fmt: skip
    eventually(DENIED, lambda: theirs.get_secret_value(SecretId=arn))
    assert sm.get_secret_value(SecretId=arn)["SecretString"] == "v"


def test_identity_and_resource_policies_are_checked_on_every_read(
    sm: BaseClient, sm_server: Server
) -> None:
    iam = client(sm_server, "iam")
    user = new_user(iam, None, *reader_policy())
    theirs = sm_client(sm_server, user.creds)
    arn = sm.create_secret(Name=unique("cache/policies"), SecretString="v")["ARN"]
    eventually("OK", lambda: theirs.get_secret_value(SecretId=arn))
    for _ in range(3):
        theirs.get_secret_value(SecretId=arn)
    deny = {"Effect": "Deny", "Principal": {"AWS": user.arn},
            "Action": "secretsmanager:GetSecretValue", "Resource": "*"}  # fmt: skip
    sm.put_resource_policy(SecretId=arn, ResourcePolicy=policy(deny))
    eventually(DENIED, lambda: theirs.get_secret_value(SecretId=arn))
    sm.delete_resource_policy(SecretId=arn)
    eventually("OK", lambda: theirs.get_secret_value(SecretId=arn))
    iam.delete_user_policy(UserName=user.name, PolicyName="p")
    eventually(DENIED, lambda: theirs.get_secret_value(SecretId=arn))


def records(log: Path) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def test_every_read_leaves_its_kms_decrypt_record(sm: BaseClient, sm_server: Server) -> None:
    arn = sm.create_secret(Name=unique("cache/audit"), SecretString="v")["ARN"]
    reads = 5
    for _ in range(reads):
        sm.get_secret_value(SecretId=arn)
    log = sm_server.data_dir / "audit.log"

    def counts() -> tuple[int, int]:
        found = records(log)
        gets = [r for r in found if r.get("eventName") == "GetSecretValue"
                and arn in json.dumps(r.get("requestParameters"))]  # fmt: skip
        decrypts = [
            r for r in found
            if r.get("eventName") == "Decrypt"
            and r.get("userIdentity", {}).get("invokedBy") == "secretsmanager.amazonaws.com"
            and (r.get("requestParameters") or {}).get("encryptionContext", {}).get("SecretARN")
            == arn
        ]  # fmt: skip
        return len(gets), len(decrypts)

    deadline = time.monotonic() + 5
    while counts() != (reads, reads) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert counts() == (reads, reads)
    assert "v" not in {json.dumps(r.get("responseElements")) for r in records(log)}
