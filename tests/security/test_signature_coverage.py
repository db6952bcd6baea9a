"""Attacks on what a SigV4 signature covers: unsigned ``X-Amz-Target``, unsigned
``Content-Type``, ``UNSIGNED-PAYLOAD``, and a leaked presigned URL replayed as another
operation.

AWS rule (every service but S3): the canonical request's payload hash is the SHA-256 of the
body that was sent, and every ``x-amz-*`` header the request carries must be one of the
``SignedHeaders``; a header that is not is refused with ``InvalidSignatureException`` ("'<name>'
must be a 'SignedHeader' in the AWS Authorization."), a payload hash that is not the body's with
the signature mismatch message. openkms also requires ``Content-Type`` to be signed (see
docs/configuration.md, ``allow_unsigned_content_type``).
"""

from __future__ import annotations

import json
from typing import Any

from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.conformance import JSON_CONTENT_TYPE, RawResponse, kms_headers, send
from tests.conftest import Server
from tests.security import send_url

SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)


class _Signer(SigV4Auth):
    """botocore's signer, but signing only ``signed`` headers and, if given, ``payload`` as the
    payload hash: what a careless or hostile client can produce."""

    def __init__(
        self, creds: Credentials, service: str, region: str, signed: set[str], payload: str | None
    ) -> None:
        super().__init__(creds, service, region)
        self._only = signed
        self._payload = payload

    def headers_to_sign(self, request: Any) -> Any:
        headers = super().headers_to_sign(request)
        for name in list(headers.keys()):
            if name.lower() not in self._only:
                del headers[name]
        return headers

    def payload(self, request: Any) -> str:
        return self._payload if self._payload is not None else str(super().payload(request))


class _LeakedUrlSigner(SigV4QueryAuth):
    """A presigned URL whose payload hash is UNSIGNED-PAYLOAD (S3-style presigning)."""

    def payload(self, request: Any) -> str:
        return "UNSIGNED-PAYLOAD"


def _sign(
    server: Server,
    body: bytes,
    headers: dict[str, str],
    *,
    signed: set[str],
    payload: str | None = None,
    service: str = "kms",
) -> dict[str, str]:
    url = server.endpoint + "/"
    request = AWSRequest(method="POST", url=url, data=body, headers=dict(headers))
    creds = Credentials(server.access_key_id, server.secret_access_key)
    _Signer(creds, service, server.region, signed, payload).add_auth(request)
    return dict(request.prepare().headers.items())


def _error(resp: RawResponse) -> tuple[str | None, str]:
    try:
        return resp.json.get("__type"), str(resp.json.get("message", ""))
    except ValueError:
        return resp.error_type, resp.body.decode("utf-8", "replace")


def test_leaked_presigned_describe_key_url_replayed_as_schedule_key_deletion(
    server: Server, kms: Any
) -> None:
    """A presigned DescribeKey URL (signed headers: host; payload UNSIGNED-PAYLOAD) is sent as a
    POST with ``X-Amz-Target: TrentService.ScheduleKeyDeletion``. AWS: the target header is an
    ``x-amz-*`` header outside SignedHeaders, and the payload hash must be the body's SHA-256,
    so the request is refused and the key stays Enabled."""
    key_id = kms.create_key(Description="presign victim")["KeyMetadata"]["KeyId"]
    request = AWSRequest(method="POST", url=server.endpoint + "/", headers={})
    creds = Credentials(server.access_key_id, server.secret_access_key)
    _LeakedUrlSigner(creds, "kms", server.region, expires=3600).add_auth(request)
    leaked_url = request.prepare().url

    body = json.dumps({"KeyId": key_id, "PendingWindowInDays": 7}).encode()
    headers = {
        **kms_headers("ScheduleKeyDeletion"),
        "X-Amz-Content-Sha256": "UNSIGNED-PAYLOAD",
    }
    resp = send_url(leaked_url, body, headers)
    code, _ = _error(resp)
    assert resp.status == 400, (resp.status, resp.body)
    assert code == "InvalidSignatureException", resp.body
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"


