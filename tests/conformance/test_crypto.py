"""Symmetric cryptography through boto3: Encrypt, Decrypt, ReEncrypt, GenerateDataKey(+Without
Plaintext), GenerateRandom, DryRun and GetKeyLastUsage."""

from __future__ import annotations

import datetime
import os
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from tests.conformance import expect_error, unique_alias

DRY_RUN_MESSAGE = "The request would have succeeded, but the DryRun option is set."


@pytest.fixture
def key(kms) -> dict:
    return dict(kms.create_key()["KeyMetadata"])


@pytest.fixture
def other_key(kms) -> dict:
    return dict(kms.create_key()["KeyMetadata"])


def invalid_ciphertext(kms, blob: bytes, **kwargs) -> None:
    expect_error("InvalidCiphertextException", kms.decrypt, CiphertextBlob=blob, **kwargs)


# --- Encrypt / Decrypt ---------------------------------------------------------------------------
@pytest.mark.parametrize("size", [1, 2, 15, 16, 17, 100, 1024, 4096])
def test_round_trip_sizes(kms, key, size: int) -> None:
    plaintext = os.urandom(size)
    enc = kms.encrypt(KeyId=key["KeyId"], Plaintext=plaintext)
    assert enc["KeyId"] == key["Arn"]
    assert enc["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    if size >= 16:  # shorter ones may occur in random bytes by chance
        assert plaintext not in enc["CiphertextBlob"]
    dec = kms.decrypt(CiphertextBlob=enc["CiphertextBlob"])
    assert dec["Plaintext"] == plaintext
    assert dec["KeyId"] == key["Arn"]
    assert dec["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    assert dec["KeyMaterialId"] == key["CurrentKeyMaterialId"]


def test_encrypting_twice_gives_different_blobs(kms, key) -> None:
    one = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"same")["CiphertextBlob"]
    two = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"same")["CiphertextBlob"]
    assert one != two


def test_round_trip_with_encryption_context(kms, key) -> None:
    context = {"tenant": "acme", "purpose": "invoice", "ünïcode": "välue", "empty": ""}
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"hello", EncryptionContext=context)[
        "CiphertextBlob"
    ]
    # Order does not matter.
    reordered = dict(reversed(list(context.items())))
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext=reordered)["Plaintext"] == b"hello"


def test_empty_context_equals_no_context(kms, key) -> None:
    with_empty = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext={})
    without = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    assert kms.decrypt(CiphertextBlob=with_empty["CiphertextBlob"])["Plaintext"] == b"x"
    assert (
        kms.decrypt(CiphertextBlob=without["CiphertextBlob"], EncryptionContext={})["Plaintext"]
        == b"x"
    )


@pytest.mark.parametrize(
    "given",
    [
        None,
        {"a": "c"},
        {"a": "B"},
        {"A": "b"},
        {"a": "b", "c": "d"},
        {"c": "d"},
        {},
        {"a": "b "},
    ],
    ids=[
        "missing",
        "wrong-value",
        "value-case",
        "key-case",
        "extra-pair",
        "other",
        "empty",
        "space",
    ],
)
def test_wrong_context(kms, key, given) -> None:
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext={"a": "b"})[
        "CiphertextBlob"
    ]
    kwargs = {} if given is None else {"EncryptionContext": given}
    invalid_ciphertext(kms, blob, **kwargs)


def test_context_given_when_none_was_used(kms, key) -> None:
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    invalid_ciphertext(kms, blob, EncryptionContext={"a": "b"})


def test_every_flipped_byte_is_invalid_ciphertext(kms, key) -> None:
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"flip me")["CiphertextBlob"]
    for index in range(len(blob)):
        damaged = bytearray(blob)
        damaged[index] ^= 0x01
        with pytest.raises(ClientError) as caught:
            kms.decrypt(CiphertextBlob=bytes(damaged))
        error = caught.value.response["Error"]
        assert error["Code"] == "InvalidCiphertextException", (index, error)
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_high_bit_flips_are_invalid_ciphertext(kms, key) -> None:
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"flip me")["CiphertextBlob"]
    for index in (0, 1, 13, 14, 50, len(blob) - 29, len(blob) - 17, len(blob) - 1):
        damaged = bytearray(blob)
        damaged[index] ^= 0x80
        invalid_ciphertext(kms, bytes(damaged))


