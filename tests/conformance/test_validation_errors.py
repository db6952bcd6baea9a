"""Validation through boto3 with client-side validation off, so the server's own checks answer
with AWS's wording."""

from __future__ import annotations

import pytest

from tests.conformance import expect_error

ONE = "1 validation error detected: "


@pytest.fixture
def key_id(kms) -> str:
    return str(kms.create_key()["KeyMetadata"]["KeyId"])


def test_pending_window_below_seven(kms_unvalidated, key_id: str) -> None:
    expect_error(
        "ValidationException",
        kms_unvalidated.schedule_key_deletion,
        KeyId=key_id,
        PendingWindowInDays=3,
        message=ONE + "Value '3' at 'pendingWindowInDays' failed to satisfy constraint: "
        "Member must have value greater than or equal to 7",
    )


def test_pending_window_above_thirty(kms_unvalidated, key_id: str) -> None:
    expect_error(
        "ValidationException",
        kms_unvalidated.schedule_key_deletion,
        KeyId=key_id,
        PendingWindowInDays=31,
        message=ONE + "Value '31' at 'pendingWindowInDays' failed to satisfy constraint: "
        "Member must have value less than or equal to 30",
    )


def test_rejected_pending_window_leaves_the_key_enabled(kms, kms_unvalidated, key_id) -> None:
    for days in (3, 31):
        expect_error(
            "ValidationException",
            kms_unvalidated.schedule_key_deletion,
            KeyId=key_id,
            PendingWindowInDays=days,
        )
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"


def test_plaintext_over_4096_bytes(kms_unvalidated, key_id: str) -> None:
    expect_error(
        "ValidationException",
        kms_unvalidated.encrypt,
        KeyId=key_id,
        Plaintext=b"x" * 4097,
        message=ONE + "Value at 'plaintext' failed to satisfy constraint: "
        "Member must have length less than or equal to 4096",
    )


