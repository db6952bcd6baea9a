"""``aws-secretsmanager-caching`` (AWS's client-side cache for Python, from the dev lock) against
a running server: it reads through boto3's ``secretsmanager`` client, caches the value, and
picks up a new AWSCURRENT version once its refresh interval has passed."""

from __future__ import annotations

import json

from aws_secretsmanager_caching import (  # type: ignore[import-untyped]
    InjectKeywordedSecretString,
    InjectSecretString,
    SecretCache,
    SecretCacheConfig,
)
from botocore.client import BaseClient

from tests.conftest import Server
from tests.security.support import client, unique


def secrets_client(server: Server) -> BaseClient:
    return client(server, "secretsmanager")


def test_cache_reads_caches_and_refreshes(server: Server) -> None:
    sm = secrets_client(server)
    name = unique("caching/db")
    sm.create_secret(Name=name, SecretString=json.dumps({"user": "app", "password": "one"}))
    # secret_refresh_interval=0: every read after the first asks DescribeSecret whether
    # AWSCURRENT moved, as a long-running application does once its interval has passed.
    cache = SecretCache(SecretCacheConfig(secret_refresh_interval=0), client=sm)
    assert json.loads(cache.get_secret_string(name))["password"] == "one"

    sm.put_secret_value(SecretId=name, SecretString=json.dumps({"user": "app", "password": "two"}))
    assert json.loads(cache.get_secret_string(name))["password"] == "two"

    # A cache with the default hour-long interval keeps serving what it read, without calls.
    steady = SecretCache(client=sm)
    first = steady.get_secret_string(name)
    sm.put_secret_value(SecretId=name, SecretString=json.dumps({"password": "three"}))
    assert steady.get_secret_string(name) == first


def test_cache_binary_and_decorators(server: Server) -> None:
    sm = secrets_client(server)
    binary_name = unique("caching/bin")
    sm.create_secret(Name=binary_name, SecretBinary=b"\x00\x01\xfe\xff")
    cache = SecretCache(client=sm)
    assert cache.get_secret_binary(binary_name) == b"\x00\x01\xfe\xff"

    json_name = unique("caching/json")
    sm.create_secret(Name=json_name, SecretString=json.dumps({"username": "u", "password": "p"}))

    @InjectKeywordedSecretString(secret_id=json_name, cache=cache, user="username", pw="password")
    def connect(user: str, pw: str) -> tuple[str, str]:
        return user, pw

    @InjectSecretString(json_name, cache)
    def raw(secret: str) -> str:
        return secret

    assert connect() == ("u", "p")
    assert json.loads(raw()) == {"username": "u", "password": "p"}


def test_cache_reads_a_version_stage(server: Server) -> None:
    sm = secrets_client(server)
    name = unique("caching/stage")
    sm.create_secret(Name=name, SecretString="first")
    sm.put_secret_value(SecretId=name, SecretString="second")
    cache = SecretCache(client=sm)
    assert cache.get_secret_string(name) == "second"
    assert cache.get_secret_string(name, version_stage="AWSPREVIOUS") == "first"
