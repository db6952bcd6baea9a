"""Rotation end to end: a real openkms server whose ``rotation_functions`` map Lambda ARNs to
``openkms rotation-runner`` (a command reading the event on stdin, and an HTTPS endpoint),
hosting the single-user PostgreSQL rotation function against a real PostgreSQL server that the
test starts (a throwaway cluster, password authentication for the rotated users).

The password in PostgreSQL and in the secret change together; a rotation that fails at
testSecret leaves AWSCURRENT as it was (and AWSPENDING where AWS leaves it)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from tests.conftest import (
    Server,
    ServerProcess,
    child_env,
    create_account,
    free_port,
    server_from_account,
)
from tests.integration.pg import PgCluster, PostgresMissing, postgres_missing, require_postgres
from tests.secretsmanager.conftest import run_sm_cli, sm_client

HERE = Path(__file__).resolve().parent
ACCOUNT_FUNCTION = "arn:aws:lambda:us-east-1:{account}:function:{name}"
PG_HANDLER = "openkms.secretsmanager.rotation.functions.postgres_single_user:lambda_handler"
ROTATION_TIMEOUT_SECONDS = 90.0


@pytest.fixture(scope="module")
def pg() -> Iterator[PgCluster]:
    """A cluster of this module: password (SCRAM) authentication for the rotated users, trust
    for the test's superuser."""
    require_postgres()
    try:
        cluster = PgCluster.create()
    except PostgresMissing:
        postgres_missing()
    try:
        hba = cluster.data_dir / "pg_hba.conf"
        rules = "".join(
            f"host all {user} 127.0.0.1/32 scram-sha-256\n"
            for user in ("app_cmd", "app_https", "app_fail")
        )
        hba.write_text(rules + hba.read_text())
        cluster._run("pg_ctl", "reload", "-D", str(cluster.data_dir))
        with psycopg.connect(cluster.url(), autocommit=True) as conn:
            for user in ("app_cmd", "app_https", "app_fail"):
                conn.execute(f"CREATE ROLE {user} LOGIN PASSWORD 'first-password-{user}'")
        yield cluster
    finally:
        cluster.destroy()


def _write_functions(base: Path, account: dict[str, str], ca_file: Path, https_port: int
                     ) -> dict[str, str]:
    """The rotation functions file: three function ARNs (command, HTTPS, failing command), and
    the server's configuration file naming it; returns name -> ARN."""
    creds = base / "rotator.credentials"
    creds.write_text(
        "[default]\n"
        f"aws_access_key_id = {account['AccessKeyId']}\n"
        f"aws_secret_access_key = {account['SecretAccessKey']}\n"
    )
    arns = {
        name: ACCOUNT_FUNCTION.format(account=account["AccountId"], name=name)
        for name in ("pg-cmd", "pg-https", "pg-fail", "generic")
    }
    generic = json.dumps([sys.executable, "-m", "openkms.secretsmanager.rotation.runner",
                          "--stdin", "--path", str(HERE), "rotation_handlers:generic"])
    command = json.dumps(
        [sys.executable, "-m", "openkms.secretsmanager.rotation.runner", "--stdin", PG_HANDLER]
    )
    env = f'AWS_SHARED_CREDENTIALS_FILE = "{creds}"'
    (base / "functions.toml").write_text(
        f'[functions."{arns["pg-cmd"]}"]\ncommand = {command}\n'
        f"env = {{ {env} }}\ntimeout_seconds = 60\n\n"
        f'[functions."{arns["pg-fail"]}"]\ncommand = {command}\n'
        f'env = {{ {env}, ROTATION_TEST_QUERY = "SELECT 1 FROM a_table_that_is_not_there" }}\n'
        "timeout_seconds = 60\n\n"
        f'[functions."{arns["pg-https"]}"]\nurl = "https://127.0.0.1:{https_port}/"\n'
        f'ca_file = "{ca_file}"\ntimeout_seconds = 60\n\n'
        f'[functions."{arns["generic"]}"]\ncommand = {generic}\n'
        f"env = {{ {env} }}\ntimeout_seconds = 60\n"
    )
    (base / "openkms.toml").write_text(f'rotation_functions = "{base / "functions.toml"}"\n')
    return arns


