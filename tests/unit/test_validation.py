"""Request validation against the vendored KMS model, with AWS's (Coral's) error wording."""

from __future__ import annotations

import base64
import math
import re
import warnings
from typing import Any

import pytest

from openkms.errors import SerializationException, UnknownOperationException, ValidationException
from openkms.protocol import model, validation
from openkms.protocol.validation import compile_java_pattern, validate_input

ONE = "1 validation error detected: "
NOT_NULL = "failed to satisfy constraint: Member must not be null"
PRINCIPAL = "arn:aws:iam::111122223333:role/app"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def lower_first(name: str) -> str:
    return name[:1].lower() + name[1:]


def enum_text(shape: str) -> str:
    return ", ".join(model.shapes()[shape]["enum"])


def validation_message(op: str, body: object) -> str:
    with pytest.raises(ValidationException) as caught:
        validate_input(op, body)
    return caught.value.message


def serialization_message(op: str, body: object) -> str:
    with pytest.raises(SerializationException) as caught:
        validate_input(op, body)
    return caught.value.message


# --- Accepted requests and what they become ------------------------------------------------------
def test_encrypt_blob_is_decoded_and_everything_else_kept() -> None:
    body = {
        "KeyId": "alias/app",
        "Plaintext": b64(b"\x00secret\xff"),
        "EncryptionContext": {"tenant": "acme", "purpose": ""},
        "GrantTokens": ["token-1"],
        "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
        "DryRun": False,
    }
    result = validate_input("Encrypt", body)
    assert result == {**body, "Plaintext": b"\x00secret\xff"}
    assert result is not body
    assert body["Plaintext"] == b64(b"\x00secret\xff"), "the input must not be modified"


@pytest.mark.parametrize(
    ("valid_to", "expected"),
    [(1_700_000_000, 1_700_000_000.0), (1_700_000_000.25, 1_700_000_000.25), (0, 0.0)],
)
def test_timestamp_becomes_float_epoch_seconds(valid_to: float, expected: float) -> None:
    body = {"KeyId": "k", "ImportToken": b64(b"t"), "EncryptedKeyMaterial": b64(b"m")}
    result = validate_input("ImportKeyMaterial", {**body, "ValidTo": valid_to})
    assert type(result["ValidTo"]) is float
    assert result["ValidTo"] == expected
    assert result["ImportToken"] == b"t"
    assert result["EncryptedKeyMaterial"] == b"m"


def test_integral_float_is_an_integer() -> None:
    result = validate_input("ScheduleKeyDeletion", {"KeyId": "k", "PendingWindowInDays": 7.0})
    assert result["PendingWindowInDays"] == 7
    assert type(result["PendingWindowInDays"]) is int


def test_unknown_members_are_ignored_and_null_means_absent() -> None:
    body = {
        "KeyId": "k",
        "Plaintext": b64(b"x"),
        "Unknown": {"deeply": ["anything", 1, None]},
        "EncryptionContext": None,
        "GrantTokens": None,
    }
    assert validate_input("Encrypt", body) == {"KeyId": "k", "Plaintext": b"x"}


def test_null_list_elements_are_dropped() -> None:
    result = validate_input("DescribeKey", {"KeyId": "k", "GrantTokens": [None, "t", None]})
    assert result["GrantTokens"] == ["t"]


def test_nested_structures_are_rebuilt() -> None:
    body = {
        "KeyId": "k",
        "Operations": ["Encrypt", "Decrypt"],
        "GranteePrincipal": PRINCIPAL,
        "Constraints": {"EncryptionContextSubset": {"a": "b"}, "Other": 1},
        "Name": "grant:name/_-1",
    }
    result = validate_input("CreateGrant", body)
    assert result["Constraints"] == {"EncryptionContextSubset": {"a": "b"}}
    assert result["Operations"] == ["Encrypt", "Decrypt"]


def test_empty_blob_decodes_to_empty_bytes_before_length_check() -> None:
    message = validation_message("Decrypt", {"CiphertextBlob": ""})
    assert message == (
        ONE + "Value at 'ciphertextBlob' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1"
    )


