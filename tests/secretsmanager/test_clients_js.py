"""The AWS SDK for JavaScript v3 (``@aws-sdk/client-secrets-manager`` from npm, locked in
tests/clients/js/package-lock.json) against a running server: CreateSecret, GetSecretValue,
PutSecretValue (binary), DescribeSecret, ListSecrets and a typed ResourceNotFoundException,
as an application would call them with the endpoint and credentials from its environment.

Node and npm come from the machine (Node 20 here); ``scripts/js-client-test.sh`` installs the
lock with ``npm ci``. Without Node the test skips loudly, and fails under CI=true."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.components import hidden, unavailable
from tests.conftest import Server

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "js-client-test.sh"
MISSING = 3  # the script's exit status when Node or npm is missing


@pytest.fixture(scope="module")
def js_client() -> Path:
    """The installed client project (``npm ci`` from the lock, once per lock change)."""
    if hidden("nodejs"):
        unavailable("nodejs", "hidden by OPENKMS_TEST_HIDE")
    out = subprocess.run(
        ["bash", str(SCRIPT), "install"], capture_output=True, text=True, timeout=300, check=False
    )
    if out.returncode == MISSING:
        unavailable("nodejs", out.stderr.strip())
    assert out.returncode == 0, out.stderr[-3000:]
    return ROOT / "tests" / "clients" / "js"


def run_js(server: Server, script: str, **env: str) -> dict[str, object]:
    environment = {
        **os.environ,
        "OPENKMS_ENDPOINT": server.endpoint,
        "AWS_REGION": server.region,
        "AWS_ACCESS_KEY_ID": server.access_key_id,
        "AWS_SECRET_ACCESS_KEY": server.secret_access_key,
        # Nothing from a developer's own AWS set-up may leak into the SDK's provider chain.
        "AWS_PROFILE": "",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        **env,
    }
    environment.pop("AWS_SESSION_TOKEN", None)
    out = subprocess.run(
        ["bash", str(SCRIPT), "run", script],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
        check=False,
    )
    assert out.returncode == 0, f"stdout: {out.stdout[-2000:]}\nstderr: {out.stderr[-3000:]}"
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_sdk_v3_round_trip(js_client: Path, server: Server) -> None:
    result = run_js(server, "secrets_roundtrip.mjs", SECRET_NAME="js-sdk/round-trip")
    assert result["ok"] is True
    assert str(result["arn"]).startswith(
        f"arn:aws:secretsmanager:{server.region}:{server.account_id}:secret:js-sdk/round-trip-"
    )
