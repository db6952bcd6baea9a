"""Single-user PostgreSQL rotation: the user changes its own password.

The secret's value is the JSON AWS's database secrets use::

    {"engine": "postgres", "host": "...", "port": 5432, "username": "...", "password": "...",
     "dbname": "postgres", "ssl": true}

(``port`` defaults to 5432, ``dbname`` to ``postgres``; ``ssl`` true requires TLS, false refuses
it, absent tries TLS first.) Host it with::

    openkms rotation-runner --stdin \
        openkms.secretsmanager.rotation.functions.postgres_single_user:lambda_handler

The four steps, each safe to run again after a failure (Secrets Manager retries):

- createSecret: the AWSPENDING version (``ClientRequestToken``) gets the current value with a new
  password from GetRandomPassword, unless it already has a value.
- setSecret: if the pending password already logs in, nothing to do; otherwise log in with the
  current password (or the previous one, if a half-finished rotation left the database there)
  and ``ALTER ROLE ... PASSWORD`` to the pending one.
- testSecret: log in with the pending password and run ``ROTATION_TEST_QUERY`` (default
  ``SELECT 1``: put a query here that checks the permissions the user must keep).
- finishSecret: move AWSCURRENT to the pending version (the old one becomes AWSPREVIOUS).

Environment: ``SECRETS_MANAGER_ENDPOINT`` (or ``AWS_ENDPOINT_URL_SECRETS_MANAGER``),
``EXCLUDE_CHARACTERS`` (default ``:/@"'\\``, characters a connection string cannot carry),
``PASSWORD_LENGTH`` (default 32), ``ROTATION_TEST_QUERY``.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import boto3  # type: ignore[import-untyped]
import psycopg
from psycopg import sql

log = logging.getLogger("openkms.rotation.postgres")

DEFAULT_EXCLUDE = ":/@\"'\\"
CONNECT_TIMEOUT_SECONDS = 5


def lambda_handler(event: dict[str, Any], context: Any) -> None:
    arn, token, step = event["SecretId"], event["ClientRequestToken"], event["Step"]
    client = boto3.client(
        "secretsmanager",
        endpoint_url=os.environ.get("SECRETS_MANAGER_ENDPOINT")
        or os.environ.get("AWS_ENDPOINT_URL_SECRETS_MANAGER"),
    )
    described = client.describe_secret(SecretId=arn)
    if described.get("RotationEnabled") is False:
        raise ValueError(f"rotation is not enabled for {arn}")
    stages = described.get("VersionIdsToStages", {})
    if token not in stages:
        raise ValueError(f"version {token} of {arn} has no staging label for rotation")
    if "AWSCURRENT" in stages[token]:
        log.info("%s: version %s is already AWSCURRENT", arn, token)
        return
    if "AWSPENDING" not in stages[token]:
        raise ValueError(f"version {token} of {arn} is not AWSPENDING")
    steps = {
        "createSecret": create_secret,
        "setSecret": set_secret,
        "testSecret": test_secret,
        "finishSecret": finish_secret,
    }
    if step not in steps:
        raise ValueError(f"unknown step {step!r}")
    steps[step](client, arn, token)


def _value(client: Any, arn: str, stage: str, token: str | None = None) -> dict[str, Any]:
    request: dict[str, str] = {"SecretId": arn, "VersionStage": stage}
    if token is not None:
        request["VersionId"] = token
    value = json.loads(client.get_secret_value(**request)["SecretString"])
    if not isinstance(value, dict):
        raise ValueError(f"the {stage} value of {arn} is not a JSON object")
    for key in ("host", "username", "password"):
        if key not in value:
            raise KeyError(f"the {stage} value of {arn} has no {key!r}")
    if value.get("engine", "postgres") != "postgres":
        raise ValueError(f"the {stage} value of {arn} is not for engine postgres")
    return value


def create_secret(client: Any, arn: str, token: str) -> None:
    current = _value(client, arn, "AWSCURRENT")
    try:
        _value(client, arn, "AWSPENDING", token)
        log.info("createSecret: %s version %s already has a value", arn, token)
        return
    except client.exceptions.ResourceNotFoundException:
        pass
    password = client.get_random_password(
        PasswordLength=int(os.environ.get("PASSWORD_LENGTH", "32")),
        ExcludeCharacters=os.environ.get("EXCLUDE_CHARACTERS", DEFAULT_EXCLUDE),
    )["RandomPassword"]
    client.put_secret_value(
        SecretId=arn,
        ClientRequestToken=token,
        SecretString=json.dumps({**current, "password": password}),
        VersionStages=["AWSPENDING"],
    )
    log.info("createSecret: put a new value in %s version %s", arn, token)


def connect(value: dict[str, Any]) -> psycopg.Connection[Any] | None:
    """A connection as the value's user, or None when the server refuses the login."""
    ssl = value.get("ssl")
    if isinstance(ssl, str):
        ssl = {"true": True, "false": False}.get(ssl.lower())
    sslmode = "prefer" if ssl is None else ("require" if ssl else "disable")
    try:
        return psycopg.connect(
            host=value["host"],
            port=int(value.get("port", 5432)),
            dbname=value.get("dbname", "postgres"),
            user=value["username"],
            password=value["password"],
            sslmode=sslmode,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
        )
    except psycopg.OperationalError:
        return None