# --- One constraint at a time --------------------------------------------------------------------
CONSTRAINT_CASES: list[tuple[str, str, dict[str, Any], str]] = [
    (
        "required",
        "Encrypt",
        {"Plaintext": b64(b"x")},
        f"Value null at 'keyId' {NOT_NULL}",
    ),
    (
        "required given as JSON null",
        "Encrypt",
        {"KeyId": None, "Plaintext": b64(b"x")},
        f"Value null at 'keyId' {NOT_NULL}",
    ),
    (
        "string too long",
        "DescribeKey",
        {"KeyId": "k" * 2049},
        f"Value '{'k' * 2049}' at 'keyId' failed to satisfy constraint: "
        "Member must have length less than or equal to 2048",
    ),
    (
        "string too short",
        "DescribeKey",
        {"KeyId": ""},
        "Value '' at 'keyId' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1",
    ),
    (
        "string minimum 0 is never violated, maximum is",
        "UpdateKeyDescription",
        {"KeyId": "k", "Description": "d" * 8193},
        f"Value '{'d' * 8193}' at 'description' failed to satisfy constraint: "
        "Member must have length less than or equal to 8192",
    ),
    (
        "integer below minimum",
        "ScheduleKeyDeletion",
        {"KeyId": "k", "PendingWindowInDays": 0},
        "Value '0' at 'pendingWindowInDays' failed to satisfy constraint: "
        "Member must have value greater than or equal to 1",
    ),
    (
        "integer above maximum",
        "GenerateRandom",
        {"NumberOfBytes": 1025},
        "Value '1025' at 'numberOfBytes' failed to satisfy constraint: "
        "Member must have value less than or equal to 1024",
    ),
    (
        "negative integer",
        "ListKeys",
        {"Limit": -5},
        "Value '-5' at 'limit' failed to satisfy constraint: "
        "Member must have value greater than or equal to 1",
    ),
    (
        "enum",
        "GenerateDataKey",
        {"KeyId": "k", "KeySpec": "AES_512"},
        "Value 'AES_512' at 'keySpec' failed to satisfy constraint: "
        "Member must satisfy enum value set: [AES_256, AES_128]",
    ),
    (
        "enum is case-sensitive",
        "Sign",
        {"KeyId": "k", "Message": b64(b"m"), "SigningAlgorithm": "ecdsa_sha_256"},
        "Value 'ecdsa_sha_256' at 'signingAlgorithm' failed to satisfy constraint: "
        f"Member must satisfy enum value set: [{enum_text('SigningAlgorithmSpec')}]",
    ),
    (
        "pattern",
        "CreateAlias",
        {"AliasName": "alias/my-alias!", "TargetKeyId": "k"},
        "Value 'alias/my-alias!' at 'aliasName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$",
    ),
    (
        "blob too long, value never shown",
        "Encrypt",
        {"KeyId": "k", "Plaintext": b64(b"p" * 4097)},
        "Value at 'plaintext' failed to satisfy constraint: "
        "Member must have length less than or equal to 4096",
    ),
    (
        "non-sensitive blob is not shown either",
        "Decrypt",
        {"CiphertextBlob": b64(b"c" * 6145)},
        "Value at 'ciphertextBlob' failed to satisfy constraint: "
        "Member must have length less than or equal to 6144",
    ),
    (
        "list too long",
        "DescribeKey",
        {"KeyId": "k", "GrantTokens": [f"t{i}" for i in range(11)]},
        "Value '[t0, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10]' at 'grantTokens' failed to "
        "satisfy constraint: Member must have length less than or equal to 10",
    ),
    (
        "list too short",
        "ListKeys",
        {"ResourceOwners": []},
        "Value '[]' at 'resourceOwners' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1",
    ),
    (
        "list of scalars is reported once, with every constraint of the element",
        "DescribeKey",
        {"KeyId": "k", "GrantTokens": ["ok", "", "x" * 8193]},
        f"Value '[ok, , {'x' * 8193}]' at 'grantTokens' failed to satisfy constraint: "
        "Member must satisfy constraint: [Member must have length less than or equal to 8192, "
        "Member must have length greater than or equal to 1]",
    ),
    (
        "list of enums (GrantOperations)",
        "CreateGrant",
        {"KeyId": "k", "GranteePrincipal": PRINCIPAL, "Operations": ["Encrypt", "kms:Decrypt"]},
        "Value '[Encrypt, kms:Decrypt]' at 'operations' failed to satisfy constraint: "
        "Member must satisfy constraint: [Member must satisfy enum value set: "
        f"[{enum_text('GrantOperation')}]]",
    ),
    (
        "list of structures: 1-based index and .member",
        "TagResource",
        {
            "KeyId": "k",
            "Tags": [{"TagKey": "a", "TagValue": "b"}, {"TagKey": "t" * 129, "TagValue": ""}],
        },
        f"Value '{'t' * 129}' at 'tags.2.member.tagKey' failed to satisfy constraint: "
        "Member must have length less than or equal to 128",
    ),
    (
        "required member of a list element",
        "CreateKey",
        {"Tags": [{"TagKey": "a"}]},
        f"Value null at 'tags.1.member.tagValue' {NOT_NULL}",
    ),
    (
        "nested structure member",
        "CreateGrant",
        {
            "KeyId": "k",
            "Operations": ["Encrypt"],
            "Constraints": {"SourceArn": "arn:aws:s3:::my-example-bucket"},
        },
        "Value 'arn:aws:s3:::my-example-bucket' at 'constraints.sourceArn' "
        "failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: "
        "^arn:aws[a-z0-9-]*:[a-z0-9-]+:[a-z0-9-]*:[0-9]{12}:.+$",
    ),
    (
        "nested structure required member",
        "UpdateCustomKeyStore",
        {
            "CustomKeyStoreId": "cks-1",
            "XksProxyAuthenticationCredential": {"AccessKeyId": "A" * 20},
        },
        f"Value null at 'xksProxyAuthenticationCredential.rawSecretAccessKey' {NOT_NULL}",
    ),
    (
        "structure in a nested optional member",
        "GenerateRandom",
        {"Recipient": {"KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_1"}},
        "Value 'RSAES_OAEP_SHA_1' at 'recipient.keyEncryptionAlgorithm' failed to satisfy "
        "constraint: Member must satisfy enum value set: [RSAES_OAEP_SHA_256]",
    ),
]


