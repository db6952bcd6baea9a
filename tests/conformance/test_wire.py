"""The JSON 1.1 wire protocol, spoken with raw HTTP: bodies, targets, limits, response headers."""

from __future__ import annotations

import http.client
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests.conformance import RawResponse, expect_error, kms_headers, send, sign

ONE_MIB = 1024 * 1024


@pytest.fixture
def signed_call(server):
    """POSTs ``body`` to ``TrentService.<operation>``, signed with the session account."""

    def call(operation: str, body: bytes, **headers: str) -> RawResponse:
        url = server.endpoint + "/"
        all_headers = {**kms_headers(operation), **headers}
        signed = sign(
            url,
            body,
            all_headers,
            access_key_id=server.access_key_id,
            secret_access_key=server.secret_access_key,
        )
        return send(url, body, signed)

    return call


def assert_error_shape(resp: RawResponse, code: str, status: int = 400) -> dict[str, str]:
    assert resp.status == status, resp.body
    assert resp.error_type == code
    assert resp.headers["content-type"].startswith("application/x-amz-json-1.1")
    body = resp.json
    # An error AWS sends without a message has no ``message`` member at all, never an empty one.
    assert set(body) in ({"__type", "message"}, {"__type"}), body
    assert body["__type"] == code
    assert "message" not in body or (isinstance(body["message"], str) and body["message"])
    assert_request_id(resp)
    return body


def assert_request_id(resp: RawResponse) -> None:
    rid = resp.request_id
    assert rid, f"no x-amzn-RequestId on a {resp.status} response"
    uuid.UUID(rid)  # AWS's request ids are UUIDs


# --- success --------------------------------------------------------------------------------------
def test_signed_list_keys_succeeds_with_request_id(signed_call) -> None:
    resp = signed_call("ListKeys", b"{}")
    assert resp.status == 200, resp.body
    assert resp.error_type is None
    assert_request_id(resp)
    assert set(resp.json) >= {"Keys", "Truncated"}


def test_empty_body_is_an_empty_request(signed_call) -> None:
    resp = signed_call("ListKeys", b"")
    assert resp.status == 200, resp.body


def test_request_ids_are_unique(signed_call) -> None:
    ids = {signed_call("ListKeys", b"{}").request_id for _ in range(5)}
    assert len(ids) == 5


def test_boto3_sees_the_request_id_header(kms) -> None:
    meta = kms.list_keys(Limit=1)["ResponseMetadata"]
    assert meta["RequestId"] == meta["HTTPHeaders"]["x-amzn-requestid"]
    uuid.UUID(meta["RequestId"])


# --- malformed bodies ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [b"{bad", b'{"Limit": 1', b"\xff\xfe", b'{"Limit": 1}}'],
    ids=["unterminated", "truncated", "not-utf8", "trailing"],
)
def test_malformed_json_is_a_serialization_exception(signed_call, body: bytes) -> None:
    resp = signed_call("ListKeys", body)
    assert_error_shape(resp, "SerializationException")


@pytest.mark.parametrize("body", [b"[]", b'["Limit"]', b'"a string"', b"42", b"true", b"null"])
def test_body_that_is_not_an_object_is_a_serialization_exception(signed_call, body: bytes) -> None:
    resp = signed_call("ListKeys", body)
    assert_error_shape(resp, "SerializationException")


def test_json_array_body_has_corals_message(signed_call) -> None:
    resp = signed_call("ListKeys", b"[]")
    body = assert_error_shape(resp, "SerializationException")
    assert body["message"] == "Start of list found where not expected"


def test_member_of_the_wrong_type_is_a_serialization_exception(signed_call) -> None:
    resp = signed_call("ListKeys", b'{"Limit": "three"}')
    assert_error_shape(resp, "SerializationException")


# --- targets -------------------------------------------------------------------------------------
@pytest.mark.parametrize("operation", ["NoSuchThing", "listKeys", "ListKeys2", ""])
def test_unknown_operation(signed_call, operation: str) -> None:
    resp = signed_call(operation, b"{}")
    assert_error_shape(resp, "UnknownOperationException")