def set_secret(client: Any, arn: str, token: str) -> None:
    pending = _value(client, arn, "AWSPENDING", token)
    current = _value(client, arn, "AWSCURRENT")
    conn = connect(pending)
    if conn is not None:
        conn.close()
        log.info("setSecret: the pending password of %s already logs in", arn)
        return
    for key in ("username", "host"):
        if pending[key] != current[key]:
            raise ValueError(f"setSecret: the pending {key} of {arn} differs from the current")
    conn = connect(current)
    if conn is None:
        # A rotation that failed after setSecret may have left the previous password set.
        try:
            previous = _value(client, arn, "AWSPREVIOUS")
        except (client.exceptions.ResourceNotFoundException, KeyError):
            previous = None
        if previous is not None and all(previous[k] == pending[k] for k in ("username", "host")):
            conn = connect({**previous, "ssl": current.get("ssl", previous.get("ssl"))})
    if conn is None:
        raise ValueError(f"setSecret: no password of {arn} logs in to the database")
    try:
        with conn.cursor() as cur:
            cur.execute(
                sql.SQL("ALTER ROLE {} WITH PASSWORD {}").format(
                    sql.Identifier(pending["username"]), sql.Literal(pending["password"])
                )
            )
        conn.commit()
    finally:
        conn.close()
    log.info("setSecret: set the pending password of %s in the database", arn)


def test_secret(client: Any, arn: str, token: str) -> None:
    conn = connect(_value(client, arn, "AWSPENDING", token))
    if conn is None:
        raise ValueError(f"testSecret: the pending password of {arn} does not log in")
    query = os.environ.get("ROTATION_TEST_QUERY", "SELECT 1")
    try:
        with conn.cursor() as cur:
            cur.execute(query.encode())
        conn.rollback()
    finally:
        conn.close()
    log.info("testSecret: the pending password of %s logs in and passes the test", arn)


def finish_secret(client: Any, arn: str, token: str) -> None:
    stages = client.describe_secret(SecretId=arn)["VersionIdsToStages"]
    current = next((v for v, labels in stages.items() if "AWSCURRENT" in labels), None)
    if current == token:
        return
    move = {"SecretId": arn, "VersionStage": "AWSCURRENT", "MoveToVersionId": token}
    if current is not None:
        move["RemoveFromVersionId"] = current
    client.update_secret_version_stage(**move)
    log.info("finishSecret: %s version %s is AWSCURRENT", arn, token)