def test_truncated_and_extended_blobs(kms, key) -> None:
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"truncate me")["CiphertextBlob"]
    for length in (1, 2, 13, 14, 30, 50, 82, 94, len(blob) - 17, len(blob) - 16, len(blob) - 1):
        invalid_ciphertext(kms, blob[:length])
    invalid_ciphertext(kms, blob + b"\x00")


@pytest.mark.parametrize(
    "blob",
    [b"garbage", b"\x00" * 200, b"\x01" + b"9" * 12 + b"\x05abcde" + b"\x00" * 80, os.urandom(300)],
    ids=["text", "zeros", "plausible-header", "random"],
)
def test_garbage_blob(kms, blob: bytes) -> None:
    invalid_ciphertext(kms, blob)


def test_invalid_ciphertext_says_nothing(kms, key) -> None:
    """Every cryptographic failure answers with the same message."""
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext={"a": "b"})[
        "CiphertextBlob"
    ]
    damaged = bytearray(blob)
    damaged[-1] ^= 1
    messages = set()
    for kwargs in (
        {"CiphertextBlob": blob},
        {"CiphertextBlob": blob, "EncryptionContext": {"a": "c"}},
        {"CiphertextBlob": bytes(damaged), "EncryptionContext": {"a": "b"}},
        {"CiphertextBlob": blob[:40]},
        {"CiphertextBlob": b"garbage"},
    ):
        err = expect_error("InvalidCiphertextException", kms.decrypt, **kwargs)
        messages.add(err.response["Error"].get("Message", ""))
    assert len(messages) == 1, messages


def test_decrypt_with_the_right_key_id(kms, server, key) -> None:
    alias = unique_alias("dec")
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    for ref in (key["KeyId"], key["Arn"], alias, server.alias_arn(alias)):
        resp = kms.decrypt(CiphertextBlob=blob, KeyId=ref)
        assert resp["Plaintext"] == b"x", ref
        assert resp["KeyId"] == key["Arn"], ref


def test_decrypt_with_another_key_id(kms, server, key, other_key) -> None:
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    alias = unique_alias("other")
    kms.create_alias(AliasName=alias, TargetKeyId=other_key["KeyId"])
    for ref in (other_key["KeyId"], other_key["Arn"], alias):
        expect_error(
            "IncorrectKeyException",
            kms.decrypt,
            CiphertextBlob=blob,
            KeyId=ref,
            message="The key ID in the request does not identify a CMK that can perform this "
            "operation.",
        )


def test_decrypt_with_missing_key_id(kms, key) -> None:
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    expect_error("NotFoundException", kms.decrypt, CiphertextBlob=blob, KeyId=str(uuid.uuid4()))


def test_encrypt_through_alias_and_arns(kms, server, key) -> None:
    alias = unique_alias("enc")
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    for ref in (key["Arn"], alias, server.alias_arn(alias)):
        resp = kms.encrypt(KeyId=ref, Plaintext=b"x")
        assert resp["KeyId"] == key["Arn"], ref
        assert kms.decrypt(CiphertextBlob=resp["CiphertextBlob"])["Plaintext"] == b"x"


def test_encrypt_with_missing_key(kms) -> None:
    expect_error("NotFoundException", kms.encrypt, KeyId=str(uuid.uuid4()), Plaintext=b"x")
    expect_error(
        "NotFoundException", kms.encrypt, KeyId="alias/nope-" + uuid.uuid4().hex, Plaintext=b"x"
    )


def test_explicit_symmetric_default_algorithm(kms, key) -> None:
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionAlgorithm="SYMMETRIC_DEFAULT")[
        "CiphertextBlob"
    ]
    resp = kms.decrypt(CiphertextBlob=blob, EncryptionAlgorithm="SYMMETRIC_DEFAULT")
    assert resp["Plaintext"] == b"x"


def test_rsa_algorithm_on_symmetric_key(kms, key) -> None:
    expect_error(
        "InvalidKeyUsageException",
        kms.encrypt,
        KeyId=key["KeyId"],
        Plaintext=b"x",
        EncryptionAlgorithm="RSAES_OAEP_SHA_256",
    )


