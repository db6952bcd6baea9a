"""Sealing, the operator's way: the root key split into Shamir shares, the server started sealed
answers 503 until enough shares are entered with `openkms unseal`."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.conftest import ServerFactory, child_env, create_account, openkms_command


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        openkms_command(*args),
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_sealed_server_unseals_with_two_of_three_shares(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    data_dir = tmp_path / "sealed"
    account = create_account(data_dir)
    first = server_factory.start(data_dir, account=account)
    key_id = first.client().create_key()["KeyMetadata"]["KeyId"]
    blob = first.client().encrypt(KeyId=key_id, Plaintext=b"before sealing")["CiphertextBlob"]
    first.stop()
    split = _run(
        "rootkey", "split", "--data-dir", str(data_dir), "-k", "2", "-n", "3", "--delete-key-file"
    )
    assert split.returncode == 0, split.stderr
    shares = [line for line in split.stdout.split() if line.startswith("okms-share-")]
    assert len(shares) == 3
    assert not (data_dir / "root.key").exists()
    sealed = server_factory.start(data_dir, account=account, extra_args=["--sealed"])
    kms = sealed.client()
    with pytest.raises(ClientError) as refused:
        kms.list_keys()
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert refused.value.response["Error"]["Code"] == "ServiceUnavailableException"
    one = _run("unseal", "--endpoint", sealed.server.endpoint, shares[2])
    assert one.returncode == 0 and '"sealed":true' in one.stdout.replace(" ", "")
    with pytest.raises(ClientError):
        kms.list_keys()
    two = _run("unseal", "--endpoint", sealed.server.endpoint, shares[0])
    assert two.returncode == 0 and '"sealed":false' in two.stdout.replace(" ", "")
    deadline = time.monotonic() + 5
    while True:
        try:
            plain = kms.decrypt(CiphertextBlob=blob)["Plaintext"]
            break
        except ClientError:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    assert plain == b"before sealing"
