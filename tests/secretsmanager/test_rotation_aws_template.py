"""AWS's own single-user PostgreSQL rotation function, run unchanged by ``openkms rotation-runner``
against a real PostgreSQL server that this module starts (issue #19).

The function is AWS's published template (repository aws-samples/aws-secrets-manager-rotation-
lambdas, file SecretsManagerRDSPostgreSQLRotationSingleUser/lambda_function.py). Its code is not
part of openkms, and it cannot be fetched here (no network but the package registries), so the
test takes the file from ``OPENKMS_AWS_ROTATION_TEMPLATE`` and skips, saying how to run it,
when that variable is unset. The file is imported as it is (``--path`` its directory, handler
``<file stem>.lambda_handler``); what it needs from its environment is the runner's and the
server's job: PyGreSQL (``pg``, ``pgdb``: the ``rotation`` extra), ``SECRETS_MANAGER_ENDPOINT``,
``AWS_REGION``, credentials, and the optional ``EXCLUDE_CHARACTERS``/``PASSWORD_LENGTH``.

The secrets carry no ``ssl`` key, as AWS documents the shape: the template first tries
``sslmode=verify-full`` with Amazon Linux's CA file, which this non-TLS cluster refuses, then
falls back to a plain connection (loopback only)."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from botocore.client import BaseClient

from tests.conftest import Server, ServerProcess, create_account, server_from_account
from tests.integration.pg import PgCluster, PostgresMissing, postgres_missing, require_postgres
from tests.secretsmanager.conftest import sm_client
from tests.secretsmanager.test_rotation_postgres import (
    logs_in,
    server_log_says,
    stages,
    value,
    wait_for,
)

TEMPLATE_ENV = "OPENKMS_AWS_ROTATION_TEMPLATE"
HOW_TO_RUN = (
    f"AWS's PostgreSQL single-user rotation template is not given: set {TEMPLATE_ENV} to the "
    "path of a copy of SecretsManagerRDSPostgreSQLRotationSingleUser/lambda_function.py from "
    "github.com/aws-samples/aws-secrets-manager-rotation-lambdas (kept outside this repository) "
    "to run AWS's own function unchanged against openkms and a real PostgreSQL"
)
USERS = ("tmpl_ok", "tmpl_drift")
PASSWORD_LENGTH = 40
EXCLUDED = ":/@\"'\\"


@pytest.fixture(scope="module")
def template() -> Path:
    given = os.environ.get(TEMPLATE_ENV)
    if not given:
        pytest.skip(HOW_TO_RUN)
    path = Path(given).resolve()
    assert path.is_file(), f"{TEMPLATE_ENV}={given}: no such file"
    assert re.fullmatch(r"[A-Za-z_]\w*", path.stem), f"{path.name} is not importable as a module"
    assert "def lambda_handler(" in path.read_text("utf-8"), f"{path} has no lambda_handler"
    try:
        import pgdb  # noqa: F401  (the template's driver: PyGreSQL, the rotation extra)
    except ImportError:
        pytest.fail(f"{TEMPLATE_ENV} is set but PyGreSQL is not here: run make install-rotation")
    return path


@pytest.fixture(scope="module")
def pg(template: Path) -> Iterator[PgCluster]:
    """A cluster of this module: password (SCRAM) authentication for the rotated users."""
    require_postgres()
    try:
        cluster = PgCluster.create()
    except PostgresMissing:
        postgres_missing()
    try:
        hba = cluster.data_dir / "pg_hba.conf"
        rules = "".join(f"host all {user} 127.0.0.1/32 scram-sha-256\n" for user in USERS)
        hba.write_text(rules + hba.read_text())
        cluster._run("pg_ctl", "reload", "-D", str(cluster.data_dir))
        with psycopg.connect(cluster.url(), autocommit=True) as conn:
            for user in USERS:
                conn.execute(f"CREATE ROLE {user} LOGIN PASSWORD 'first-password-{user}'")
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(scope="module")
def server(
    template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, str]]:
    """The module's server, whose one rotation function is the runner hosting the template as
    a command (the account's credentials in its own environment, not the server's)."""
    base = tmp_path_factory.mktemp("aws-template-config")
    data_dir = tmp_path_factory.mktemp("openkms-aws-template")
    account = create_account(data_dir)
    creds = base / "rotator.credentials"
    creds.write_text(
        "[default]\n"
        f"aws_access_key_id = {account['AccessKeyId']}\n"
        f"aws_secret_access_key = {account['SecretAccessKey']}\n"
    )
    function_arn = f"arn:aws:lambda:us-east-1:{account['AccountId']}:function:aws-pg-single-user"
    command = json.dumps([
        sys.executable, "-m", "openkms.secretsmanager.rotation.runner", "--stdin",
        "--path", str(template.parent), f"{template.stem}.lambda_handler",
    ])
    env = {
        "AWS_SHARED_CREDENTIALS_FILE": str(creds),
        "EXCLUDE_CHARACTERS": EXCLUDED,
        "PASSWORD_LENGTH": str(PASSWORD_LENGTH),
    }
    table = ", ".join(f"{name} = {json.dumps(text)}" for name, text in env.items())  # TOML
    (base / "functions.toml").write_text(
        f'[functions."{function_arn}"]\ncommand = {command}\n'
        f"env = {{ {table} }}\ntimeout_seconds = 60\n"
    )
    (base / "openkms.toml").write_text(f'rotation_functions = "{base / "functions.toml"}"\n')
    proc = ServerProcess(data_dir, extra_args=("--config", str(base / "openkms.toml")))
    proc.start()
    try:
        yield server_from_account(proc.endpoint, data_dir, account), function_arn
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def sm(server: tuple[Server, str]) -> BaseClient:
    return sm_client(server[0])


def db_secret(pg: PgCluster, user: str, password: str) -> str:
    """The secret's JSON as AWS documents it for this template (no ``ssl`` key)."""
    return json.dumps({
        "engine": "postgres", "host": "127.0.0.1", "port": pg.port, "username": user,
        "password": password, "dbname": "postgres",
    })