@pytest.mark.parametrize(
    ("op", "body", "entry"),
    [case[1:] for case in CONSTRAINT_CASES],
    ids=[case[0] for case in CONSTRAINT_CASES],
)
def test_single_constraint_failure(op: str, body: dict[str, Any], entry: str) -> None:
    assert validation_message(op, body) == ONE + entry


# --- Several failures ----------------------------------------------------------------------------
def test_several_failures_one_message_in_member_order() -> None:
    body = {
        "Tags": [{"TagKey": "", "TagValue": "v"}, {"TagKey": "k"}],
        "KeyUsage": "ENCRYPT",
        "Description": "x" * 8193,
        "Policy": "",
    }
    message = validation_message("CreateKey", body)
    # The model declares Policy, Description, KeyUsage, ..., Tags in this order.
    entries = [
        "Value '' at 'policy' failed to satisfy constraint: Member must satisfy regular "
        "expression pattern: [\\u0009\\u000A\\u000D\\u0020-\\u00FF]+",
        "Value '' at 'policy' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1",
        f"Value '{'x' * 8193}' at 'description' failed to satisfy constraint: "
        "Member must have length less than or equal to 8192",
        "Value 'ENCRYPT' at 'keyUsage' failed to satisfy constraint: Member must satisfy enum "
        "value set: [SIGN_VERIFY, ENCRYPT_DECRYPT, GENERATE_VERIFY_MAC, KEY_AGREEMENT, "
        "ENCAPSULATE_DECAPSULATE]",
        "Value '' at 'tags.1.member.tagKey' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1",
        f"Value null at 'tags.2.member.tagValue' {NOT_NULL}",
    ]
    assert message == "6 validation errors detected: " + "; ".join(entries)


def test_entries_follow_the_model_member_order() -> None:
    members = list(model.shapes()["CreateGrantRequest"]["members"])
    message = validation_message(
        "CreateGrant",
        {"GrantTokens": [""], "Name": "bad name", "Operations": []},
    )
    assert message.startswith("3 validation errors detected: ")
    paths = re.findall(r" at '([^']+)' failed", message)
    assert paths == ["keyId", "grantTokens", "name"]
    assert paths == sorted(paths, key=lambda p: members.index(p[0].upper() + p[1:]))


def test_one_member_failing_two_constraints_gives_two_entries() -> None:
    message = validation_message("CreateAlias", {"AliasName": "", "TargetKeyId": "k"})
    assert message == (
        "2 validation errors detected: Value '' at 'aliasName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$; "
        "Value '' at 'aliasName' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1"
    )