@pytest.fixture(scope="module")
def rotation_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Server, dict[str, str]]]:
    """The module's server, and the HTTPS rotation function (the runner on a port of its own,
    with the account's credentials in its own environment, not the server's)."""
    from openkms.tlsdev import make_dev_certs

    base = tmp_path_factory.mktemp("rotation-config")
    data_dir = tmp_path_factory.mktemp("openkms-rotation")
    account = create_account(data_dir)
    tls = make_dev_certs(base / "tls", ("127.0.0.1",))
    https_port = free_port()
    arns = _write_functions(base, account, tls.ca_cert, https_port)
    proc = ServerProcess(data_dir, extra_args=("--config", str(base / "openkms.toml")))
    proc.start()
    runner_log = (base / "runner.log").open("wb")
    runner = subprocess.Popen(
        [sys.executable, "-m", "openkms.secretsmanager.rotation.runner",
         "--listen", f"127.0.0.1:{https_port}", "--tls-cert", str(tls.server_cert),
         "--tls-key", str(tls.server_key), "--endpoint", proc.endpoint, "--region", "us-east-1",
         PG_HANDLER],
        env=child_env({
            "AWS_ACCESS_KEY_ID": account["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": account["SecretAccessKey"],
        }),
        stdout=subprocess.DEVNULL,
        stderr=runner_log,
    )
    try:
        deadline = time.monotonic() + 30
        while True:  # until the runner listens
            assert runner.poll() is None, (base / "runner.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", https_port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the HTTPS rotation runner did not start"
                time.sleep(0.05)
        # (and, under "config", the configuration file the scheduler command reads)
        yield server_from_account(proc.endpoint, data_dir, account), {
            **arns, "config": str(base / "openkms.toml")
        }
    finally:
        runner.kill()
        runner.wait()
        runner_log.close()
        proc.stop()


@pytest.fixture(scope="module")
def sm(rotation_server: tuple[Server, dict[str, str]]) -> BaseClient:
    return sm_client(rotation_server[0])


# --- helpers ------------------------------------------------------------------------------------
def db_secret(pg: PgCluster, user: str) -> str:
    return json.dumps({
        "engine": "postgres", "host": "127.0.0.1", "port": pg.port, "username": user,
        "password": f"first-password-{user}", "dbname": "postgres", "ssl": False,
    })


def logs_in(pg: PgCluster, user: str, password: str) -> bool:
    try:
        psycopg.connect(host="127.0.0.1", port=pg.port, dbname="postgres", user=user,
                        password=password, connect_timeout=5, sslmode="disable").close()
        return True
    except psycopg.OperationalError:
        return False


def stages(sm: BaseClient, arn: str) -> dict[str, list[str]]:
    versions: dict[str, list[str]] = sm.describe_secret(SecretId=arn)["VersionIdsToStages"]
    return versions


def wait_for(condition: Any, what: str, timeout: float = ROTATION_TIMEOUT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def server_log_says(server: Server, text: str) -> bool:
    return server.stderr_log.exists() and text in server.stderr_log.read_text("utf-8", "replace")


def value(sm: BaseClient, arn: str, stage: str = "AWSCURRENT") -> dict[str, Any]:
    answer: dict[str, Any] = json.loads(
        sm.get_secret_value(SecretId=arn, VersionStage=stage)["SecretString"]
    )
    return answer


def rotate_and_check(sm: BaseClient, pg: PgCluster, user: str, function_arn: str) -> None:
    arn = sm.create_secret(Name=f"db/{user}", SecretString=db_secret(pg, user))["ARN"]
    first_version = next(v for v, s in stages(sm, arn).items() if "AWSCURRENT" in s)
    assert logs_in(pg, user, f"first-password-{user}")

    answer = sm.rotate_secret(
        SecretId=arn, RotationLambdaARN=function_arn, RotationRules={"AutomaticallyAfterDays": 30}
    )
    token = answer["VersionId"]
    assert answer["ARN"] == arn and answer["Name"] == f"db/{user}"
    wait_for(lambda: "AWSCURRENT" in stages(sm, arn).get(token, []), "the rotation to finish")

    new = value(sm, arn)
    assert new["password"] != f"first-password-{user}" and len(new["password"]) == 32
    assert {k: v for k, v in new.items() if k != "password"} == {
        k: v for k, v in json.loads(db_secret(pg, user)).items() if k != "password"
    }
    # The database and the secret changed together.
    assert logs_in(pg, user, new["password"])
    assert not logs_in(pg, user, f"first-password-{user}")
    wait_for(lambda: stages(sm, arn) == {token: ["AWSCURRENT"], first_version: ["AWSPREVIOUS"]},
             "AWSPENDING to be removed")
    described = sm.describe_secret(SecretId=arn)
    assert described["RotationEnabled"] is True
    assert described["RotationLambdaARN"] == function_arn
    assert described["RotationRules"]["AutomaticallyAfterDays"] == 30
    assert "LastRotatedDate" in described and "NextRotationDate" in described
    assert value(sm, arn, "AWSPREVIOUS")["password"] == f"first-password-{user}"


# --- the tests ----------------------------------------------------------------------------------
def test_postgres_single_user_rotation_by_a_command(
    sm: BaseClient, pg: PgCluster, rotation_server: tuple[Server, dict[str, str]]
) -> None:
    rotate_and_check(sm, pg, "app_cmd", rotation_server[1]["pg-cmd"])


def test_postgres_single_user_rotation_by_an_https_endpoint(
    sm: BaseClient, pg: PgCluster, rotation_server: tuple[Server, dict[str, str]]
) -> None:
    rotate_and_check(sm, pg, "app_https", rotation_server[1]["pg-https"])


def test_a_failure_at_test_secret_leaves_awscurrent_as_it_was(
    sm: BaseClient, pg: PgCluster, rotation_server: tuple[Server, dict[str, str]]
) -> None:
    server, arns = rotation_server
    arn = sm.create_secret(Name="db/app_fail", SecretString=db_secret(pg, "app_fail"))["ARN"]
    current = next(v for v, s in stages(sm, arn).items() if "AWSCURRENT" in s)
    token = sm.rotate_secret(
        SecretId=arn, RotationLambdaARN=arns["pg-fail"], RotationRules={"AutomaticallyAfterDays": 7}
    )["VersionId"]
    wait_for(lambda: server_log_says(server, f"version {token} failed at testSecret"),
             "the rotation to fail at testSecret")
    assert stages(sm, arn) == {current: ["AWSCURRENT"], token: ["AWSPENDING"]}
    assert value(sm, arn)["password"] == "first-password-app_fail"
    assert "LastRotatedDate" not in sm.describe_secret(SecretId=arn)
    # The pending value exists (createSecret ran); nothing moved AWSCURRENT to it.
    assert value(sm, arn, "AWSPENDING")["password"] != "first-password-app_fail"
    # A new rotation is refused while that one is unfinished, and that one is reattempted.
    with pytest.raises(ClientError) as info:
        sm.rotate_secret(SecretId=arn)
    assert info.value.response["Error"]["Code"] == "InvalidRequestException"
    assert info.value.response["Error"]["Message"] == (
        "A previous rotation isn't complete. That rotation will be reattempted."
    )
    # The secret's log never holds a password.
    log = server.stderr_log.read_text("utf-8", "replace")
    assert value(sm, arn, "AWSPENDING")["password"] not in log


def test_the_scheduler_rotates_when_the_window_opens(
    sm: BaseClient, rotation_server: tuple[Server, dict[str, str]], tmp_path: Path
) -> None:
    """``openkms scheduler run-once --now`` on the server's database: a fixed time instead of
    waiting hours; the rotation it starts calls back into the running server."""
    server, arns = rotation_server
    arn = sm.create_secret(Name="scheduled", SecretString="first")["ARN"]
    answer = sm.rotate_secret(
        SecretId=arn, RotationLambdaARN=arns["generic"], RotateImmediately=False,
        RotationRules={"ScheduleExpression": "rate(4 hours)"},
    )
    assert "VersionId" not in answer
    described = sm.describe_secret(SecretId=arn)
    assert described["RotationEnabled"] is True
    assert list(described["VersionIdsToStages"].values()) == [["AWSCURRENT"]]
    opens = described["NextRotationDate"].timestamp()
    assert opens > time.time() + 3 * 3600  # on the hour, four hours after now

    def run_once(at: float) -> dict[str, Any]:
        config = arns["config"]
        proc = subprocess.run(
            [sys.executable, "-m", "openkms.cli.main", "scheduler", "run-once",
             "--data-dir", str(server.data_dir), "--now", str(at)],
            env=child_env({"OPENKMS_CONFIG": config,
                           "OPENKMS_PORT": server.endpoint.rsplit(":", 1)[1]}),
            capture_output=True, text=True, timeout=180, check=True,
        )
        report: dict[str, Any] = json.loads(proc.stdout)
        return report

    assert run_once(opens - 60)["SecretsRotated"] == []  # not yet
    assert run_once(opens + 60)["SecretsRotated"] == [arn]
    after = sm.describe_secret(SecretId=arn)
    current = next(v for v, s in after["VersionIdsToStages"].items() if "AWSCURRENT" in s)
    assert sm.get_secret_value(SecretId=arn)["SecretString"] != "first"
    assert sm.get_secret_value(SecretId=arn, VersionStage="AWSPREVIOUS")["SecretString"] == "first"
    assert "AWSPENDING" not in after["VersionIdsToStages"][current]
    # (its clock is the real one: the next window counts from the moment it finished)
    assert "LastRotatedDate" in after and after["NextRotationDate"].timestamp() >= opens


def test_rotation_set_up_and_cancelled_with_the_aws_cli(
    sm: BaseClient, rotation_server: tuple[Server, dict[str, str]]
) -> None:
    """The README's commands: rotate-secret with a cron() window, then cancel-rotate-secret."""
    server, arns = rotation_server
    arn = sm.create_secret(Name="cli/rotated", SecretString="v1")["ARN"]
    answer = run_sm_cli(
        server, "rotate-secret", "--secret-id", "cli/rotated",
        "--rotation-lambda-arn", arns["generic"], "--no-rotate-immediately",
        "--rotation-rules", '{"ScheduleExpression": "cron(0 4 ? * SUN *)", "Duration": "2h"}',
    ).json
    assert answer == {"ARN": arn, "Name": "cli/rotated"}
    described = sm.describe_secret(SecretId=arn)
    assert described["RotationEnabled"] is True
    assert described["RotationRules"] == {
        "ScheduleExpression": "cron(0 4 ? * SUN *)", "Duration": "2h"
    }
    with pytest.raises(ClientError) as info:  # hourly: under AWS's four hours
        sm.rotate_secret(SecretId=arn, RotationRules={"ScheduleExpression": "cron(0 * * * ? *)"})
    assert info.value.response["Error"]["Code"] == "InvalidParameterException"
    assert run_sm_cli(server, "cancel-rotate-secret", "--secret-id", arn).json == {
        "ARN": arn, "Name": "cli/rotated"
    }
    described = sm.describe_secret(SecretId=arn)
    assert "RotationEnabled" not in described and "NextRotationDate" not in described
    assert described["RotationLambdaARN"] == arns["generic"]
