"""Malformed Secrets Manager requests, signed but broken, sent raw: each gets AWS's error
(SerializationException, ValidationException, UnknownOperationException ...), never a 500, and
no error message echoes a secret value."""

from __future__ import annotations

import json
from typing import Any

import pytest

from openkms.secretsmanager.model import operation_errors, operation_names
from tests.conformance import JSON_CONTENT_TYPE, RawResponse, send, sign
from tests.conftest import Server

HIDDEN = "hidden-value-must-not-echo"


def _send(server: Server, target: str, body: bytes) -> RawResponse:
    headers = {"Content-Type": JSON_CONTENT_TYPE, "X-Amz-Target": target}
    signed = sign(
        server.endpoint + "/",
        body,
        headers,
        access_key_id=server.access_key_id,
        secret_access_key=server.secret_access_key,
        service="secretsmanager",
    )
    return send(server.endpoint + "/", body, signed)


def _error(resp: RawResponse) -> tuple[int, str, str]:
    doc: dict[str, Any] = resp.json
    return resp.status, str(doc.get("__type")), str(doc.get("message", doc.get("Message", "")))


@pytest.mark.parametrize(
    ("target", "body", "code"),
    [
        ("secretsmanager.GetSecretValue", b"{not json", "SerializationException"),
        ("secretsmanager.GetSecretValue", b"[1, 2]", "SerializationException"),
        ("secretsmanager.GetSecretValue", b'"text"', "SerializationException"),
        ("secretsmanager.GetSecretValue", b'{"SecretId": 5}', "SerializationException"),
        ("secretsmanager.GetSecretValue", b'{"SecretId": ["a"]}', "SerializationException"),
        ("secretsmanager.GetSecretValue", b"{}", "ValidationException"),
        ("secretsmanager.GetSecretValue", b'{"SecretId": ""}', "ValidationException"),
        (
            "secretsmanager.CreateSecret",
            b'{"Name": "x", "SecretBinary": "%%%"}',
            "SerializationException",
        ),
        (
            "secretsmanager.CreateSecret",
            b'{"Name": "x", "ClientRequestToken": "short"}',
            "ValidationException",
        ),
        (
            "secretsmanager.ListSecrets",
            b'{"Filters": [{"Key": "nope", "Values": ["a"]}]}',
            "ValidationException",
        ),
        ("secretsmanager.ListSecrets", b'{"MaxResults": 0}', "ValidationException"),
        ("secretsmanager.ListSecrets", b'{"MaxResults": "ten"}', "SerializationException"),
        (
            "secretsmanager.DeleteSecret",
            b'{"SecretId": "x", "RecoveryWindowInDays": 1.5}',
            "SerializationException",
        ),
        ("secretsmanager.NoSuchOperation", b"{}", "UnknownOperationException"),
        ("TrentService.ListKeys", b"{}", "UnknownOperationException"),
        ("", b"{}", "UnknownOperationException"),
    ],
)
def test_malformed_requests(sm_server: Server, target: str, body: bytes, code: str) -> None:
    status, got, _ = _error(_send(sm_server, target, body))
    assert (status, got) == (400, code)


def test_too_long_value_is_refused_without_echo(sm_server: Server) -> None:
    value = HIDDEN + "x" * 65_536
    body = json.dumps({"Name": "too/long", "SecretString": value}).encode()
    status, code, message = _error(_send(sm_server, "secretsmanager.CreateSecret", body))
    assert (status, code) == (400, "ValidationException")
    assert "secretString" in message and HIDDEN not in message


def test_largest_value_is_accepted(sm_server: Server) -> None:
    value = "v" * 65_536
    body = json.dumps({"Name": "just/fits", "SecretString": value}).encode()
    assert _send(sm_server, "secretsmanager.CreateSecret", body).status == 200
    got = _send(sm_server, "secretsmanager.GetSecretValue", b'{"SecretId": "just/fits"}')
    assert got.json["SecretString"] == value


# What any operation may answer besides the errors its model lists (protocol, authorization).
COMMON = {
    "AccessDeniedException",
    "SerializationException",
    "ValidationException",
    "UnknownOperationException",
    "ThrottlingException",
}
BODIES = [b"", b"{}", b"null", b"[]", b"7", b'{"SecretId": {}}', b'{"SecretId": "x", "Tags": 3}']


@pytest.mark.parametrize("operation", operation_names())
def test_no_operation_answers_a_500(sm_server: Server, operation: str) -> None:
    for body in BODIES:
        resp = _send(sm_server, f"secretsmanager.{operation}", body)
        assert resp.status < 500, (operation, body, resp.body)
        if resp.status != 200:
            assert resp.json["__type"] in COMMON | set(operation_errors(operation)), resp.body