def test_list_length_and_element_failures_are_separate_entries() -> None:
    tokens = [""] * 11
    message = validation_message("DescribeKey", {"KeyId": "k", "GrantTokens": tokens})
    rendered = "[" + ", ".join(tokens) + "]"
    assert message == (
        f"2 validation errors detected: Value '{rendered}' at 'grantTokens' failed to satisfy "
        "constraint: Member must have length less than or equal to 10; "
        f"Value '{rendered}' at 'grantTokens' failed to satisfy constraint: Member must satisfy "
        "constraint: [Member must have length less than or equal to 8192, "
        "Member must have length greater than or equal to 1]"
    )


def test_every_failing_list_element_of_structures_is_reported() -> None:
    tags = [{"TagKey": "", "TagValue": "v"}] * 3
    message = validation_message("TagResource", {"KeyId": "k", "Tags": tags})
    paths = re.findall(r" at '([^']+)' failed", message)
    assert message.startswith("3 validation errors detected: ")
    assert paths == ["tags.1.member.tagKey", "tags.2.member.tagKey", "tags.3.member.tagKey"]


def test_entries_are_joined_with_semicolon_space() -> None:
    message = validation_message("CreateAlias", {})
    assert message == (
        f"2 validation errors detected: Value null at 'aliasName' {NOT_NULL}; "
        f"Value null at 'targetKeyId' {NOT_NULL}"
    )


# --- Every operation given {} --------------------------------------------------------------------
@pytest.mark.parametrize("op", model.operation_names())
def test_empty_body_names_exactly_the_required_members(op: str) -> None:
    shape_name = model.input_shape_name(op)
    shape = model.shapes()[shape_name] if shape_name else {"members": {}}
    required = set(shape.get("required", ()))
    expected_paths = [lower_first(m) for m in shape["members"] if m in required]
    if not expected_paths:
        assert validate_input(op, {}) == {}
        return
    message = validation_message(op, {})
    count = len(expected_paths)
    assert message.startswith(f"{count} validation error{'s' if count > 1 else ''} detected: ")
    assert re.findall(r"Value null at '([^']+)' " + re.escape(NOT_NULL), message) == expected_paths
    assert message.count("; ") == count - 1


def test_unknown_operation() -> None:
    with pytest.raises(UnknownOperationException):
        validate_input("EncryptEverything", {})


# --- Sensitive values ----------------------------------------------------------------------------
SECRET = "Sup3rSecretPassw0rdThatIsFarTooLong"


@pytest.mark.parametrize(
    ("op", "body", "secret", "path"),
    [
        (
            "UpdateCustomKeyStore",
            {"CustomKeyStoreId": "c", "KeyStorePassword": SECRET},
            SECRET,
            "keyStorePassword",
        ),
        (
            "CreateCustomKeyStore",
            {"CustomKeyStoreName": "n", "KeyStorePassword": "abc"},
            "abc",
            "keyStorePassword",
        ),
        (
            "UpdateCustomKeyStore",
            {
                "CustomKeyStoreId": "c",
                "XksProxyAuthenticationCredential": {
                    "AccessKeyId": "lowercase-not-base32",
                    "RawSecretAccessKey": "sk!" * 20,
                },
            },
            "sk!",
            "xksProxyAuthenticationCredential.rawSecretAccessKey",
        ),
        (
            "Encrypt",
            {"KeyId": "k", "Plaintext": b64(b"P" * 4100)},
            b64(b"P" * 4100)[:40],
            "plaintext",
        ),
    ],
)
def test_sensitive_values_are_never_echoed(
    op: str, body: dict[str, Any], secret: str, path: str
) -> None:
    message = validation_message(op, body)
    assert secret not in message
    assert f"Value at '{path}' failed to satisfy constraint: " in message
    assert "lowercase-not-base32" not in message


@pytest.mark.parametrize(
    "plaintext",
    ["c2VjcmV0!!!", "c2VjcmV0====", "c2VjcmV0IGtleQ", "c2Vj\ncmV0", "c2VjcmV0IGtleR=="],
)
def test_sensitive_blob_is_not_echoed_in_serialization_errors(plaintext: str) -> None:
    message = serialization_message("Encrypt", {"KeyId": "k", "Plaintext": plaintext})
    assert "c2Vj" not in message
    assert message.startswith("Value at 'plaintext' can not be converted to a Blob: ")


