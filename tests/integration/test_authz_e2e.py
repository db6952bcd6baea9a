"""Authorization end to end: IAM users, a group and a role (AssumeRole), key policies, identity
policies, grants and grant tokens, through boto3's kms, iam and sts clients against a real
server."""

from __future__ import annotations

import json
import time
import uuid

import boto3
import pytest
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.conftest import Server
from tests.security.support import code as _code
from tests.security.support import eventually as _eventually
from tests.security.support import policy as _policy

# A changed policy takes effect within the cache TTL (1 s); poll a little longer than that.
SETTLE_SECONDS = 3.0


def _client(server: Server, service: str, creds: dict[str, str]) -> BaseClient:
    return boto3.session.Session().client(
        service,
        endpoint_url=server.endpoint,
        region_name=server.region,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds.get("SessionToken"),
        config=Config(retries={"max_attempts": 1}),
    )


def _root(server: Server) -> dict[str, str]:
    return {"AccessKeyId": server.access_key_id, "SecretAccessKey": server.secret_access_key}


@pytest.fixture(scope="module")
def iam(server: Server) -> BaseClient:
    return _client(server, "iam", _root(server))


def _user(iam: BaseClient, server: Server, prefix: str) -> tuple[str, dict[str, str]]:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    arn = iam.create_user(UserName=name)["User"]["Arn"]
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return arn, {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}


def test_iam_user_needs_an_identity_policy(
    server: Server, kms: BaseClient, iam: BaseClient
) -> None:
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    arn, creds = _user(iam, server, "alice")
    alice = _client(server, "kms", creds)
    with pytest.raises(ClientError) as denied:
        alice.encrypt(KeyId=key_id, Plaintext=b"x")
    err = denied.value.response["Error"]
    assert err["Code"] == "AccessDeniedException"
    assert err["Message"].startswith(f"User: {arn} is not authorized to perform: kms:Encrypt")
    name = arn.rsplit("/", 1)[1]
    iam.put_user_policy(
        UserName=name,
        PolicyName="enc",
        PolicyDocument=_policy({"Effect": "Allow", "Action": "kms:Encrypt", "Resource": "*"}),
    )
    _eventually("OK", lambda: alice.encrypt(KeyId=key_id, Plaintext=b"x"))
    assert _code(lambda: alice.describe_key(KeyId=key_id)) == "AccessDeniedException"
    # An explicit deny wins over the allow.
    iam.put_user_policy(
        UserName=name,
        PolicyName="deny",
        PolicyDocument=_policy({"Effect": "Deny", "Action": "kms:*", "Resource": "*"}),
    )
    _eventually("AccessDeniedException", lambda: alice.encrypt(KeyId=key_id, Plaintext=b"x"))
    with pytest.raises(ClientError) as explicit:
        alice.encrypt(KeyId=key_id, Plaintext=b"x")
    assert "explicit deny" in explicit.value.response["Error"]["Message"]


def test_group_policy_and_condition_keys(server: Server, kms: BaseClient, iam: BaseClient) -> None:
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    arn, creds = _user(iam, server, "bob")
    group = f"crypto-{uuid.uuid4().hex[:8]}"
    iam.create_group(GroupName=group)
    iam.add_user_to_group(GroupName=group, UserName=arn.rsplit("/", 1)[1])
    iam.put_group_policy(
        GroupName=group,
        PolicyName="blue-only",
        PolicyDocument=_policy(
            {
                "Effect": "Allow",
                "Action": ["kms:Encrypt", "kms:Decrypt"],
                "Resource": "*",
                "Condition": {"StringEquals": {"kms:EncryptionContext:team": "blue"}},
            }
        ),
    )
    bob = _client(server, "kms", creds)
    _eventually(
        "OK", lambda: bob.encrypt(KeyId=key_id, Plaintext=b"x", EncryptionContext={"team": "blue"})
    )
    assert (
        _code(lambda: bob.encrypt(KeyId=key_id, Plaintext=b"x", EncryptionContext={"team": "red"}))
        == "AccessDeniedException"
    )
    assert _code(lambda: bob.encrypt(KeyId=key_id, Plaintext=b"x")) == "AccessDeniedException"