@pytest.mark.parametrize("target", ["OtherService.ListKeys", "ListKeys", ""])
def test_unknown_target_prefix(server, target: str) -> None:
    url = server.endpoint + "/"
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target}
    signed = sign(
        url,
        b"{}",
        headers,
        access_key_id=server.access_key_id,
        secret_access_key=server.secret_access_key,
    )
    resp = send(url, b"{}", signed)
    assert_error_shape(resp, "UnknownOperationException")


def test_missing_target_header(server) -> None:
    url = server.endpoint + "/"
    headers = {"Content-Type": "application/x-amz-json-1.1"}
    signed = sign(
        url,
        b"{}",
        headers,
        access_key_id=server.access_key_id,
        secret_access_key=server.secret_access_key,
    )
    resp = send(url, b"{}", signed)
    assert_error_shape(resp, "UnknownOperationException")


# --- body size -----------------------------------------------------------------------------------
def test_body_over_one_mib_is_413_with_json_error(signed_call) -> None:
    body = b'{"Plaintext": "' + b"A" * (ONE_MIB + 16) + b'"}'
    resp = signed_call("Encrypt", body)
    assert_error_shape(resp, "RequestEntityTooLarge", status=413)


def test_unsigned_body_over_one_mib_is_413_not_500(server) -> None:
    resp = send(server.endpoint + "/", b"x" * (ONE_MIB + 1), kms_headers("ListKeys"))
    assert_error_shape(resp, "RequestEntityTooLarge", status=413)


def test_chunked_body_over_one_mib_is_413(server) -> None:
    """Without a Content-Length the limit is enforced while reading."""

    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b"x" * 65536

    parts = urlsplit(server.endpoint)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request(
            "POST", "/", body=chunks(), headers=kms_headers("ListKeys"), encode_chunked=True
        )
        raw = conn.getresponse()
        resp = RawResponse(raw.status, {k.lower(): v for k, v in raw.getheaders()}, raw.read())
    finally:
        conn.close()
    assert_error_shape(resp, "RequestEntityTooLarge", status=413)


def test_lying_content_length_is_413(server) -> None:
    parts = urlsplit(server.endpoint)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.putrequest("POST", "/")
        for name, value in kms_headers("ListKeys").items():
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(64 * ONE_MIB))
        conn.endheaders()
        conn.send(b"{}")
        raw = conn.getresponse()
        resp = RawResponse(raw.status, {k.lower(): v for k, v in raw.getheaders()}, raw.read())
    finally:
        conn.close()
    assert_error_shape(resp, "RequestEntityTooLarge", status=413)


def test_body_just_under_the_limit_is_not_413(signed_call) -> None:
    # A valid JSON document of nearly 1 MiB: it reaches validation (unknown members are ignored).
    filler = b"A" * (ONE_MIB - 64)
    resp = signed_call("ListKeys", b'{"Ignored": "' + filler + b'"}')
    assert resp.status == 200, resp.body[:300]


# --- every error carries the headers ---------------------------------------------------------
def test_validation_error_shape(signed_call) -> None:
    resp = signed_call("DescribeKey", b"{}")
    body = assert_error_shape(resp, "ValidationException")
    assert body["message"] == (
        "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: "
        "Member must not be null"
    )


def test_not_found_error_shape(signed_call) -> None:
    resp = signed_call(
        "DescribeKey", b'{"KeyId": "alias/does-not-exist-' + uuid.uuid4().hex.encode() + b'"}'
    )
    assert_error_shape(resp, "NotFoundException")


def test_auth_error_shape(server) -> None:
    resp = send(server.endpoint + "/", b"{}", kms_headers("ListKeys"))
    assert_error_shape(resp, "MissingAuthenticationTokenException")


def test_health_endpoint(server) -> None:
    parts = urlsplit(server.endpoint)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request("GET", "/healthz")
        raw = conn.getresponse()
        assert raw.status == 200
        assert raw.getheader("x-amzn-RequestId")
        raw.read()
    finally:
        conn.close()


def test_boto3_sees_413_and_the_connection_stays_usable(server, kms) -> None:
    client = server.client(parameter_validation=False)
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    for _ in range(2):
        expect_error(
            "RequestEntityTooLarge",
            client.encrypt,
            KeyId=key_id,
            Plaintext=b"x" * (2 * ONE_MIB),
            status=413,
        )
        assert client.list_keys(Limit=1)["Keys"]