def test_sensitive_invalid_character_is_not_echoed() -> None:
    message = serialization_message("Encrypt", {"KeyId": "k", "Plaintext": "abc\u00e9"})
    assert (
        message == "Value at 'plaintext' can not be converted to a Blob: Invalid Base64 character"
    )


# --- Base64 --------------------------------------------------------------------------------------
BASE64_CASES: list[tuple[str, str]] = [
    ("abc", "Base64 encoded length is expected a multiple of 4 bytes but found: 3"),
    ("QUJDRA", "Base64 encoded length is expected a multiple of 4 bytes but found: 6"),
    ("QU!D", "Invalid Base64 character: '!'"),
    ("QUJD RA=", "Invalid Base64 character: ' '"),
    ("QUJD\nRA=", "Invalid Base64 character: '\n'"),
    ("QUJ-", "Invalid Base64 character: '-'"),
    ("QU=D", "Invalid Base64 character: '='"),
    ("QR==", "Invalid last non-pad Base64 character dectected"),
    ("QUJDRB==", "Invalid last non-pad Base64 character dectected"),
    ("QUI=QUI=", "Invalid Base64 character: '='"),
    ("====", "Invalid last non-pad Base64 character dectected"),
]


@pytest.mark.parametrize(("text", "detail"), BASE64_CASES)
def test_invalid_base64(text: str, detail: str) -> None:
    message = serialization_message("Decrypt", {"CiphertextBlob": text})
    assert message == f"'{text}' can not be converted to a Blob: {detail}"


@pytest.mark.parametrize("data", [b"", b"A", b"AB", b"ABC", bytes(range(256))])
def test_canonical_base64_round_trips(data: bytes) -> None:
    result = validate_input(
        "Verify",
        {
            "KeyId": "k",
            "Message": b64(data) or "QQ==",
            "Signature": b64(data) or "QQ==",
            "SigningAlgorithm": "ECDSA_SHA_256",
        },
    )
    assert result["Message"] == (data or b"A")


