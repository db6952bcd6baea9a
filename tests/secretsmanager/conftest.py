"""Fixtures of the Secrets Manager tests: one openkms server per test module (its own data
directory, audit file and account), boto3 ``secretsmanager`` clients, and the AWS CLI
(``aws secretsmanager ...`` through ``AWS_ENDPOINT_URL_SECRETS_MANAGER``).

``sm_server`` is module-scoped so that a module's tests share one server and modules do not see
each other's secrets; ``test_rotation_*`` and ``test_access_*`` modules reuse these fixtures.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient
from botocore.config import Config

from tests.conftest import (
    CliResult,
    Server,
    ServerProcess,
    aws_cli_command,
    child_env,
    create_account,
    server_from_account,
)


def sm_client(server: Server, creds: dict[str, str] | None = None, **config: Any) -> BaseClient:
    """A boto3 ``secretsmanager`` client for ``server`` (its own account unless ``creds``, a
    dict with AccessKeyId, SecretAccessKey and optionally SessionToken, says otherwise); one
    attempt, no retries."""
    options: dict[str, Any] = {"retries": {"max_attempts": 1}}
    options.update(config)
    creds = creds or {
        "AccessKeyId": server.access_key_id,
        "SecretAccessKey": server.secret_access_key,
    }
    return boto3.session.Session().client(
        "secretsmanager",
        endpoint_url=server.endpoint,
        region_name=server.region,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds.get("SessionToken"),
        config=Config(**options),
    )


@pytest.fixture(scope="module")
def sm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """An openkms server of this test module alone (audit file at ``data_dir/audit.log``)."""
    data_dir = tmp_path_factory.mktemp("openkms-sm")
    account = create_account(data_dir)
    proc = ServerProcess(data_dir)
    proc.start()
    try:
        yield server_from_account(proc.endpoint, data_dir, account)
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def sm(sm_server: Server) -> BaseClient:
    """boto3 secretsmanager client of the module server's account root."""
    return sm_client(sm_server)


@pytest.fixture(scope="module")
def sm_kms(sm_server: Server) -> BaseClient:
    """boto3 KMS client of the module server's account root."""
    return sm_server.client()


@pytest.fixture(scope="module")
def sm_second_account(sm_server: Server) -> Server:
    """A second account on the module server (created while it runs)."""
    from tests.conftest import wait_until_recognized

    other = sm_server.as_account(create_account(sm_server.data_dir))
    wait_until_recognized(other)
    return other


SmCli = Callable[..., CliResult]


def run_sm_cli(server: Server, *args: str, check: bool = True, timeout: float = 60.0) -> CliResult:
    """``aws secretsmanager <args> --output json`` against ``server``, configured only through
    the environment (AWS_ENDPOINT_URL_SECRETS_MANAGER, as the README's quick start)."""
    nowhere = str(server.data_dir / "no-such-aws-config")
    env = child_env(
        {
            "AWS_ACCESS_KEY_ID": server.access_key_id,
            "AWS_SECRET_ACCESS_KEY": server.secret_access_key,
            "AWS_DEFAULT_REGION": server.region,
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": server.endpoint,
            "AWS_CONFIG_FILE": nowhere,
            "AWS_SHARED_CREDENTIALS_FILE": nowhere,
            "AWS_MAX_ATTEMPTS": "1",
            "AWS_PAGER": "",
        }
    )
    full = (*aws_cli_command(), "secretsmanager", *args, "--output", "json")
    proc = subprocess.run(
        full, capture_output=True, text=True, env=env, timeout=timeout, check=False
    )
    result = CliResult(tuple(full), proc.returncode, proc.stdout, proc.stderr)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(full)} failed ({proc.returncode}):\n{proc.stderr}")
    return result


@pytest.fixture(scope="module")
def sm_cli(sm_server: Server) -> SmCli:
    """``sm_cli("create-secret", "--name", "x", ...).json``; ``server=`` another account,
    ``check=False`` allows failure."""

    def run(*args: str, server: Server = sm_server, **kwargs: Any) -> CliResult:
        return run_sm_cli(server, *args, **kwargs)

    return run