def test_key_material_id_matches_describe_key(kms, key) -> None:
    current = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["CurrentKeyMaterialId"]
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["KeyMaterialId"] == current
    assert kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256")["KeyMaterialId"] == current
    assert (
        kms.generate_data_key_without_plaintext(KeyId=key["KeyId"], KeySpec="AES_256")[
            "KeyMaterialId"
        ]
        == current
    )


# --- ReEncrypt ------------------------------------------------------------------------------------
def test_re_encrypt_to_another_key(kms, key, other_key) -> None:
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"move me")["CiphertextBlob"]
    resp = kms.re_encrypt(CiphertextBlob=blob, DestinationKeyId=other_key["KeyId"])
    assert resp["SourceKeyId"] == key["Arn"]
    assert resp["KeyId"] == other_key["Arn"]
    assert resp["SourceKeyMaterialId"] == key["CurrentKeyMaterialId"]
    assert resp["DestinationKeyMaterialId"] == other_key["CurrentKeyMaterialId"]
    assert resp["SourceEncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    assert resp["DestinationEncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    dec = kms.decrypt(CiphertextBlob=resp["CiphertextBlob"])
    assert dec["Plaintext"] == b"move me"
    assert dec["KeyId"] == other_key["Arn"]
    expect_error(
        "IncorrectKeyException",
        kms.decrypt,
        CiphertextBlob=resp["CiphertextBlob"],
        KeyId=key["KeyId"],
    )


def test_re_encrypt_with_changed_context(kms, key) -> None:
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"ctx", EncryptionContext={"v": "1"})[
        "CiphertextBlob"
    ]
    resp = kms.re_encrypt(
        CiphertextBlob=blob,
        SourceEncryptionContext={"v": "1"},
        DestinationKeyId=key["KeyId"],
        DestinationEncryptionContext={"v": "2"},
    )
    assert resp["SourceKeyId"] == resp["KeyId"] == key["Arn"]
    new_blob = resp["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=new_blob, EncryptionContext={"v": "2"})["Plaintext"] == b"ctx"
    invalid_ciphertext(kms, new_blob, EncryptionContext={"v": "1"})


def test_re_encrypt_with_wrong_source_context(kms, key, other_key) -> None:
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext={"v": "1"})[
        "CiphertextBlob"
    ]
    expect_error(
        "InvalidCiphertextException",
        kms.re_encrypt,
        CiphertextBlob=blob,
        SourceEncryptionContext={"v": "2"},
        DestinationKeyId=other_key["KeyId"],
    )


def test_re_encrypt_with_wrong_source_key_id(kms, key, other_key) -> None:
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    expect_error(
        "IncorrectKeyException",
        kms.re_encrypt,
        CiphertextBlob=blob,
        SourceKeyId=other_key["KeyId"],
        DestinationKeyId=other_key["KeyId"],
    )


def test_re_encrypt_to_disabled_key(kms, key, other_key) -> None:
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    kms.disable_key(KeyId=other_key["KeyId"])
    expect_error(
        "DisabledException",
        kms.re_encrypt,
        CiphertextBlob=blob,
        DestinationKeyId=other_key["KeyId"],
    )


# --- GenerateDataKey ------------------------------------------------------------------------------
@pytest.mark.parametrize(("spec", "length"), [("AES_256", 32), ("AES_128", 16)])
def test_generate_data_key_spec(kms, key, spec: str, length: int) -> None:
    resp = kms.generate_data_key(KeyId=key["KeyId"], KeySpec=spec)
    assert len(resp["Plaintext"]) == length
    assert resp["KeyId"] == key["Arn"]
    dec = kms.decrypt(CiphertextBlob=resp["CiphertextBlob"])
    assert dec["Plaintext"] == resp["Plaintext"]


@pytest.mark.parametrize("count", [1, 2, 31, 33, 64, 512, 1023, 1024])
def test_generate_data_key_number_of_bytes(kms, key, count: int) -> None:
    resp = kms.generate_data_key(
        KeyId=key["KeyId"], NumberOfBytes=count, EncryptionContext={"n": str(count)}
    )
    assert len(resp["Plaintext"]) == count
    dec = kms.decrypt(CiphertextBlob=resp["CiphertextBlob"], EncryptionContext={"n": str(count)})
    assert dec["Plaintext"] == resp["Plaintext"]
    invalid_ciphertext(kms, resp["CiphertextBlob"])