# --- Wrong JSON types ----------------------------------------------------------------------------
TYPE_CASES: list[tuple[str, str, dict[str, Any], str]] = [
    (
        "number for string",
        "DescribeKey",
        {"KeyId": 12},
        "NUMBER_VALUE can not be converted to a String",
    ),
    (
        "decimal for string",
        "DescribeKey",
        {"KeyId": 1.5},
        "NUMBER_VALUE can not be converted to a String",
    ),
    (
        "true for string",
        "DescribeKey",
        {"KeyId": True},
        "TRUE_VALUE can not be converted to a String",
    ),
    (
        "false for string",
        "DescribeKey",
        {"KeyId": False},
        "FALSE_VALUE can not be converted to a String",
    ),
    (
        "object for string",
        "DescribeKey",
        {"KeyId": {"a": 1}},
        "Start of structure or map found where not expected.",
    ),
    ("list for string", "DescribeKey", {"KeyId": ["k"]}, "Start of list found where not expected"),
    (
        "string for integer",
        "GenerateRandom",
        {"NumberOfBytes": "32"},
        "STRING_VALUE can not be converted to an Integer",
    ),
    (
        "true for integer",
        "GenerateRandom",
        {"NumberOfBytes": True},
        "TRUE_VALUE can not be converted to an Integer",
    ),
    (
        "false for integer",
        "GenerateRandom",
        {"NumberOfBytes": False},
        "FALSE_VALUE can not be converted to an Integer",
    ),
    (
        "list for integer",
        "GenerateRandom",
        {"NumberOfBytes": [32]},
        "Start of list found where not expected",
    ),
    (
        "fraction for integer",
        "ScheduleKeyDeletion",
        {"KeyId": "k", "PendingWindowInDays": 7.5},
        "Value '7.5' at 'pendingWindowInDays' can not be converted to an Integer: "
        "it is not a whole number",
    ),
    ("past 64 bits", "GenerateRandom", {"NumberOfBytes": 2**63}, ""),
    (
        "string for boolean",
        "Encrypt",
        {"KeyId": "k", "Plaintext": "QQ==", "DryRun": "true"},
        "STRING_VALUE can not be converted to an Boolean",
    ),
    (
        "number for boolean",
        "Encrypt",
        {"KeyId": "k", "Plaintext": "QQ==", "DryRun": 1},
        "NUMBER_VALUE can not be converted to a Boolean",
    ),
    (
        "object for boolean",
        "Encrypt",
        {"KeyId": "k", "Plaintext": "QQ==", "DryRun": {}},
        "Start of structure or map found where not expected.",
    ),
    (
        "number for blob",
        "Decrypt",
        {"CiphertextBlob": 7},
        "NUMBER_VALUE can not be converted to a Blob",
    ),
    (
        "list for blob",
        "Decrypt",
        {"CiphertextBlob": [1, 2]},
        "Start of list found where not expected",
    ),
    ("string for list", "DescribeKey", {"KeyId": "k", "GrantTokens": "t"}, "Expected list or null"),
    ("number for list", "DescribeKey", {"KeyId": "k", "GrantTokens": 3}, "Expected list or null"),
    (
        "object for list",
        "DescribeKey",
        {"KeyId": "k", "GrantTokens": {"t": "t"}},
        "Start of structure or map found where not expected.",
    ),
    (
        "number in a list of strings",
        "DescribeKey",
        {"KeyId": "k", "GrantTokens": ["t", 5]},
        "NUMBER_VALUE can not be converted to a String",
    ),
    (
        "string for map",
        "Decrypt",
        {"CiphertextBlob": "QQ==", "EncryptionContext": "a=b"},
        "Expected map or null",
    ),
    (
        "list for map",
        "Decrypt",
        {"CiphertextBlob": "QQ==", "EncryptionContext": [["a", "b"]]},
        "Start of list found where not expected",
    ),
    (
        "number as map value",
        "Decrypt",
        {"CiphertextBlob": "QQ==", "EncryptionContext": {"a": 1}},
        "NUMBER_VALUE can not be converted to a String",
    ),
    (
        "boolean as map value",
        "Decrypt",
        {"CiphertextBlob": "QQ==", "EncryptionContext": {"a": True}},
        "TRUE_VALUE can not be converted to a String",
    ),
    (
        "object as map value",
        "Decrypt",
        {"CiphertextBlob": "QQ==", "EncryptionContext": {"a": {}}},
        "Start of structure or map found where not expected.",
    ),
    (
        "null as map value",
        "Decrypt",
        {"CiphertextBlob": "QQ==", "EncryptionContext": {"a": None}},
        "Null value found in map at 'encryptionContext'; map values can not be null",
    ),
    (
        "nested map value",
        "CreateGrant",
        {
            "KeyId": "k",
            "Operations": ["Encrypt"],
            "Constraints": {"EncryptionContextEquals": {"a": 1}},
        },
        "NUMBER_VALUE can not be converted to a String",
    ),
    ("string for structure", "GenerateRandom", {"Recipient": "r"}, "Expected null"),
    ("number for structure", "GenerateRandom", {"Recipient": 1}, "Expected null"),
    (
        "list for structure",
        "GenerateRandom",
        {"Recipient": []},
        "Start of list found where not expected",
    ),
    (
        "string for list element structure",
        "TagResource",
        {"KeyId": "k", "Tags": ["a=b"]},
        "Expected null",
    ),
    (
        "number for tag key",
        "TagResource",
        {"KeyId": "k", "Tags": [{"TagKey": 1, "TagValue": "v"}]},
        "NUMBER_VALUE can not be converted to a String",
    ),
    (
        "string for timestamp",
        "ImportKeyMaterial",
        {
            "KeyId": "k",
            "ImportToken": "QQ==",
            "EncryptedKeyMaterial": "QQ==",
            "ValidTo": "2030-01-01T00:00:00Z",
        },
        "STRING_VALUE can not be converted to a Timestamp",
    ),
    (
        "boolean for timestamp",
        "ImportKeyMaterial",
        {"KeyId": "k", "ImportToken": "QQ==", "EncryptedKeyMaterial": "QQ==", "ValidTo": True},
        "TRUE_VALUE can not be converted to a Timestamp",
    ),
    (
        "non-finite timestamp",
        "ImportKeyMaterial",
        {"KeyId": "k", "ImportToken": "QQ==", "EncryptedKeyMaterial": "QQ==", "ValidTo": math.inf},
        "Value at 'validTo' can not be converted to a Timestamp",
    ),
]