def test_key_policy_naming_a_user_needs_no_identity_policy(
    server: Server, kms: BaseClient, iam: BaseClient
) -> None:
    arn, creds = _user(iam, server, "carol")
    root_arn = f"arn:aws:iam::{server.account_id}:root"
    policy = _policy(
        {
            "Sid": "admin",
            "Effect": "Allow",
            "Principal": {"AWS": root_arn},
            "Action": "kms:*",
            "Resource": "*",
        },
        {
            "Sid": "carol",
            "Effect": "Allow",
            "Principal": {"AWS": arn},
            "Action": "kms:Encrypt",
            "Resource": "*",
        },
    )
    key_id = kms.create_key(Policy=policy)["KeyMetadata"]["KeyId"]
    carol = _client(server, "kms", creds)
    _eventually("OK", lambda: carol.encrypt(KeyId=key_id, Plaintext=b"x"))
    assert _code(lambda: carol.decrypt(CiphertextBlob=b"\x01" * 80, KeyId=key_id)) in (
        "AccessDeniedException",
        "InvalidCiphertextException",
    )
    assert json.loads(
        kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]
    ) == json.loads(policy)


def test_policy_lockout_safety_check(server: Server, kms: BaseClient, iam: BaseClient) -> None:
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    # The principals of a key policy must exist; this one lets nobody but itself in.
    nobody = iam.create_user(UserName=f"nobody-{uuid.uuid4().hex[:8]}")["User"]["Arn"]
    lockout = _policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": nobody},
            "Action": "kms:*",
            "Resource": "*",
        }
    )
    assert (
        _code(lambda: kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=lockout))
        == "MalformedPolicyDocumentException"
    )
    assert _code(lambda: kms.create_key(Policy=lockout)) == "MalformedPolicyDocumentException"
    assert _code(lambda: kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy="{")) == (
        "MalformedPolicyDocumentException"
    )
    kms.put_key_policy(
        KeyId=key_id, PolicyName="default", Policy=lockout, BypassPolicyLockoutSafetyCheck=True
    )
    # Now even the account root cannot use or manage the key: the key policy is the root of access.
    _eventually("AccessDeniedException", lambda: kms.describe_key(KeyId=key_id))
    assert (
        _code(lambda: kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=lockout))
        == "AccessDeniedException"
    )


def test_assumed_role_session(server: Server, kms: BaseClient, iam: BaseClient) -> None:
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"secret")["CiphertextBlob"]
    user_arn, creds = _user(iam, server, "dave")
    role = f"decryptor-{uuid.uuid4().hex[:8]}"
    trust = _policy({"Effect": "Allow", "Principal": {"AWS": user_arn}, "Action": "sts:AssumeRole"})
    role_arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    iam.put_role_policy(
        RoleName=role,
        PolicyName="decrypt",
        PolicyDocument=_policy({"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"}),
    )
    iam.put_user_policy(
        UserName=user_arn.rsplit("/", 1)[1],
        PolicyName="assume",
        PolicyDocument=_policy(
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role_arn}
        ),
    )
    sts = _client(server, "sts", creds)
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        try:
            assumed = sts.assume_role(RoleArn=role_arn, RoleSessionName="s1")["Credentials"]
            break
        except ClientError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    session_creds = {
        "AccessKeyId": assumed["AccessKeyId"],
        "SecretAccessKey": assumed["SecretAccessKey"],
        "SessionToken": assumed["SessionToken"],
    }
    who = _client(server, "sts", session_creds).get_caller_identity()
    assert who["Arn"] == f"arn:aws:sts::{server.account_id}:assumed-role/{role}/s1"
    session_kms = _client(server, "kms", session_creds)
    assert session_kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"secret"
    assert (
        _code(lambda: session_kms.encrypt(KeyId=key_id, Plaintext=b"x")) == "AccessDeniedException"
    )
    # The session token is part of the credentials: without it the key id is not recognized.
    no_token = dict(session_creds)
    no_token.pop("SessionToken")
    assert _code(lambda: _client(server, "kms", no_token).list_keys()) in (
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "IncompleteSignatureException",
    )


