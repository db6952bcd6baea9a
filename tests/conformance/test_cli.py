"""The AWS CLI (``aws kms ...``) against the server, unchanged: endpoint and credentials come
from the environment only."""

from __future__ import annotations

import base64
import os

from tests.conformance import unique_alias


def test_create_key_and_list_keys(aws_cli, server) -> None:
    meta = aws_cli("create-key", "--description", "from the cli").json["KeyMetadata"]
    assert meta["Arn"] == server.key_arn(meta["KeyId"])
    assert meta["Description"] == "from the cli"
    assert meta["KeyState"] == "Enabled"
    listed = aws_cli("list-keys").json["Keys"]
    assert {"KeyId": meta["KeyId"], "KeyArn": meta["Arn"]} in listed


def test_encrypt_and_decrypt_files(aws_cli, tmp_path) -> None:
    key_id = aws_cli("create-key").json["KeyMetadata"]["KeyId"]
    plaintext = os.urandom(200) + b"\x00\n binary \xff"
    (tmp_path / "plain.bin").write_bytes(plaintext)
    enc = aws_cli(
        "encrypt",
        "--key-id",
        key_id,
        "--plaintext",
        "fileb://plain.bin",
        "--encryption-context",
        "purpose=cli,team=crypto",
        cwd=tmp_path,
    ).json
    assert enc["KeyId"].endswith(key_id)
    (tmp_path / "blob.bin").write_bytes(base64.b64decode(enc["CiphertextBlob"]))
    out = aws_cli(
        "decrypt",
        "--ciphertext-blob",
        "fileb://blob.bin",
        "--encryption-context",
        "team=crypto,purpose=cli",
        "--query",
        "Plaintext",
        output="text",
        cwd=tmp_path,
    )
    assert base64.b64decode(out.stdout.strip()) == plaintext


def test_create_alias_and_describe_by_alias(aws_cli) -> None:
    key_id = aws_cli("create-key").json["KeyMetadata"]["KeyId"]
    alias = unique_alias("cli")
    created = aws_cli("create-alias", "--alias-name", alias, "--target-key-id", key_id)
    assert created.stdout.strip() == ""
    meta = aws_cli("describe-key", "--key-id", alias).json["KeyMetadata"]
    assert meta["KeyId"] == key_id
    names = [a["AliasName"] for a in aws_cli("list-aliases", "--key-id", key_id).json["Aliases"]]
    assert names == [alias]


def test_generate_data_key(aws_cli, tmp_path) -> None:
    key_id = aws_cli("create-key").json["KeyMetadata"]["KeyId"]
    resp = aws_cli("generate-data-key", "--key-id", key_id, "--key-spec", "AES_256").json
    plaintext = base64.b64decode(resp["Plaintext"])
    assert len(plaintext) == 32
    (tmp_path / "dk.bin").write_bytes(base64.b64decode(resp["CiphertextBlob"]))
    out = aws_cli(
        "decrypt",
        "--ciphertext-blob",
        "fileb://dk.bin",
        "--query",
        "Plaintext",
        output="text",
        cwd=tmp_path,
    )
    assert base64.b64decode(out.stdout.strip()) == plaintext


def test_error_exit_names_the_aws_error_code(aws_cli) -> None:
    result = aws_cli("describe-key", "--key-id", "alias/does-not-exist-cli", check=False)
    assert result.returncode != 0
    assert "(NotFoundException)" in result.stderr
    assert "DescribeKey" in result.stderr


def test_state_error_through_the_cli(aws_cli) -> None:
    key_id = aws_cli("create-key").json["KeyMetadata"]["KeyId"]
    aws_cli("schedule-key-deletion", "--key-id", key_id, "--pending-window-in-days", "7")
    result = aws_cli("cancel-key-deletion", "--key-id", key_id)
    assert result.json["KeyId"].endswith(key_id)
    result = aws_cli("cancel-key-deletion", "--key-id", key_id, check=False)
    assert result.returncode != 0
    assert "(KMSInvalidStateException)" in result.stderr


def test_wrong_secret_through_the_cli(aws_cli, server) -> None:
    bad = server.as_account(
        {"AccessKeyId": server.access_key_id, "SecretAccessKey": "wrong", "AccountId": "0" * 12}
    )
    result = aws_cli("list-keys", server=bad, check=False)
    assert result.returncode != 0
    assert "(InvalidSignatureException)" in result.stderr