@pytest.mark.parametrize(
    ("op", "body", "message"),
    [case[1:] for case in TYPE_CASES],
    ids=[case[0] for case in TYPE_CASES],
)
def test_wrong_json_type(op: str, body: dict[str, Any], message: str) -> None:
    assert serialization_message(op, body) == message


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "Start of list found where not expected"),
        ([{"KeyId": "k"}], "Start of list found where not expected"),
        (None, ""),
        ("KeyId", ""),
        (12, ""),
        (True, ""),
    ],
)
def test_body_that_is_not_an_object(body: object, message: str) -> None:
    assert serialization_message("DescribeKey", body) == message


def test_type_errors_win_over_constraint_errors() -> None:
    body = {"KeyId": "", "Plaintext": 5}
    assert serialization_message("Encrypt", body) == "NUMBER_VALUE can not be converted to a Blob"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"KeyId": 1, "Plaintext": 5}, "NUMBER_VALUE can not be converted to a String"),
        ({"Plaintext": 5, "KeyId": 1}, "NUMBER_VALUE can not be converted to a Blob"),
        (
            {"GrantTokens": "t", "Plaintext": True, "KeyId": 1},
            "Expected list or null",
        ),
        (
            {"EncryptionContext": {"a": "b", "c": 3}, "KeyId": []},
            "NUMBER_VALUE can not be converted to a String",
        ),
    ],
)
def test_first_type_error_in_document_order_is_reported(body: dict[str, Any], message: str) -> None:
    assert serialization_message("Encrypt", body) == message


def test_type_errors_in_unknown_members_are_ignored() -> None:
    assert validate_input("DescribeKey", {"KeyId": "k", "Limit": "x"}) == {"KeyId": "k"}


# --- Map constraints (no KMS map carries any; checked on a synthetic model) ----------------------
SYNTHETIC_SHAPES: dict[str, Any] = {
    "Req": {
        "type": "structure",
        "required": ["Labels"],
        "members": {"Labels": {"shape": "Labels"}, "Secrets": {"shape": "Secrets"}},
    },
    "Labels": {
        "type": "map",
        "key": {"shape": "LabelKey"},
        "value": {"shape": "LabelValue"},
        "min": 1,
        "max": 2,
    },
    "LabelKey": {"type": "string", "min": 1, "max": 5, "pattern": "^[a-z]+$"},
    "LabelValue": {"type": "string", "max": 3},
    "Secrets": {"type": "map", "key": {"shape": "LabelKey"}, "value": {"shape": "Secret"}},
    "Secret": {"type": "string", "sensitive": True, "max": 3},
}


def synthetic(body: dict[str, Any]) -> list[str]:
    root = validation._Compiler(SYNTHETIC_SHAPES).node("Req")
    errors: list[str] = []
    root.convert(body, "", "", errors)
    return errors


def test_map_keys_and_values_are_reported_once_each_keys_first() -> None:
    errors = synthetic({"Labels": {"ok": "long value", "BAD": "x"}})
    assert errors == [
        "Value '{ok=long value, BAD=x}' at 'labels' failed to satisfy constraint: Map keys must "
        "satisfy constraint: [Member must have length less than or equal to 5, Member must have "
        "length greater than or equal to 1, Member must satisfy regular expression pattern: "
        "^[a-z]+$]",
        "Value '{ok=long value, BAD=x}' at 'labels' failed to satisfy constraint: Map value must "
        "satisfy constraint: [Member must have length less than or equal to 3]",
    ]


def test_map_size_limits() -> None:
    assert synthetic({"Labels": {}}) == [
        "Value '{}' at 'labels' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1"
    ]
    assert synthetic({"Labels": {"a": "1", "b": "2", "c": "3"}}) == [
        "Value '{a=1, b=2, c=3}' at 'labels' failed to satisfy constraint: "
        "Member must have length less than or equal to 2"
    ]


def test_map_with_sensitive_values_is_not_rendered() -> None:
    errors = synthetic({"Labels": {"a": "b"}, "Secrets": {"k": "hunter2"}})
    assert errors == [
        "Value at 'secrets' failed to satisfy constraint: "
        "Map value must satisfy constraint: [Member must have length less than or equal to 3]"
    ]


# --- The model's regular expressions -------------------------------------------------------------
def model_patterns() -> dict[str, str]:
    return {name: s["pattern"] for name, s in model.shapes().items() if "pattern" in s}


