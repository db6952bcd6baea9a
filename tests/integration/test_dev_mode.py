"""`make run` is `openkms serve --dev`: on first start it creates an account, prints how to point
the AWS CLI at the server and writes the same lines to <data dir>/dev.env; the permissive mode is
refused off loopback."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from pathlib import Path

import boto3

from tests.conftest import child_env, free_port, openkms_command


def _wait_healthy(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return
        except OSError:
            assert proc.poll() is None, "the dev server exited"
            assert time.monotonic() < deadline, "the dev server did not become healthy"
            time.sleep(0.1)


def test_dev_mode_bootstraps_and_prints_the_environment(tmp_path: Path) -> None:
    data_dir = tmp_path / "dev"
    port = free_port()
    out = tmp_path / "out.txt"
    with open(out, "wb") as stdout:
        proc = subprocess.Popen(
            openkms_command("serve", "--dev", "--port", str(port), "--data-dir", str(data_dir)),
            env=child_env(),
            stdout=stdout,
            stderr=subprocess.DEVNULL,
        )
    try:
        _wait_healthy(port, proc)
        env_lines = (data_dir / "dev.env").read_text().splitlines()
        values = dict(line.removeprefix("export ").split("=", 1) for line in env_lines)
        assert values["AWS_DEFAULT_REGION"] == "us-east-1"
        assert values["AWS_ENDPOINT_URL_KMS"] == f"http://127.0.0.1:{port}"
        assert (data_dir / "dev.env").stat().st_mode & 0o077 == 0
        printed = out.read_text()
        assert "AWS_ENDPOINT_URL_KMS" in printed and "dev.env" in printed
        kms = boto3.session.Session().client(
            "kms",
            endpoint_url=values["AWS_ENDPOINT_URL_KMS"],
            region_name=values["AWS_DEFAULT_REGION"],
            aws_access_key_id=values["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=values["AWS_SECRET_ACCESS_KEY"],
        )
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["Enabled"] is True
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_permissive_mode_is_refused_off_loopback(tmp_path: Path) -> None:
    result = subprocess.run(
        openkms_command(
            "serve",
            "--accept-any-credentials",
            "--host",
            "0.0.0.0",
            "--data-dir",
            str(tmp_path),
            "--allow-plain-http-non-loopback",
        ),
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "loopback" in result.stderr


def test_accept_any_credentials_and_reset(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        openkms_command(
            "serve",
            "--dev",
            "--accept-any-credentials",
            "--account-id",
            "123456789012",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path / "permissive"),
        ),
        env=child_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_healthy(port, proc)
        kms = boto3.session.Session().client(
            "kms",
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name="eu-west-1",
            aws_access_key_id="ANYTHING",
            aws_secret_access_key="not checked",
        )
        arn = kms.create_key()["KeyMetadata"]["Arn"]
        assert arn.startswith("arn:aws:kms:eu-west-1:123456789012:key/")
        assert len(kms.list_keys()["Keys"]) == 1
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/_openkms/reset",
            data=b"{}",
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as resp:
            assert resp.status == 200
        assert kms.list_keys()["Keys"] == []
    finally:
        proc.terminate()
        proc.wait(timeout=30)
