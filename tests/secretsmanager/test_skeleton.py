"""The Secrets Manager endpoint answers on the KMS port: routing by the credential scope,
every operation of the model reachable, errors in Secrets Manager's shape."""

from __future__ import annotations

import json
import time

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from openkms.secretsmanager.dispatch import HANDLERS
from openkms.secretsmanager.model import operation_names
from tests.conftest import Server
from tests.secretsmanager.conftest import sm_client


def test_every_model_operation_is_in_the_dispatch_table() -> None:
    assert set(HANDLERS) == set(operation_names())


def test_bad_signature_is_answered_in_secrets_manager_shape(sm_server: Server) -> None:
    bad = sm_client(
        sm_server,
        {"AccessKeyId": sm_server.access_key_id, "SecretAccessKey": "wrong" * 8},
    )
    with pytest.raises(ClientError) as caught:
        bad.list_secrets()
    assert caught.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_unknown_access_key_is_unrecognized(sm_server: Server) -> None:
    bad = sm_client(sm_server, {"AccessKeyId": "AKIAUNKNOWNUNKNOWN00", "SecretAccessKey": "x" * 40})
    with pytest.raises(ClientError) as caught:
        bad.list_secrets()
    assert caught.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_validation_error_is_awss(sm: BaseClient) -> None:
    with pytest.raises(ClientError) as caught:
        sm.get_secret_value(SecretId="x" * 2049)
    assert caught.value.response["Error"]["Code"] == "ValidationException"


def test_refused_requests_are_audited_as_secrets_manager(sm_server: Server) -> None:
    bad = sm_client(
        sm_server,
        {"AccessKeyId": sm_server.access_key_id, "SecretAccessKey": "wrong" * 8},
    )
    with pytest.raises(ClientError):
        bad.describe_secret(SecretId="audited/refusal")
    deadline = time.monotonic() + 5
    while True:
        lines = (sm_server.data_dir / "audit.log").read_text().splitlines()
        found = [
            r
            for r in map(json.loads, filter(None, lines))
            if r.get("eventName") == "DescribeSecret" and r.get("errorCode")
        ]
        if found or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert found and found[-1]["eventSource"] == "secretsmanager.amazonaws.com"
    assert found[-1]["errorCode"] == "InvalidSignatureException"