def test_data_keys_are_random(kms, key) -> None:
    keys = {
        kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256")["Plaintext"] for _ in range(5)
    }
    assert len(keys) == 5


def test_generate_data_key_without_plaintext(kms, key) -> None:
    resp = kms.generate_data_key_without_plaintext(
        KeyId=key["KeyId"], KeySpec="AES_256", EncryptionContext={"a": "b"}
    )
    assert "Plaintext" not in resp
    assert resp["KeyId"] == key["Arn"]
    assert resp["KeyMaterialId"] == key["CurrentKeyMaterialId"]
    dec = kms.decrypt(CiphertextBlob=resp["CiphertextBlob"], EncryptionContext={"a": "b"})
    assert len(dec["Plaintext"]) == 32
    resp = kms.generate_data_key_without_plaintext(KeyId=key["KeyId"], NumberOfBytes=7)
    assert len(kms.decrypt(CiphertextBlob=resp["CiphertextBlob"])["Plaintext"]) == 7


def test_generate_data_key_through_alias(kms, key) -> None:
    alias = unique_alias("gdk")
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    resp = kms.generate_data_key(KeyId=alias, KeySpec="AES_128")
    assert resp["KeyId"] == key["Arn"]


# --- GenerateRandom -------------------------------------------------------------------------------
@pytest.mark.parametrize("count", [1, 16, 32, 1000, 1024])
def test_generate_random(kms, count: int) -> None:
    assert len(kms.generate_random(NumberOfBytes=count)["Plaintext"]) == count


def test_generate_random_is_random(kms) -> None:
    values = {kms.generate_random(NumberOfBytes=32)["Plaintext"] for _ in range(5)}
    assert len(values) == 5


# --- DryRun ---------------------------------------------------------------------------------------
def dry_run_calls(kms, key, other_key) -> list[tuple[str, object, dict]]:
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    return [
        ("Encrypt", kms.encrypt, {"KeyId": key["KeyId"], "Plaintext": b"x"}),
        ("Decrypt", kms.decrypt, {"CiphertextBlob": blob}),
        ("GenerateDataKey", kms.generate_data_key, {"KeyId": key["KeyId"], "KeySpec": "AES_256"}),
        (
            "GenerateDataKeyWithoutPlaintext",
            kms.generate_data_key_without_plaintext,
            {"KeyId": key["KeyId"], "NumberOfBytes": 8},
        ),
        (
            "ReEncrypt",
            kms.re_encrypt,
            {"CiphertextBlob": blob, "DestinationKeyId": other_key["KeyId"]},
        ),
    ]


def test_dry_run_answers_dry_run_operation_exception(kms, key, other_key) -> None:
    for name, call, kwargs in dry_run_calls(kms, key, other_key):
        err = expect_error("DryRunOperationException", call, DryRun=True, **kwargs)
        assert err.response["Error"]["Message"] == DRY_RUN_MESSAGE, name


def test_dry_run_false_is_a_normal_call(kms, key) -> None:
    resp = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x", DryRun=False)
    assert resp["CiphertextBlob"]


def test_dry_run_on_a_disabled_key_reports_disabled(kms, key, other_key) -> None:
    calls = dry_run_calls(kms, key, other_key)
    kms.disable_key(KeyId=key["KeyId"])
    for name, call, kwargs in calls:
        if name == "ReEncrypt":
            continue  # its destination is other_key; see below
        expect_error("DisabledException", call, DryRun=True, **kwargs)
    # ReEncrypt from a disabled source, and to a disabled destination.
    blob = calls[1][2]["CiphertextBlob"]
    expect_error(
        "DisabledException",
        kms.re_encrypt,
        CiphertextBlob=blob,
        DestinationKeyId=other_key["KeyId"],
        DryRun=True,
    )
    kms.enable_key(KeyId=key["KeyId"])
    kms.disable_key(KeyId=other_key["KeyId"])
    expect_error(
        "DisabledException",
        kms.re_encrypt,
        CiphertextBlob=blob,
        DestinationKeyId=other_key["KeyId"],
        DryRun=True,
    )


def test_dry_run_on_pending_deletion_key(kms, key) -> None:
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    expect_error(
        "KMSInvalidStateException", kms.encrypt, KeyId=key["KeyId"], Plaintext=b"x", DryRun=True
    )