def test_plaintext_of_4096_bytes_is_accepted(kms, key_id: str) -> None:
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"y" * 4096)["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"y" * 4096


def test_empty_plaintext(kms_unvalidated, key_id: str) -> None:
    expect_error(
        "ValidationException",
        kms_unvalidated.encrypt,
        KeyId=key_id,
        Plaintext=b"",
        message=ONE + "Value at 'plaintext' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1",
    )


def test_validation_never_echoes_the_plaintext(kms_unvalidated, key_id: str) -> None:
    secret = b"do-not-echo-me-" * 300
    err = expect_error(
        "ValidationException", kms_unvalidated.encrypt, KeyId=key_id, Plaintext=secret
    )
    assert b"do-not-echo-me" not in str(err.response["Error"]).encode()


# AWS words both cases alike (as moto and LocalStack reproduce it).
EITHER_MESSAGE = "Please specify either number of bytes or key spec."


def test_generate_data_key_with_key_spec_and_number_of_bytes(kms_unvalidated, key_id) -> None:
    expect_error(
        "ValidationException",
        kms_unvalidated.generate_data_key,
        KeyId=key_id,
        KeySpec="AES_256",
        NumberOfBytes=32,
        message=EITHER_MESSAGE,
    )


def test_generate_data_key_with_neither(kms_unvalidated, key_id: str) -> None:
    expect_error(
        "ValidationException",
        kms_unvalidated.generate_data_key,
        KeyId=key_id,
        message=EITHER_MESSAGE,
    )


def test_generate_random_without_number_of_bytes(kms_unvalidated) -> None:
    expect_error("ValidationException", kms_unvalidated.generate_random)


def test_generate_data_key_without_plaintext_with_neither(kms_unvalidated, key_id) -> None:
    expect_error(
        "ValidationException", kms_unvalidated.generate_data_key_without_plaintext, KeyId=key_id
    )


@pytest.mark.parametrize(
    ("count", "constraint"),
    [
        (0, "Member must have value greater than or equal to 1"),
        (1025, "Member must have value less than or equal to 1024"),
    ],
)
def test_generate_data_key_number_of_bytes_bounds(
    kms_unvalidated, key_id: str, count: int, constraint: str
) -> None:
    expect_error(
        "ValidationException",
        kms_unvalidated.generate_data_key,
        KeyId=key_id,
        NumberOfBytes=count,
        message=ONE
        + f"Value '{count}' at 'numberOfBytes' failed to satisfy constraint: "
        + constraint,
    )


@pytest.mark.parametrize(
    ("count", "constraint"),
    [
        (0, "Member must have value greater than or equal to 1"),
        (1025, "Member must have value less than or equal to 1024"),
    ],
)
def test_generate_random_bounds(kms_unvalidated, count: int, constraint: str) -> None:
    expect_error(
        "ValidationException",
        kms_unvalidated.generate_random,
        NumberOfBytes=count,
        message=ONE
        + f"Value '{count}' at 'numberOfBytes' failed to satisfy constraint: "
        + constraint,
    )


@pytest.mark.parametrize(
    "operation",
    [
        "describe_key",
        "enable_key",
        "disable_key",
        "schedule_key_deletion",
        "cancel_key_deletion",
        "get_key_policy",
        "list_resource_tags",
        "get_key_last_usage",
    ],
)
def test_missing_key_id(kms_unvalidated, operation: str) -> None:
    expect_error(
        "ValidationException",
        getattr(kms_unvalidated, operation),
        message=ONE + "Value null at 'keyId' failed to satisfy constraint: Member must not be null",
    )


def test_encrypt_missing_key_id_and_plaintext(kms_unvalidated) -> None:
    err = expect_error("ValidationException", kms_unvalidated.encrypt)
    message = err.response["Error"]["Message"]
    assert message.startswith("2 validation errors detected: "), message
    assert "Value null at 'keyId' failed to satisfy constraint: Member must not be null" in message
    assert "Value null at 'plaintext' failed to satisfy constraint: Member must not be null" in (
        message
    )


def test_decrypt_missing_ciphertext(kms_unvalidated) -> None:
    expect_error(
        "ValidationException",
        kms_unvalidated.decrypt,
        message=ONE + "Value null at 'ciphertextBlob' failed to satisfy constraint: "
        "Member must not be null",
    )


def test_bad_enum_key_spec(kms_unvalidated, key_id: str) -> None:
    expect_error(
        "ValidationException",
        kms_unvalidated.generate_data_key,
        KeyId=key_id,
        KeySpec="AES_512",
        message=ONE + "Value 'AES_512' at 'keySpec' failed to satisfy constraint: "
        "Member must satisfy enum value set: [AES_256, AES_128]",
    )


def test_bad_enum_key_usage(kms_unvalidated) -> None:
    err = expect_error("ValidationException", kms_unvalidated.create_key, KeyUsage="BOGUS")
    assert err.response["Error"]["Message"].startswith(
        ONE + "Value 'BOGUS' at 'keyUsage' failed to satisfy constraint: "
        "Member must satisfy enum value set: ["
    )


def test_bad_enum_encryption_algorithm(kms_unvalidated, key_id: str) -> None:
    err = expect_error(
        "ValidationException",
        kms_unvalidated.encrypt,
        KeyId=key_id,
        Plaintext=b"x",
        EncryptionAlgorithm="BOGUS",
    )
    assert "Value 'BOGUS' at 'encryptionAlgorithm'" in err.response["Error"]["Message"]


@pytest.mark.parametrize("name", ["alias/bad name!", "alias/semi;colon", "alias/ünïcode"])
def test_alias_name_with_bad_characters(kms_unvalidated, key_id: str, name: str) -> None:
    expect_error(
        "ValidationException",
        kms_unvalidated.create_alias,
        AliasName=name,
        TargetKeyId=key_id,
        message=ONE + f"Value '{name}' at 'aliasName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$",
    )


def test_alias_name_too_long(kms_unvalidated, key_id: str) -> None:
    name = "alias/" + "a" * 251
    err = expect_error(
        "ValidationException", kms_unvalidated.create_alias, AliasName=name, TargetKeyId=key_id
    )
    assert "Member must have length less than or equal to 256" in err.response["Error"]["Message"]


def test_list_keys_limit_bounds(kms_unvalidated) -> None:
    expect_error(
        "ValidationException",
        kms_unvalidated.list_keys,
        Limit=0,
        message=ONE + "Value '0' at 'limit' failed to satisfy constraint: "
        "Member must have value greater than or equal to 1",
    )
    expect_error(
        "ValidationException",
        kms_unvalidated.list_keys,
        Limit=1001,
        message=ONE + "Value '1001' at 'limit' failed to satisfy constraint: "
        "Member must have value less than or equal to 1000",
    )


def test_description_too_long(kms_unvalidated) -> None:
    err = expect_error("ValidationException", kms_unvalidated.create_key, Description="d" * 8193)
    assert "at 'description'" in err.response["Error"]["Message"]


def test_wrong_json_type_through_boto3_is_serialization(kms_unvalidated) -> None:
    expect_error("SerializationException", kms_unvalidated.list_keys, Limit="three")