def test_aws_template_rotates_the_password_in_postgresql_and_the_secret(
    sm: BaseClient, pg: PgCluster, server: tuple[Server, str], template: Path
) -> None:
    _, function_arn = server
    first = "first-password-tmpl_ok"
    arn = sm.create_secret(Name="db/tmpl_ok", SecretString=db_secret(pg, "tmpl_ok", first))["ARN"]
    first_version = next(v for v, s in stages(sm, arn).items() if "AWSCURRENT" in s)
    token = sm.rotate_secret(
        SecretId=arn, RotationLambdaARN=function_arn,
        RotationRules={"AutomaticallyAfterDays": 30},
    )["VersionId"]
    wait_for(lambda: "AWSCURRENT" in stages(sm, arn).get(token, []), "the rotation to finish")

    new = value(sm, arn)
    password = new["password"]
    # The function's environment reached GetRandomPassword (the template's versions that do
    # not read PASSWORD_LENGTH ask for AWS's default length).
    length = PASSWORD_LENGTH if "PASSWORD_LENGTH" in template.read_text("utf-8") else 32
    assert len(password) == length and not set(password) & set(EXCLUDED)
    assert {k: v for k, v in new.items() if k != "password"} == {
        k: v for k, v in json.loads(db_secret(pg, "tmpl_ok", first)).items() if k != "password"
    }
    # PostgreSQL and the secret changed together.
    assert logs_in(pg, "tmpl_ok", password)
    assert not logs_in(pg, "tmpl_ok", first)
    wait_for(lambda: stages(sm, arn) == {token: ["AWSCURRENT"], first_version: ["AWSPREVIOUS"]},
             "AWSPENDING to be removed")
    assert value(sm, arn, "AWSPREVIOUS")["password"] == first
    assert "LastRotatedDate" in sm.describe_secret(SecretId=arn)


def test_aws_template_failure_leaves_awscurrent_unchanged(
    sm: BaseClient, pg: PgCluster, server: tuple[Server, str]
) -> None:
    """The password was changed in PostgreSQL behind the secret's back: the template's
    setSecret can log in with none of the secret's values and fails; nothing moves."""
    srv, function_arn = server
    stale = "first-password-tmpl_drift"
    arn = sm.create_secret(
        Name="db/tmpl_drift", SecretString=db_secret(pg, "tmpl_drift", stale)
    )["ARN"]
    with psycopg.connect(pg.url(), autocommit=True) as conn:
        conn.execute("ALTER ROLE tmpl_drift PASSWORD 'changed-out-of-band'")
    current = next(v for v, s in stages(sm, arn).items() if "AWSCURRENT" in s)
    token = sm.rotate_secret(SecretId=arn, RotationLambdaARN=function_arn)["VersionId"]
    wait_for(lambda: server_log_says(srv, f"version {token} failed at setSecret"),
             "the rotation to fail at setSecret")
    assert stages(sm, arn) == {current: ["AWSCURRENT"], token: ["AWSPENDING"]}
    assert value(sm, arn)["password"] == stale
    assert "LastRotatedDate" not in sm.describe_secret(SecretId=arn)
    assert logs_in(pg, "tmpl_drift", "changed-out-of-band")
    pending = value(sm, arn, "AWSPENDING")["password"]
    assert not logs_in(pg, "tmpl_drift", pending)
    assert pending not in srv.stderr_log.read_text("utf-8", "replace")