def test_unsigned_x_amz_target_is_refused(server: Server) -> None:
    """A signature over host and x-amz-date only: whoever holds the request may change the
    operation. AWS: every x-amz-* header present must be signed."""
    headers = _sign(
        server, b"{}", kms_headers("ListKeys"), signed={"host", "x-amz-date", "content-type"}
    )
    resp = send(server.endpoint + "/", b"{}", headers)
    code, message = _error(resp)
    assert (resp.status, code) == (400, "InvalidSignatureException"), resp.body
    assert message == "'X-Amz-Target' must be a 'SignedHeader' in the AWS Authorization."


def test_unsigned_x_amz_security_token_or_other_amz_header_is_refused(server: Server) -> None:
    """Any x-amz-* header, not only the target: here X-Amz-Meta-Whatever rides along unsigned."""
    extra = {**kms_headers("ListKeys"), "X-Amz-Meta-Whatever": "1"}
    headers = _sign(
        server, b"{}", extra, signed={"host", "x-amz-date", "content-type", "x-amz-target"}
    )
    resp = send(server.endpoint + "/", b"{}", headers)
    code, message = _error(resp)
    assert (resp.status, code) == (400, "InvalidSignatureException"), resp.body
    assert message == "'X-Amz-Meta-Whatever' must be a 'SignedHeader' in the AWS Authorization."


def test_unsigned_content_type_is_refused(server: Server) -> None:
    """Content-Type outside the signature (openkms requires it signed by default)."""
    headers = _sign(
        server, b"{}", kms_headers("ListKeys"), signed={"host", "x-amz-date", "x-amz-target"}
    )
    resp = send(server.endpoint + "/", b"{}", headers)
    code, message = _error(resp)
    assert (resp.status, code) == (400, "InvalidSignatureException"), resp.body
    assert message == "'Content-Type' must be a 'SignedHeader' in the AWS Authorization."


def test_unsigned_payload_lets_no_body_through(server: Server, kms: Any) -> None:
    """Everything signed, but the payload hash is UNSIGNED-PAYLOAD, so the body could be anything.
    AWS (outside S3) hashes the body itself: the signature does not match."""
    key_id = kms.create_key(Description="unsigned payload victim")["KeyMetadata"]["KeyId"]
    body = json.dumps({"KeyId": key_id, "PendingWindowInDays": 7}).encode()
    headers = {**kms_headers("ScheduleKeyDeletion"), "X-Amz-Content-Sha256": "UNSIGNED-PAYLOAD"}
    signed = _sign(
        server,
        body,
        headers,
        signed={"host", "x-amz-date", "content-type", "x-amz-target", "x-amz-content-sha256"},
        payload="UNSIGNED-PAYLOAD",
    )
    resp = send(server.endpoint + "/", body, signed)
    code, message = _error(resp)
    assert (resp.status, code) == (400, "InvalidSignatureException"), resp.body
    assert message == SIGNATURE_MISMATCH
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"


def test_unsigned_payload_on_the_query_protocol(server: Server) -> None:
    """The same rule for STS (Query protocol): UNSIGNED-PAYLOAD does not verify."""
    body = b"Action=GetCallerIdentity&Version=2011-06-15"
    headers = {
        "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
        "X-Amz-Content-Sha256": "UNSIGNED-PAYLOAD",
    }
    signed = _sign(
        server,
        body,
        headers,
        signed={"host", "x-amz-date", "content-type", "x-amz-content-sha256"},
        payload="UNSIGNED-PAYLOAD",
        service="sts",
    )
    resp = send(server.endpoint + "/", body, signed)
    assert resp.status == 403, (resp.status, resp.body)
    assert b"<Code>SignatureDoesNotMatch</Code>" in resp.body


def test_fully_signed_requests_still_work(server: Server) -> None:
    """The rule refuses nothing botocore sends: all headers signed, payload hash of the body."""
    headers = _sign(
        server,
        b"{}",
        {"Content-Type": JSON_CONTENT_TYPE, "X-Amz-Target": "TrentService.ListKeys"},
        signed={"host", "x-amz-date", "content-type", "x-amz-target"},
    )
    resp = send(server.endpoint + "/", b"{}", headers)
    assert resp.status == 200, resp.body