@pytest.mark.parametrize(("shape", "pattern"), sorted(model_patterns().items()))
def test_every_model_pattern_compiles_without_warnings(shape: str, pattern: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compiled = compile_java_pattern(pattern)
    assert compiled.flags & re.ASCII


def test_validators_for_every_operation_compile() -> None:
    roots = validation._compiled()
    assert sorted(roots) == model.operation_names()
    assert validation._compiled() is roots, "compiled once and cached"


PATTERN_CASES: list[tuple[str, str, bool]] = [
    ("AliasNameType", "alias/my-alias_/:x", True),
    ("AliasNameType", "alias/my alias", False),
    ("AliasNameType", "alias/my-alias\n", False),
    ("AliasNameType", "alias/caf\u00e9", False),
    ("GrantNameType", "my-grant:1/_", True),
    ("GrantNameType", "my.grant", False),
    # Unanchored in the model, matched whole as Coral does.
    ("AccountIdType", "111122223333", True),
    ("AccountIdType", "1111222233334", False),
    ("AccountIdType", "x111122223333", False),
    ("CloudHsmClusterIdType", "cluster-234abcdefgh", True),
    ("CloudHsmClusterIdType", "cluster-234abcdefgh0", False),
    # Java's \w is ASCII-only.
    ("PolicyNameType", "default", True),
    ("PolicyNameType", "d\u00e9faut", False),
    ("PolicyNameType", "de-fault", False),
    ("PrincipalIdType", "arn:aws:iam::111122223333:role/a+b=c,d.e@f", True),
    ("PrincipalIdType", "arn:aws:iam::111122223333:role/a b", False),
    ("KeyMaterialDescriptionType", "Material 1\tv2.0", True),
    ("KeyMaterialDescriptionType", "Material #1", False),
    # "-" between a range and "_" is a literal in both dialects.
    ("XksKeyIdType", "key-1_a.b", True),
    ("XksKeyIdType", "key/1", False),
    ("XksProxyUriPathType", "/kms/xks/v1", True),
    ("XksProxyUriPathType", "/prefix/path/kms/xks/v12", True),
    ("XksProxyUriPathType", "/prefix/kms/xks/v123", False),
    ("XksProxyUriEndpointType", "https://xks.example.com", True),
    ("XksProxyUriEndpointType", "http://xks.example.com", False),
    ("RegionType", "us-east-1", True),
    ("RegionType", "us-gov-west-1", True),
    ("RegionType", "useast1", False),
    ("ServicePrincipalType", "dynamodb.amazonaws.com", True),
    ("ServicePrincipalType", "amazonaws", False),
    # \u escapes: tab, newline and Latin-1 allowed, other controls and beyond U+00FF not.
    ("PolicyType", '{"Version": "2012-10-17",\n\t"Id": "caf\u00e9"}', True),
    ("PolicyType", "policy\u0001", False),
    ("PolicyType", "policy \u0100", False),
    ("MarkerType", "", True),
    ("MarkerType", "next\u00ff", True),
    ("MarkerType", "next\n", False),
    ("XksProxyAuthenticationAccessKeyIdType", "ABCDEFGHIJKLMNOPQRST234567", True),
    ("XksProxyAuthenticationAccessKeyIdType", "ABCDEFGHIJKLMNOPQRST01", False),
]


@pytest.mark.parametrize(("shape", "text", "matches"), PATTERN_CASES)
def test_model_pattern_matches_whole_value(shape: str, text: str, matches: bool) -> None:
    pattern = compile_java_pattern(model.shapes()[shape]["pattern"])
    assert (pattern.fullmatch(text) is not None) is matches


def test_grant_token_is_length_checked_only() -> None:
    token = (
        "AQpAM2RhZTk1MGMyNTk2ZmZmMzEyYWVhOWViN2I1MWM4Mzc0MWFiYjc0ZDE1ODkyNGFlNTIzODZhMzgyZjBl"
        "NGY3NiKIAgEBAgB4Mx"
    )
    assert validate_input("RetireGrant", {"GrantToken": token}) == {"GrantToken": token}
    message = validation_message("RetireGrant", {"GrantToken": "t" * 8193})
    assert message.endswith(
        "at 'grantToken' failed to satisfy constraint: "
        "Member must have length less than or equal to 8192"
    )