def test_grants_tokens_retire_and_revoke(server: Server, kms: BaseClient, iam: BaseClient) -> None:
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    grantee_arn, grantee_creds = _user(iam, server, "erin")
    retirer_arn, retirer_creds = _user(iam, server, "frank")
    erin = _client(server, "kms", grantee_creds)
    assert _code(lambda: erin.encrypt(KeyId=key_id, Plaintext=b"x")) == "AccessDeniedException"
    grant = kms.create_grant(
        KeyId=key_id,
        GranteePrincipal=grantee_arn,
        RetiringPrincipal=retirer_arn,
        Operations=["Encrypt", "Decrypt"],
        Constraints={"EncryptionContextSubset": {"app": "billing"}},
    )
    token = grant["GrantToken"]
    # The token makes the grant effective at once.
    blob = erin.encrypt(
        KeyId=key_id, Plaintext=b"x", EncryptionContext={"app": "billing"}, GrantTokens=[token]
    )["CiphertextBlob"]
    assert (
        _code(
            lambda: erin.encrypt(
                KeyId=key_id,
                Plaintext=b"x",
                EncryptionContext={"app": "other"},
                GrantTokens=[token],
            )
        )
        == "AccessDeniedException"
    )
    _eventually(
        "OK",
        lambda: erin.decrypt(CiphertextBlob=blob, EncryptionContext={"app": "billing"}),
    )
    assert _code(lambda: erin.describe_key(KeyId=key_id)) == "AccessDeniedException"
    bad = _code(lambda: erin.encrypt(KeyId=key_id, Plaintext=b"x", GrantTokens=["not-a-token"]))
    assert bad == "InvalidGrantTokenException"
    listed = kms.list_grants(KeyId=key_id)["Grants"]
    assert [g["GrantId"] for g in listed] == [grant["GrantId"]]
    frank = _client(server, "kms", retirer_creds)
    # Listing needs an identity permission (the root has it); retiring needs none.
    assert _code(lambda: frank.list_retirable_grants(RetiringPrincipal=retirer_arn)) == (
        "AccessDeniedException"
    )
    retirable = kms.list_retirable_grants(RetiringPrincipal=retirer_arn)
    assert grant["GrantId"] in [g["GrantId"] for g in retirable["Grants"]]
    frank.retire_grant(GrantToken=token)
    _eventually(
        "AccessDeniedException",
        lambda: erin.encrypt(KeyId=key_id, Plaintext=b"x", EncryptionContext={"app": "billing"}),
    )
    second = kms.create_grant(KeyId=key_id, GranteePrincipal=grantee_arn, Operations=["Encrypt"])
    _eventually("OK", lambda: erin.encrypt(KeyId=key_id, Plaintext=b"x"))
    kms.revoke_grant(KeyId=key_id, GrantId=second["GrantId"])
    _eventually("AccessDeniedException", lambda: erin.encrypt(KeyId=key_id, Plaintext=b"x"))


def test_cross_account_needs_the_key_policy(
    server: Server, kms: BaseClient, second_account: Server
) -> None:
    other = second_account.client()
    key_arn = kms.create_key()["KeyMetadata"]["Arn"]
    assert _code(lambda: other.encrypt(KeyId=key_arn, Plaintext=b"x")) == "AccessDeniedException"
    root_arn = f"arn:aws:iam::{server.account_id}:root"
    policy = _policy(
        {"Effect": "Allow", "Principal": {"AWS": root_arn}, "Action": "kms:*", "Resource": "*"},
        {
            "Effect": "Allow",
            "Principal": {"AWS": second_account.account_id},
            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"],
            "Resource": "*",
        },
    )
    kms.put_key_policy(KeyId=key_arn, PolicyName="default", Policy=policy)
    _eventually("OK", lambda: other.encrypt(KeyId=key_arn, Plaintext=b"x"))
    blob = other.encrypt(KeyId=key_arn, Plaintext=b"shared")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"shared"
    assert other.decrypt(CiphertextBlob=blob)["Plaintext"] == b"shared"
    # DisableKey has no cross-account use: refused whatever the key policy says.
    assert _code(lambda: other.disable_key(KeyId=key_arn)) == "NotFoundException"