def test_dry_run_with_bad_ciphertext(kms) -> None:
    expect_error("InvalidCiphertextException", kms.decrypt, CiphertextBlob=b"garbage", DryRun=True)


def test_dry_run_of_missing_key(kms) -> None:
    expect_error(
        "NotFoundException", kms.encrypt, KeyId=str(uuid.uuid4()), Plaintext=b"x", DryRun=True
    )


def test_dry_run_does_not_count_as_use(kms, key) -> None:
    expect_error(
        "DryRunOperationException", kms.encrypt, KeyId=key["KeyId"], Plaintext=b"x", DryRun=True
    )
    time.sleep(0.1)
    assert "KeyLastUsage" not in kms.get_key_last_usage(KeyId=key["KeyId"])


# --- GetKeyLastUsage ------------------------------------------------------------------------------
def test_key_last_usage_before_any_use(kms, key) -> None:
    resp = kms.get_key_last_usage(KeyId=key["KeyId"])
    assert resp["KeyId"] == key["Arn"]
    assert resp["KeyCreationDate"] == key["CreationDate"]
    assert "TrackingStartDate" in resp
    assert "KeyLastUsage" not in resp


def test_key_last_usage_after_encrypt(kms, key) -> None:
    before = datetime.datetime.now(datetime.UTC)
    enc = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    request_id = enc["ResponseMetadata"]["RequestId"]
    usage = kms.get_key_last_usage(KeyId=key["KeyId"])["KeyLastUsage"]
    assert usage["Operation"] == "Encrypt"
    assert usage["KmsRequestId"] == request_id
    assert before - datetime.timedelta(seconds=5) <= usage["Timestamp"]
    assert usage["Timestamp"] <= datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=5)
    # Still reported once the server has flushed usage to storage.
    time.sleep(1.3)
    usage = kms.get_key_last_usage(KeyId=key["KeyId"])["KeyLastUsage"]
    assert usage["Operation"] == "Encrypt"
    assert usage["KmsRequestId"] == request_id


def test_key_last_usage_tracks_the_latest_operation(kms, key) -> None:
    kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    gdk = kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256")
    usage = kms.get_key_last_usage(KeyId=key["KeyId"])["KeyLastUsage"]
    assert usage["Operation"] == "GenerateDataKey"
    assert usage["KmsRequestId"] == gdk["ResponseMetadata"]["RequestId"]
    dec = kms.decrypt(CiphertextBlob=gdk["CiphertextBlob"])
    usage = kms.get_key_last_usage(KeyId=key["KeyId"])["KeyLastUsage"]
    assert usage["Operation"] == "Decrypt"
    assert usage["KmsRequestId"] == dec["ResponseMetadata"]["RequestId"]


def test_key_last_usage_of_missing_key(kms) -> None:
    expect_error("NotFoundException", kms.get_key_last_usage, KeyId=str(uuid.uuid4()))


# --- Recipient (attested requests) ---------------------------------------------------------------
RECIPIENT = {"KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256", "AttestationDocument": b"\x00" * 32}


def test_attested_requests_are_refused_not_answered_in_plaintext(kms, key) -> None:
    """openkms cannot verify a Nitro attestation document, so a request with ``Recipient`` is
    UnsupportedOperationException on every operation that takes one, never a plaintext answer
    where AWS would send CiphertextForRecipient (docs/compatibility.md)."""
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"secret")["CiphertextBlob"]
    pair_key = key["KeyId"]
    agreement = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="KEY_AGREEMENT")["KeyMetadata"]
    peer = kms.get_public_key(KeyId=agreement["KeyId"])["PublicKey"]
    calls = [
        (kms.decrypt, {"CiphertextBlob": blob}),
        (kms.generate_data_key, {"KeyId": key["KeyId"], "KeySpec": "AES_256"}),
        (kms.generate_data_key_pair, {"KeyId": pair_key, "KeyPairSpec": "ECC_NIST_P256"}),
        (kms.generate_random, {"NumberOfBytes": 16}),
        (
            kms.derive_shared_secret,
            {"KeyId": agreement["KeyId"], "KeyAgreementAlgorithm": "ECDH", "PublicKey": peer},
        ),
    ]
    for call, params in calls:
        error = expect_error("UnsupportedOperationException", call, Recipient=RECIPIENT, **params)
        assert "Plaintext" not in error.response
