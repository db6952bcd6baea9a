"""End-to-end conformance: boto3 and the AWS CLI against a real openkms server process.

Helpers shared by the conformance modules live here; the server and clients are fixtures in
``tests/conftest.py``.
"""

from __future__ import annotations

import datetime
import http.client
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

JSON_CONTENT_TYPE = "application/x-amz-json-1.1"


def expect_error(
    code: str,
    call: Callable[..., Any],
    *args: Any,
    message: str | None = None,
    status: int = 400,
    **kwargs: Any,
) -> ClientError:
    """Calls ``call`` and asserts it fails with AWS error ``code`` (and ``message`` exactly, when
    given) and HTTP ``status`` (400 for client faults: never a 500)."""
    with pytest.raises(ClientError) as caught:
        call(*args, **kwargs)
    error = caught.value.response["Error"]
    got_status = caught.value.response["ResponseMetadata"]["HTTPStatusCode"]
    assert error["Code"] == code, f"expected {code}, got {error['Code']}: {error.get('Message')}"
    assert got_status == status, f"{code} answered with HTTP {got_status}"
    if message is not None:
        assert error.get("Message") == message
    return caught.value


def unique_alias(prefix: str = "test") -> str:
    return f"alias/{prefix}-{uuid.uuid4().hex[:12]}"


# --- raw HTTP ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error_type(self) -> str | None:
        return self.headers.get("x-amzn-errortype")

    @property
    def request_id(self) -> str | None:
        return self.headers.get("x-amzn-requestid")


def sign(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    access_key_id: str,
    secret_access_key: str,
    region: str = "us-east-1",
    service: str = "kms",
    at: datetime.datetime | None = None,
) -> dict[str, str]:
    """SigV4-signs a POST as botocore would and returns the headers to send (``at`` signs as of
    another moment)."""
    request = AWSRequest(method="POST", url=url, data=body, headers=dict(headers))
    signer = SigV4Auth(Credentials(access_key_id, secret_access_key), service, region)
    if at is None:
        signer.add_auth(request)
    else:
        naive_utc = at.astimezone(datetime.UTC).replace(tzinfo=None)
        with mock.patch("botocore.auth.get_current_datetime", return_value=naive_utc):
            signer.add_auth(request)
    return {k: v for k, v in request.prepare().headers.items()}


def send(url: str, body: bytes, headers: Mapping[str, str], method: str = "POST") -> RawResponse:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        conn.request(method, parts.path or "/", body=body, headers=dict(headers))
        resp = conn.getresponse()
        data = resp.read()
        return RawResponse(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
    finally:
        conn.close()


def kms_headers(operation: str) -> dict[str, str]:
    return {"Content-Type": JSON_CONTENT_TYPE, "X-Amz-Target": f"TrentService.{operation}"}
