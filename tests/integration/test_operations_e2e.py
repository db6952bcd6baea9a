"""Running it for real, each against a real server process: TLS with the dev CA, a burst that
is throttled and recovers, /metrics scraped and parsed, SIGTERM under load losing no
acknowledged request, the audit log's tamper detection, and no secret in logs or audit files."""

from __future__ import annotations

import base64
import json
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from prometheus_client.parser import text_string_to_metric_families

from openkms.tlsdev import make_dev_certs
from tests.conftest import (
    ServerFactory,
    child_env,
    create_account,
    free_port,
    openkms_command,
)


def _kms(endpoint: str, account: dict[str, str], **config: object) -> object:
    options: dict[str, object] = {"retries": {"max_attempts": 1}}
    options.update(config)
    return boto3.session.Session().client(
        "kms",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=account["AccessKeyId"],
        aws_secret_access_key=account["SecretAccessKey"],
        config=Config(**options),
    )


def test_tls_with_the_dev_ca(tmp_path: Path) -> None:
    certs = make_dev_certs(tmp_path / "tls", ["localhost", "127.0.0.1"])
    data_dir = tmp_path / "data"
    account = create_account(data_dir)
    port = free_port()
    proc = subprocess.Popen(
        openkms_command(
            "serve",
            "--data-dir",
            str(data_dir),
            "--port",
            str(port),
            "--tls-cert",
            str(certs.server_cert),
            "--tls-key",
            str(certs.server_key),
        ),
        env=child_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        context = ssl.create_default_context(cafile=str(certs.ca_cert))
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(
                    f"https://localhost:{port}/healthz", context=context, timeout=2
                ) as resp:
                    assert resp.status == 200
                    break
            except OSError:
                assert proc.poll() is None, "the TLS server exited"
                assert time.monotonic() < deadline
                time.sleep(0.2)
        kms = boto3.session.Session().client(
            "kms",
            endpoint_url=f"https://localhost:{port}",
            region_name="us-east-1",
            aws_access_key_id=account["AccessKeyId"],
            aws_secret_access_key=account["SecretAccessKey"],
            verify=str(certs.ca_cert),
        )
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        blob = kms.encrypt(KeyId=key_id, Plaintext=b"over tls")["CiphertextBlob"]
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"over tls"
        # Without the CA the certificate is not trusted.
        untrusting = boto3.session.Session().client(
            "kms",
            endpoint_url=f"https://localhost:{port}",
            region_name="us-east-1",
            aws_access_key_id=account["AccessKeyId"],
            aws_secret_access_key=account["SecretAccessKey"],
            config=Config(retries={"max_attempts": 1}),
        )
        with pytest.raises(Exception, match=r"(?i)ssl|certificate"):
            untrusting.list_keys()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_plain_http_refused_off_loopback(tmp_path: Path) -> None:
    result = subprocess.run(
        openkms_command("serve", "--data-dir", str(tmp_path), "--host", "0.0.0.0"),
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "plain" in result.stderr.lower() or "tls" in result.stderr.lower()


def test_burst_is_throttled_and_recovers(server_factory: ServerFactory) -> None:
    managed = server_factory.start(extra_args=["--rate-limits"])
    kms = managed.client()
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    time.sleep(1.2)  # let the CreateKey bucket's neighbours refill

    def enable(_: int) -> tuple[str, int]:
        try:
            kms.enable_key(KeyId=key_id)
            return "OK", 200
        except ClientError as exc:
            return exc.response["Error"]["Code"], exc.response["ResponseMetadata"]["HTTPStatusCode"]

    # EnableKey's quota is 5 requests per second: a concurrent burst of 30 must be throttled.
    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(enable, range(30)))
    codes = [code for code, _ in results]
    assert "OK" in codes
    assert "ThrottlingException" in codes
    assert all(status == 400 for code, status in results if code == "ThrottlingException")
    time.sleep(1.5)
    kms.enable_key(KeyId=key_id)  # refilled
    metrics = _scrape(managed.server.endpoint)
    assert metrics.get("openkms_throttled_requests_total", 0) >= 1


def _scrape(endpoint: str) -> dict[str, float]:
    deadline = time.monotonic() + 5
    totals: dict[str, float] = {}
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{endpoint}/metrics", timeout=5) as resp:
            text = resp.read().decode()
        totals = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
        if totals.get("openkms_requests_total", 0) > 0:
            return totals
        time.sleep(0.3)  # metrics reach the scrape within a second
    return totals


def test_metrics_scraped_and_parsed(server_factory: ServerFactory) -> None:
    managed = server_factory.start()
    kms = managed.client()
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    for _ in range(5):
        kms.encrypt(KeyId=key_id, Plaintext=b"x")
    with pytest.raises(ClientError):
        kms.describe_key(KeyId="alias/none")
    totals = _scrape(managed.server.endpoint)
    assert totals.get("openkms_requests_total", 0) >= 7
    assert "openkms_request_duration_seconds_count" in totals
    with urllib.request.urlopen(f"{managed.server.endpoint}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    assert 'operation="Encrypt"' in text and 'outcome="NotFoundException"' in text


def test_sigterm_under_load_loses_no_acknowledged_request(server_factory: ServerFactory) -> None:
    data_dir = server_factory.new_data_dir("sigterm")
    managed = server_factory.start(data_dir)
    kms = managed.client()
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    acknowledged: list[str] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def load() -> None:
        client = managed.client()
        while not stop.is_set():
            try:
                alias = f"alias/ack-{time.monotonic_ns()}-{threading.get_ident()}"
                client.create_alias(AliasName=alias, TargetKeyId=key_id)
            except Exception as exc:  # refused or cut off: not acknowledged
                errors.append(repr(exc)[:200])
                continue
            with lock:
                acknowledged.append(alias)

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while len(acknowledged) < 5 and time.monotonic() < deadline:
        time.sleep(0.1)  # a loaded machine may be slow to answer the first requests
    proc = managed.process.process
    assert proc is not None
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=30)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert code in (0, -signal.SIGTERM)
    assert acknowledged, f"the load produced no acknowledged request: {errors[:3]}"
    restarted = server_factory.start(data_dir, account=managed.account)
    names = {
        a["AliasName"]
        for a in restarted.client()
        .get_paginator("list_aliases")
        .paginate(KeyId=key_id)
        .build_full_result()["Aliases"]
    }
    missing = [a for a in acknowledged if a not in names]
    # The 50-aliases-per-key quota may refuse some; every acknowledged one must be there.
    assert not missing
    # The audit log was flushed at shutdown and verifies.
    result = subprocess.run(
        openkms_command("audit", "verify", *map(str, sorted(data_dir.glob("audit*.log*")))),
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_audit_tampering_is_detected(server_factory: ServerFactory) -> None:
    data_dir = server_factory.new_data_dir("audit")
    managed = server_factory.start(data_dir)
    kms = managed.client()
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    for i in range(3):
        kms.encrypt(KeyId=key_id, Plaintext=b"x", EncryptionContext={"n": str(i)})
    managed.stop()
    log = data_dir / "audit.log"
    lines = log.read_text().splitlines()
    records = [json.loads(line) for line in lines if '"eventName"' in line]
    assert [r["eventName"] for r in records][-3:] == ["Encrypt"] * 3
    assert records[-1]["requestParameters"]["encryptionContext"] == {"n": "2"}

    def verify() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            openkms_command("audit", "verify", str(log)),
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    assert verify().returncode == 0
    edited = [line.replace('"n":"1"', '"n":"9"') for line in lines]
    log.write_text("\n".join(edited) + "\n")
    result = verify()
    assert result.returncode == 1 and "edited" in result.stdout.lower()
    removed = [line for line in lines if '"n":"1"' not in line]
    log.write_text("\n".join(removed) + "\n")
    assert verify().returncode == 1
    reordered = list(lines)
    reordered[-1], reordered[-2] = reordered[-2], reordered[-1]
    log.write_text("\n".join(reordered) + "\n")
    assert verify().returncode == 1


def test_no_secret_in_logs_or_audit(server_factory: ServerFactory) -> None:
    data_dir = server_factory.new_data_dir("secrets")
    managed = server_factory.start(data_dir, extra_args=["--log-format", "json"])
    kms = managed.client()
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    plaintext = b"top-secret-plaintext-" + str(time.time()).encode()
    blob = kms.encrypt(KeyId=key_id, Plaintext=plaintext)["CiphertextBlob"]
    data_key = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")["Plaintext"]
    kms.decrypt(CiphertextBlob=blob)
    with pytest.raises(ClientError):
        kms.decrypt(CiphertextBlob=blob[:-1] + bytes([blob[-1] ^ 1]))
    managed.stop()
    secrets = [plaintext, data_key, managed.account["SecretAccessKey"].encode()]
    forms = [f for s in secrets for f in (s, base64.b64encode(s), s.hex().encode())]
    scanned = 0
    for path in data_dir.rglob("*"):
        if path.is_file() and (
            path.suffix in (".log",) or "audit" in path.name or "server" in path.name
        ):
            content = path.read_bytes()
            scanned += 1
            for form in forms:
                assert form not in content, f"a secret appears in {path.name}"
    assert scanned >= 2
    assert sys.executable  # the scan ran in this interpreter's environment
