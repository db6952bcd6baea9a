"""SigV4 through the server: each way a signature can be wrong, with AWS's error types."""

from __future__ import annotations

import datetime
import time

import pytest
from botocore.exceptions import ClientError

from tests.conformance import RawResponse, expect_error, kms_headers, send, sign

SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)
INVALID_TOKEN = "The security token included in the request is invalid."


def signed(server, body: bytes = b"{}", operation: str = "ListKeys", **kwargs) -> tuple[str, dict]:
    url = server.endpoint + "/"
    options = {
        "access_key_id": server.access_key_id,
        "secret_access_key": server.secret_access_key,
        **kwargs,
    }
    return url, sign(url, body, kms_headers(operation), **options)


def assert_error(resp: RawResponse, code: str, message: str | None = None) -> str:
    assert resp.status == 400, (resp.status, resp.body)
    assert resp.error_type == code, resp.body
    body = resp.json
    assert body["__type"] == code
    assert resp.request_id
    if message is not None:
        assert body["message"] == message
    return str(body["message"])


def test_no_authorization_header(server) -> None:
    resp = send(server.endpoint + "/", b"{}", kms_headers("ListKeys"))
    assert_error(resp, "MissingAuthenticationTokenException", "Missing Authentication Token")


@pytest.mark.parametrize(
    "authorization",
    [
        "garbage",
        "AWS4-HMAC-SHA256",
        "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20240101/us-east-1/kms/aws4_request",
        "AWS4-HMAC-SHA256 Credential",
    ],
    ids=["word", "algorithm-only", "credential-only", "no-equals"],
)
def test_garbled_authorization(server, authorization: str) -> None:
    headers = {
        **kms_headers("ListKeys"),
        "Authorization": authorization,
        "X-Amz-Date": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
    }
    resp = send(server.endpoint + "/", b"{}", headers)
    assert_error(resp, "IncompleteSignatureException")


def test_unknown_access_key(server) -> None:
    url, headers = signed(server, access_key_id="AKIAUNKNOWNUNKNOWN00")
    assert_error(send(url, b"{}", headers), "UnrecognizedClientException", INVALID_TOKEN)


def test_unknown_access_key_through_boto3(server) -> None:
    client = server.client(access_key_id="AKIAUNKNOWNUNKNOWN00")
    expect_error("UnrecognizedClientException", client.list_keys, message=INVALID_TOKEN)


def test_wrong_secret(server) -> None:
    url, headers = signed(server, secret_access_key="not-the-secret")
    assert_error(send(url, b"{}", headers), "InvalidSignatureException", SIGNATURE_MISMATCH)


def test_wrong_secret_through_boto3(server) -> None:
    client = server.client(secret_access_key="not-the-secret")
    expect_error("InvalidSignatureException", client.list_keys, message=SIGNATURE_MISMATCH)


def test_signature_twenty_minutes_old_has_expired(server) -> None:
    at = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=20)
    url, headers = signed(server, at=at)
    message = assert_error(send(url, b"{}", headers), "InvalidSignatureException")
    stamp = at.strftime("%Y%m%dT%H%M%SZ")
    assert message.startswith(f"Signature expired: {stamp} is now earlier than "), message
    assert message.endswith(" - 15 min.)"), message


def test_signature_twenty_minutes_ahead_is_not_yet_current(server) -> None:
    at = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=20)
    url, headers = signed(server, at=at)
    message = assert_error(send(url, b"{}", headers), "InvalidSignatureException")
    assert message.startswith("Signature not yet current: "), message


def test_signature_ten_minutes_old_is_still_accepted(server) -> None:
    at = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=10)
    url, headers = signed(server, at=at)
    resp = send(url, b"{}", headers)
    assert resp.status == 200, resp.body


def test_body_tampered_after_signing(server) -> None:
    url, headers = signed(server, body=b'{"Limit": 5}')
    resp = send(url, b'{"Limit": 6}', headers)
    assert_error(resp, "InvalidSignatureException")


def test_target_tampered_after_signing(server) -> None:
    url, headers = signed(server, operation="ListKeys")
    headers["X-Amz-Target"] = "TrentService.ListAliases"
    assert_error(send(url, b"{}", headers), "InvalidSignatureException", SIGNATURE_MISMATCH)


def test_credential_scoped_to_s3(server) -> None:
    url, headers = signed(server, service="s3")
    message = assert_error(send(url, b"{}", headers), "InvalidSignatureException")
    assert "Credential should be scoped to correct service: 'kms'." in message


def test_credential_scoped_to_another_region_acts_in_that_region(server, kms) -> None:
    """The region of the credential scope is the region of the request, as on AWS."""
    key = kms.create_key()["KeyMetadata"]
    west = server.client(region="us-west-2")
    expect_error("NotFoundException", west.describe_key, KeyId=key["KeyId"])


def test_deleted_credentials_are_not_a_500(server) -> None:
    """Every auth failure is a 4xx client fault; boto3 must not retry it as a server fault."""
    client = server.client(access_key_id="AKIA" + "Z" * 16, secret_access_key="x")
    with pytest.raises(ClientError) as caught:
        client.describe_key(KeyId="alias/anything")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
