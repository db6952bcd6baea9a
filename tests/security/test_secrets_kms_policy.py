"""Attacks through Secrets Manager on a KMS key's policy: a caller allowed
secretsmanager:GetSecretValue (even the account root) must not get a value whose KMS key
policy denies it kms:Decrypt, nor store one under a key that denies kms:GenerateDataKey; a key
policy that denies only direct use (kms:ViaService absent) must not stop Secrets Manager; a
secret cannot be re-keyed to a key the caller may not use; a key in another account is not
usable without its owner's consent."""

from __future__ import annotations

import uuid

from botocore.client import BaseClient

from tests.conftest import Server
from tests.secretsmanager.conftest import sm_client
from tests.security.support import code, policy, root_statement

VIA = "secretsmanager.us-east-1.amazonaws.com"


def _name() -> str:
    return f"kmsdeny/{uuid.uuid4().hex[:8]}"


def _key(kms: BaseClient, account: str, *extra: dict[str, object]) -> str:
    doc = policy(root_statement(account), *extra)
    return str(
        kms.create_key(Policy=doc, BypassPolicyLockoutSafetyCheck=True)["KeyMetadata"]["Arn"]
    )


def test_key_policy_deny_of_decrypt_wins_over_secrets_manager_permission(
    server: Server, kms: BaseClient
) -> None:
    sm = sm_client(server)
    key = _key(
        kms,
        server.account_id,
        {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "kms:Decrypt", "Resource": "*"},
    )
    name = _name()
    sm.create_secret(Name=name, SecretString="guarded", KmsKeyId=key)
    assert code(lambda: sm.get_secret_value(SecretId=name)) == "AccessDeniedException"
    assert code(lambda: sm.batch_get_secret_value(SecretIdList=[name])) == "OK"
    errors = sm.batch_get_secret_value(SecretIdList=[name])["Errors"]
    assert errors[0]["ErrorCode"] == "AccessDeniedException"
    # Idempotent retries decrypt to compare: they are refused too, never answered blindly.
    assert code(lambda: sm.update_secret(SecretId=name, KmsKeyId="alias/aws/secretsmanager")) == (
        "AccessDeniedException"
    )


def test_key_policy_deny_of_generate_data_key_stops_storing(
    server: Server, kms: BaseClient
) -> None:
    sm = sm_client(server)
    key = _key(
        kms,
        server.account_id,
        {
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": "kms:GenerateDataKey*",
            "Resource": "*",
            "Condition": {"StringEquals": {"kms:ViaService": VIA}},
        },
    )
    name = _name()
    assert code(lambda: sm.create_secret(Name=name, SecretString="x", KmsKeyId=key)) == (
        "AccessDeniedException"
    )
    # Nothing half-made is left behind.
    assert code(lambda: sm.describe_secret(SecretId=name)) == "ResourceNotFoundException"


def test_deny_of_direct_use_does_not_stop_secrets_manager(server: Server, kms: BaseClient) -> None:
    sm = sm_client(server)
    key = _key(
        kms,
        server.account_id,
        {
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
            "Resource": "*",
            "Condition": {"Null": {"kms:ViaService": "true"}},
        },
    )
    name = _name()
    sm.create_secret(Name=name, SecretString="through the service", KmsKeyId=key)
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "through the service"
    assert code(lambda: kms.generate_data_key(KeyId=key, KeySpec="AES_256")) == (
        "AccessDeniedException"
    )


def test_disabled_key_is_a_decryption_failure(server: Server, kms: BaseClient) -> None:
    sm = sm_client(server)
    key = kms.create_key()["KeyMetadata"]["Arn"]
    name = _name()
    sm.create_secret(Name=name, SecretString="x", KmsKeyId=key)
    kms.disable_key(KeyId=key)
    try:
        assert code(lambda: sm.get_secret_value(SecretId=name)) == "DecryptionFailure"
        assert code(lambda: sm.put_secret_value(SecretId=name, SecretString="y")) == (
            "EncryptionFailure"
        )
    finally:
        kms.enable_key(KeyId=key)


def test_another_accounts_key_needs_its_consent(server: Server, second_account: Server) -> None:
    other_kms = second_account.client()
    foreign = other_kms.create_key()["KeyMetadata"]["Arn"]  # default policy: its account only
    sm = sm_client(server)
    assert (
        code(lambda: sm.create_secret(Name=_name(), SecretString="x", KmsKeyId=foreign))
        == "AccessDeniedException"
    )


def test_a_key_that_does_not_exist(server: Server) -> None:
    sm = sm_client(server)
    name = _name()
    assert (
        code(lambda: sm.create_secret(Name=name, SecretString="x", KmsKeyId="alias/no-such-key"))
        == "InvalidParameterException"
    )
    assert code(lambda: sm.describe_secret(SecretId=name)) == "ResourceNotFoundException"
