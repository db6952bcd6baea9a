"""The SigV4 verifier: AWS's error messages, botocore round trips, and the signing-key cache."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import boto3
import botocore.auth
import pytest
from botocore.auth import S3SigV4Auth, SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSPreparedRequest, AWSRequest, AWSResponse
from botocore.credentials import Credentials

from openkms.auth import sigv4
from openkms.auth.sigv4 import (
    ParsedAuthorization,
    SignedRequest,
    SigV4Verifier,
    VerifiedSignature,
)
from openkms.clock import FixedClock, SystemClock
from openkms.errors import (
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
    OpenKMSError,
    UnrecognizedClientException,
)

ACCESS_KEY_ID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
NEW_SECRET = "rotatedSecretKey/K7MDENG+bPxRfiCYEXAMPLEKEY"
SESSION_TOKEN = "FwoGZXIvYXdzEXAMPLEsessionTOKEN//////////wEaDAbc+def/ghi=="
SIGNED_AT = dt.datetime(2015, 8, 30, 12, 36, tzinfo=dt.UTC)
T0 = SIGNED_AT.timestamp()
AMZ_DATE = "20150830T123600Z"
ENDPOINT = "http://localhost:4566/"
KMS_BODY = b'{"KeyId": "alias/example", "Plaintext": "aGVsbG8="}'

SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)


# --- Fixtures and helpers ------------------------------------------------------------------
@pytest.fixture(autouse=True)
def frozen_botocore_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore signs at SIGNED_AT unless a test says otherwise."""

    def fixed(remove_tzinfo: bool = True) -> dt.datetime:
        return SIGNED_AT.replace(tzinfo=None) if remove_tzinfo else SIGNED_AT

    monkeypatch.setattr(botocore.auth, "get_current_datetime", fixed)


class Secrets:
    """A SecretLookup that counts its calls and whose secrets can be rotated."""

    def __init__(self, secrets: dict[str, str] | None = None) -> None:
        self.secrets = {ACCESS_KEY_ID: SECRET} if secrets is None else secrets
        self.calls = 0

    def __call__(self, access_key_id: str) -> bytes | None:
        self.calls += 1
        secret = self.secrets.get(access_key_id)
        return None if secret is None else secret.encode()


def never_called(access_key_id: str) -> bytes | None:
    raise AssertionError("the secret must not be looked up")


class ExplodingClock:
    def now(self) -> float:
        raise AssertionError("the clock must not be read")


def make_verifier(
    at: float = T0,
    lookup: Callable[[str], bytes | None] | None = None,
    *,
    max_skew_seconds: int = 900,
    signing_key_cache_size: int = 4096,
    allow_unsigned_payload: bool = True,
    derive: Callable[[bytes, str, str, str], bytes] | None = None,
) -> SigV4Verifier:
    return SigV4Verifier(
        Secrets() if lookup is None else lookup,
        FixedClock(at),
        max_skew_seconds=max_skew_seconds,
        signing_key_cache_size=signing_key_cache_size,
        derive=derive,
        allow_unsigned_payload=allow_unsigned_payload,
    )


def to_signed_request(prepared: AWSPreparedRequest | AWSRequest) -> SignedRequest:
    """The request as the server receives it, including the Host header urllib3 adds."""
    url = urlsplit(prepared.url)
    headers = [
        (name, value.decode() if isinstance(value, bytes) else str(value))
        for name, value in prepared.headers.items()
    ]
    if not any(name.lower() == "host" for name, _ in headers):
        headers.insert(0, ("Host", url.netloc))
    body = prepared.body if isinstance(prepared.body, bytes) else (prepared.body or "").encode()
    return SignedRequest(prepared.method, url.path or "/", url.query, headers, body)


def botocore_signed(
    *,
    token: str | None = None,
    secret: str = SECRET,
    body: bytes = KMS_BODY,
    url: str = ENDPOINT,
    region: str = "us-east-1",
    service: str = "kms",
    method: str = "POST",
    signer: type[SigV4Auth] = SigV4Auth,
    extra_headers: dict[str, str] | None = None,
    context: dict[str, object] | None = None,
) -> SignedRequest:
    """A KMS-style JSON request signed by botocore's own SigV4 implementation."""
    headers = {
        "X-Amz-Target": "TrentService.Encrypt",
        "Content-Type": "application/x-amz-json-1.1",
        "User-Agent": "Boto3/test",
        **(extra_headers or {}),
    }
    request = AWSRequest(method=method, url=url, data=body, headers=headers)
    request.context.update(context or {})
    signer(Credentials(ACCESS_KEY_ID, secret, token), service, region).add_auth(request)
    return to_signed_request(request.prepare())


def replace_header(request: SignedRequest, name: str, value: str | None) -> SignedRequest:
    headers = [(n, v) for n, v in request.headers if n.lower() != name.lower()]
    if value is not None:
        headers.append((name, value))
    return dataclasses.replace(request, headers=headers)


def header(request: SignedRequest, name: str) -> str:
    return next(v for n, v in request.headers if n.lower() == name.lower())


def expect(error: type[OpenKMSError], message: str, verify: Callable[[], object]) -> OpenKMSError:
    with pytest.raises(error) as caught:
        verify()
    assert caught.value.message == message
    assert str(caught.value) == message
    return caught.value


@pytest.fixture
def signed() -> SignedRequest:
    return botocore_signed()


# --- Round trips with botocore -------------------------------------------------------------
@pytest.mark.parametrize("token", [None, SESSION_TOKEN], ids=["long-term", "session-token"])
def test_botocore_signed_kms_request_is_verified(token: str | None) -> None:
    request = botocore_signed(token=token)
    assert header(request, "X-Amz-Date") == AMZ_DATE
    verified = make_verifier().verify(request)
    assert verified == VerifiedSignature(
        access_key_id=ACCESS_KEY_ID,
        region="us-east-1",
        service="kms",
        scope_date="20150830",
        signed_at=T0,
        session_token=token,
    )


@pytest.mark.parametrize("token", [None, SESSION_TOKEN], ids=["long-term", "session-token"])
def test_boto3_client_requests_are_verified_as_sent(
    token: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A real boto3 KMS client, at the real time, caught just before its request hits the wire.
    monkeypatch.undo()
    verifier = SigV4Verifier(Secrets(), SystemClock())
    seen: list[VerifiedSignature] = []

    class Body:
        def __init__(self, data: bytes) -> None:
            self.data = data

        def stream(self, **_: object) -> Iterator[bytes]:
            yield self.data

    def answer(request: AWSPreparedRequest, **_: object) -> AWSResponse:
        seen.append(verifier.verify(to_signed_request(request)))
        reply = {"Keys": [], "Truncated": False}
        return AWSResponse(
            request.url,
            200,
            {"Content-Type": "application/x-amz-json-1.1"},
            Body(json.dumps(reply).encode()),
        )

    client = boto3.client(
        "kms",
        region_name="eu-west-1",
        endpoint_url="http://127.0.0.1:4566",
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET,
        aws_session_token=token,
    )
    client.meta.events.register("before-send.kms.*", answer)
    client.list_keys(Limit=10)
    assert len(seen) == 1
    assert seen[0].access_key_id == ACCESS_KEY_ID
    assert (seen[0].region, seen[0].service) == ("eu-west-1", "kms")
    assert seen[0].session_token == token


def test_botocore_presigned_url_is_verified_until_it_expires() -> None:
    request = AWSRequest(method="GET", url=f"{ENDPOINT}?Action=ListKeys&Version=2014-11-01")
    SigV4QueryAuth(
        Credentials(ACCESS_KEY_ID, SECRET, SESSION_TOKEN), "kms", "us-east-1", 300
    ).add_auth(request)
    signed = to_signed_request(request.prepare())
    verified = make_verifier(at=T0 + 300).verify(signed)
    assert verified.session_token == SESSION_TOKEN
    assert make_verifier().parse(signed).expires == 300
    expect(
        InvalidSignatureException,
        "Request has expired",
        lambda: make_verifier(at=T0 + 301).verify(signed),
    )


def test_botocore_signed_query_string_path_and_date_header_are_verified() -> None:
    request = botocore_signed(
        url="http://localhost:4566/caf%C3%A9//a%20b/./c?b=2&a=1&a=0&c=x%20y%2Fz~&empty=",
        method="GET",
        body=b"",
    )
    make_verifier().verify(request)
    # With a Date header (and no X-Amz-Date) botocore signs the RFC 1123 date it sends.
    dated = botocore_signed(extra_headers={"Date": "whatever"})
    assert header(dated, "Date").startswith("Sun, 30 Aug 2015 12:36:00 ")
    assert not any(n.lower() == "x-amz-date" for n, _ in dated.headers)
    assert make_verifier().verify(dated).signed_at == T0


def test_signed_payload_hash_is_checked_against_the_body() -> None:
    request = botocore_signed(signer=S3SigV4Auth)
    assert header(request, "X-Amz-Content-SHA256") == hashlib.sha256(KMS_BODY).hexdigest()
    make_verifier().verify(request)
    expect(
        InvalidSignatureException,
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
        lambda: make_verifier().verify(dataclasses.replace(request, body=b"{}")),
    )


def test_unsigned_payload_is_accepted_unless_refused() -> None:
    request = botocore_signed(
        url="https://localhost:4566/", context={"payload_signing_enabled": False}
    )
    assert header(request, "X-Amz-Content-SHA256") == "UNSIGNED-PAYLOAD"
    make_verifier().verify(dataclasses.replace(request, body=b"anything"))
    expect(
        InvalidSignatureException,
        "This server requires a signed payload (x-amz-content-sha256).",
        lambda: make_verifier(allow_unsigned_payload=False).verify(request),
    )


def test_an_unusable_payload_hash_is_refused(signed: SignedRequest) -> None:
    request = replace_header(signed, "X-Amz-Content-SHA256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
    expect(
        InvalidSignatureException,
        "x-amz-content-sha256 must be UNSIGNED-PAYLOAD or a valid sha256 value.",
        lambda: make_verifier().verify(request),
    )


# --- Errors, with AWS's messages -----------------------------------------------------------
def test_no_authentication_at_all(signed: SignedRequest) -> None:
    for request in (
        replace_header(signed, "Authorization", None),
        replace_header(signed, "Authorization", "   "),
    ):
        for check_signature in (True, False):
            expect(
                MissingAuthenticationTokenException,
                "Missing Authentication Token",
                lambda r=request, c=check_signature: make_verifier().verify(r, check_signature=c),
            )


def test_an_authorization_header_with_nothing_in_it() -> None:
    request = SignedRequest("POST", "/", "", [("Host", "localhost"), ("Authorization", "a")], b"")
    expect(
        IncompleteSignatureException,
        "Authorization header requires 'Credential' parameter. "
        "Authorization header requires 'Signature' parameter. "
        "Authorization header requires 'SignedHeaders' parameter. "
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
        "Authorization=a",
        lambda: make_verifier().verify(request),
    )


def test_an_authorization_header_missing_some_parts(signed: SignedRequest) -> None:
    value = f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/20150830/us-east-1/kms/aws4_request"
    expect(
        IncompleteSignatureException,
        "Authorization header requires 'Signature' parameter. "
        "Authorization header requires 'SignedHeaders' parameter. "
        f"Authorization={value}",
        lambda: make_verifier().verify(replace_header(signed, "Authorization", value)),
    )
    value += ", SignedHeaders=host;x-amz-date, Signature="
    expect(
        IncompleteSignatureException,
        f"Authorization header requires 'Signature' parameter. Authorization={value}",
        lambda: make_verifier().verify(replace_header(signed, "Authorization", value)),
    )


def test_a_request_without_a_date(signed: SignedRequest) -> None:
    request = replace_header(signed, "X-Amz-Date", None)
    expect(
        IncompleteSignatureException,
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
        f"Authorization={header(signed, 'Authorization')}",
        lambda: make_verifier().verify(request, check_signature=False),
    )


def test_a_bearer_token_instead_of_a_signature(signed: SignedRequest) -> None:
    request = replace_header(signed, "Authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig")
    expect(
        IncompleteSignatureException,
        "'eyJhbGciOiJIUzI1NiJ9.e30.sig' not a valid key=value pair (missing equal-sign) in "
        "Authorization header: 'Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig'.",
        lambda: make_verifier().verify(request),
    )


def test_an_unsupported_algorithm(signed: SignedRequest) -> None:
    value = header(signed, "Authorization").replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512")
    expect(
        IncompleteSignatureException,
        "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512' (only AWS4-HMAC-SHA256 for now).",
        lambda: make_verifier().verify(replace_header(signed, "Authorization", value)),
    )


@pytest.mark.parametrize("date", ["2015-08-30T12:36:00Z", "20150230T123600Z", "20150830T1236Z"])
def test_a_date_not_in_basic_format(signed: SignedRequest, date: str) -> None:
    expect(
        IncompleteSignatureException,
        f"Date must be in ISO-8601 'basic format'. Got '{date}'. "
        "See http://en.wikipedia.org/wiki/ISO_8601",
        lambda: make_verifier().verify(replace_header(signed, "X-Amz-Date", date)),
    )


def with_credential(request: SignedRequest, credential: str) -> SignedRequest:
    value = header(request, "Authorization")
    old = value.split("Credential=", 1)[1].split(",", 1)[0]
    return replace_header(request, "Authorization", value.replace(old, credential))


def test_a_credential_without_five_elements(signed: SignedRequest) -> None:
    expect(
        IncompleteSignatureException,
        "Credential must have exactly 5 slash-delimited elements, "
        "e.g. keyid/date/region/service/term, got 'AKIDEXAMPLE/20150830/us-east-1/kms'",
        lambda: make_verifier().verify(
            with_credential(signed, "AKIDEXAMPLE/20150830/us-east-1/kms")
        ),
    )


def test_trailing_slashes_after_the_credential_are_ignored(signed: SignedRequest) -> None:
    request = with_credential(signed, "AKIDEXAMPLE/20150830/us-east-1/kms/aws4_request//")
    make_verifier().verify(request)


def test_a_scope_date_that_is_not_the_request_date(signed: SignedRequest) -> None:
    expect(
        InvalidSignatureException,
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
        "HTTP: '20150831' != '20150830', from '20150830T123600Z'.",
        lambda: make_verifier().verify(
            with_credential(signed, "AKIDEXAMPLE/20150831/us-east-1/kms/aws4_request")
        ),
    )


def test_every_scope_problem_is_reported_at_once_in_aws_order(signed: SignedRequest) -> None:
    request = with_credential(signed, "AKIDEXAMPLE/2015/mars-1/kmz/aws5_request")
    expect(
        InvalidSignatureException,
        "Credential should be scoped to a valid region, not 'mars-1'. "
        "Credential should be scoped to correct service: 'kms'. "
        "Credential should be scoped with a valid terminator: 'aws4_request', not "
        "'aws5_request'. "
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
        "HTTP: '2015' != '20150830', from '20150830T123600Z'.",
        lambda: make_verifier().verify(
            request, expected_region="us-east-1", expected_service="kms"
        ),
    )
    # Without an expected region and service the verifier only reports what it can know.
    expect(
        InvalidSignatureException,
        "Credential should be scoped with a valid terminator: 'aws4_request', not "
        "'aws5_request'. "
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
        "HTTP: '2015' != '20150830', from '20150830T123600Z'.",
        lambda: make_verifier().verify(request),
    )


def test_scope_region_and_service_are_returned_or_checked(signed: SignedRequest) -> None:
    assert make_verifier().verify(signed, expected_region="us-east-1", expected_service="kms")
    expect(
        InvalidSignatureException,
        "Credential should be scoped to correct service: 'sts'.",
        lambda: make_verifier().verify(signed, expected_service="sts"),
    )
    expect(
        InvalidSignatureException,
        "Credential should be scoped to a valid region, not 'us-east-1'.",
        lambda: make_verifier().verify(signed, expected_region="eu-west-1", check_signature=False),
    )


def test_host_must_be_signed() -> None:
    # A signer that leaves Host out: strip it from what botocore signs, then send it anyway.
    request = botocore_signed()
    value = header(request, "Authorization")
    unsigned = value.replace("SignedHeaders=content-type;host;", "SignedHeaders=content-type;")
    assert unsigned != value
    expect(
        InvalidSignatureException,
        "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
        lambda: make_verifier().verify(replace_header(request, "Authorization", unsigned)),
    )


def test_an_unknown_access_key(signed: SignedRequest) -> None:
    expect(
        UnrecognizedClientException,
        "The security token included in the request is invalid.",
        lambda: make_verifier(lookup=Secrets({})).verify(signed),
    )
    expect(
        UnrecognizedClientException,
        "The security token included in the request is invalid.",
        lambda: make_verifier().verify(
            with_credential(signed, "/20150830/us-east-1/kms/aws4_request"),
            check_signature=False,
        ),
    )


def test_a_wrong_signature(signed: SignedRequest) -> None:
    for wrong in (
        botocore_signed(secret=NEW_SECRET),
        replace_header(signed, "X-Amz-Target", "TrentService.Decrypt"),
        dataclasses.replace(signed, body=KMS_BODY + b" "),
        dataclasses.replace(signed, method="PUT"),
        dataclasses.replace(signed, path="/other"),
        dataclasses.replace(signed, query="a=1"),
    ):
        expect(
            InvalidSignatureException, SIGNATURE_MISMATCH, lambda r=wrong: make_verifier().verify(r)
        )


def test_a_signature_that_is_not_hex_is_merely_wrong(signed: SignedRequest) -> None:
    value = header(signed, "Authorization").rsplit("Signature=", 1)[0] + "Signature=ünïcødé"
    expect(
        InvalidSignatureException,
        SIGNATURE_MISMATCH,
        lambda: make_verifier().verify(replace_header(signed, "Authorization", value)),
    )


def test_a_signature_too_old(signed: SignedRequest) -> None:
    make_verifier(at=T0 + 900).verify(signed)
    expect(
        InvalidSignatureException,
        "Signature expired: 20150830T123600Z is now earlier than 20150830T123601Z "
        "(20150830T125101Z - 15 min.)",
        lambda: make_verifier(at=T0 + 901.7).verify(signed),
    )


def test_a_signature_from_the_future(signed: SignedRequest) -> None:
    make_verifier(at=T0 - 900).verify(signed)
    expect(
        InvalidSignatureException,
        "Signature not yet current: 20150830T123600Z is still later than 20150830T123559Z "
        "(20150830T122059Z + 15 min.)",
        lambda: make_verifier(at=T0 - 901).verify(signed),
    )


def test_the_allowed_skew_is_configurable(signed: SignedRequest) -> None:
    expect(
        InvalidSignatureException,
        "Signature expired: 20150830T123600Z is now earlier than 20150830T123601Z "
        "(20150830T124101Z - 5 min.)",
        lambda: make_verifier(at=T0 + 301, max_skew_seconds=300).verify(signed),
    )


def test_the_clock_is_checked_before_the_rest_of_the_signature(signed: SignedRequest) -> None:
    # AWS's order: the date's format, then its age, then Host, algorithm, credential, key.
    value = header(signed, "Authorization").replace(
        "SignedHeaders=content-type;host;", "SignedHeaders="
    )
    request = replace_header(signed, "Authorization", value)
    with pytest.raises(InvalidSignatureException, match=r"^Signature expired"):
        make_verifier(at=T0 + 3600).verify(request)
    with pytest.raises(InvalidSignatureException, match=r"^'Host' or ':authority'"):
        make_verifier(at=T0 + 3600).verify(request, check_signature=False)


# --- Presigned URLs ------------------------------------------------------------------------
def presigned(expires: int | None = 60, **extra: str) -> SignedRequest:
    params = [
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
        ("X-Amz-Credential", f"{ACCESS_KEY_ID}%2F20150830%2Fus-east-1%2Fkms%2Faws4_request"),
        ("X-Amz-Date", AMZ_DATE),
        ("X-Amz-SignedHeaders", "host"),
        ("X-Amz-Signature", "0" * 64),
    ]
    if expires is not None:
        params.append(("X-Amz-Expires", str(expires)))
    params += list(extra.items())
    query = "&".join(f"{k}={v}" for k, v in params)
    return SignedRequest("GET", "/", query, [("Host", "localhost:4566")], b"")


def test_presigned_and_header_signature_together(signed: SignedRequest) -> None:
    request = dataclasses.replace(signed, query="X-Amz-Algorithm=AWS4-HMAC-SHA256")
    expect(
        InvalidSignatureException,
        "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header.",
        lambda: make_verifier().verify(request),
    )


def test_presigned_url_missing_its_parameters() -> None:
    request = SignedRequest("GET", "/", "X-Amz-Algorithm", [("Host", "localhost")], b"")
    expect(
        IncompleteSignatureException,
        "AWS query-string parameters must include 'X-Amz-Algorithm'. "
        "AWS query-string parameters must include 'X-Amz-Credential'. "
        "AWS query-string parameters must include 'X-Amz-Signature'. "
        "AWS query-string parameters must include 'X-Amz-SignedHeaders'. "
        "AWS query-string parameters must include 'X-Amz-Date'. "
        "Re-examine the query-string parameters.",
        lambda: make_verifier().verify(request),
    )


@pytest.mark.parametrize(
    ("expires", "message"),
    [
        ("soon", "X-Amz-Expires should be a number"),
        ("", "X-Amz-Expires should be a number"),
        ("-1", "X-Amz-Expires must be non-negative"),
        (
            "604801",
            "X-Amz-Expires must be less than a week (in seconds); that is, the given "
            "X-Amz-Expires must be less than 604800 seconds",
        ),
    ],
)
def test_presigned_url_with_a_bad_lifetime(expires: str, message: str) -> None:
    request = presigned(expires=None, **{"X-Amz-Expires": expires})
    expect(IncompleteSignatureException, message, lambda: make_verifier().verify(request))


def test_presigned_url_lifetime_and_wrong_signature() -> None:
    expect(
        InvalidSignatureException,
        "Request has expired",
        lambda: make_verifier(at=T0 + 61).verify(presigned(expires=60)),
    )
    expect(
        InvalidSignatureException,
        SIGNATURE_MISMATCH,
        lambda: make_verifier(at=T0 + 60).verify(presigned(expires=60)),
    )
    # Without X-Amz-Expires (as non-S3 services allow) the ordinary skew applies.
    with pytest.raises(InvalidSignatureException, match=r"^Signature expired"):
        make_verifier(at=T0 + 901).verify(presigned(expires=None))


def test_presigned_url_parsed_without_a_secret_or_a_clock() -> None:
    verifier = SigV4Verifier(never_called, ExplodingClock())
    parsed = verifier.parse(presigned(expires=60, **{"X-Amz-Security-Token": "a%2Bb%2Fc%3D"}))
    assert parsed == ParsedAuthorization(
        presigned=True,
        access_key_id=ACCESS_KEY_ID,
        scope_date="20150830",
        region="us-east-1",
        service="kms",
        signed_headers=("host",),
        signature="0" * 64,
        amz_date=AMZ_DATE,
        signed_at=T0,
        expires=60,
        session_token="a+b/c=",
        content_sha256=None,
    )
    assert parsed.credential_scope == "20150830/us-east-1/kms/aws4_request"


# --- The accept-any-credentials mode -------------------------------------------------------
def test_without_a_signature_check_neither_secret_nor_clock_is_used(signed: SignedRequest) -> None:
    verifier = SigV4Verifier(never_called, ExplodingClock())
    tampered = replace_header(
        dataclasses.replace(signed, body=b"changed"), "X-Amz-Target", "TrentService.Decrypt"
    )
    verified = verifier.verify(tampered, check_signature=False)
    assert verified.access_key_id == ACCESS_KEY_ID
    assert (verified.region, verified.service, verified.scope_date) == (
        "us-east-1",
        "kms",
        "20150830",
    )
    assert verifier.parse(signed).signed_headers == (
        "content-type",
        "host",
        "x-amz-date",
        "x-amz-target",
    )


def test_without_a_signature_check_the_signature_must_still_be_well_formed(
    signed: SignedRequest,
) -> None:
    verifier = SigV4Verifier(never_called, ExplodingClock())
    with pytest.raises(IncompleteSignatureException):
        verifier.verify(with_credential(signed, "AKIDEXAMPLE"), check_signature=False)
    with pytest.raises(MissingAuthenticationTokenException):
        verifier.verify(replace_header(signed, "Authorization", None), check_signature=False)


# --- The signing-key cache -----------------------------------------------------------------
class Derivations(list[tuple[str, str, str]]):
    """Counts the signing keys a verifier derives (its ``derive`` hook)."""

    def __call__(self, secret: bytes, scope_date: str, region: str, service: str) -> bytes:
        self.append((scope_date, region, service))
        return sigv4.derive_signing_key(secret, scope_date, region, service)


@pytest.fixture
def derivations() -> Derivations:
    return Derivations()


def test_a_rotated_secret_is_never_served_from_the_cache(
    signed: SignedRequest, derivations: Derivations
) -> None:
    secrets = Secrets()
    verifier = make_verifier(lookup=secrets, derive=derivations)
    verifier.verify(signed)
    verifier.verify(signed)
    assert len(derivations) == 1, "the second request must reuse the cached signing key"
    assert secrets.calls == 2, "the secret is looked up on every request"

    secrets.secrets[ACCESS_KEY_ID] = NEW_SECRET
    expect(InvalidSignatureException, SIGNATURE_MISMATCH, lambda: verifier.verify(signed))
    verifier.verify(botocore_signed(secret=NEW_SECRET))
    assert len(derivations) == 2

    secrets.secrets[ACCESS_KEY_ID] = SECRET
    verifier.verify(signed)
    expect(
        InvalidSignatureException,
        SIGNATURE_MISMATCH,
        lambda: verifier.verify(botocore_signed(secret=NEW_SECRET)),
    )


def test_the_cache_is_bounded_and_least_recently_used(
    derivations: Derivations,
) -> None:
    east = botocore_signed(region="us-east-1")
    west = botocore_signed(region="eu-west-1")
    north = botocore_signed(region="eu-north-1")
    verifier = make_verifier(signing_key_cache_size=2, derive=derivations)
    for request in (east, west, east, north, east, west):
        verifier.verify(request)
    # east stays hot; west is the least recently used when north arrives, so it is derived again.
    assert [region for _, region, _ in derivations] == [
        "us-east-1",
        "eu-west-1",
        "eu-north-1",
        "eu-west-1",
    ]


def test_the_cache_can_be_switched_off(signed: SignedRequest, derivations: Derivations) -> None:
    verifier = make_verifier(signing_key_cache_size=0, derive=derivations)
    verifier.verify(signed)
    verifier.verify(signed)
    assert len(derivations) == 2


# --- Nothing secret leaks ------------------------------------------------------------------
def test_no_secret_or_token_appears_in_reprs_or_messages(signed: SignedRequest) -> None:
    verifier = make_verifier()
    verifier.verify(signed)
    token_request = botocore_signed(token=SESSION_TOKEN)
    texts = [
        repr(verifier),
        repr(verifier.verify(token_request)),
        repr(verifier.parse(token_request)),
    ]
    for wrong in (botocore_signed(secret=NEW_SECRET), dataclasses.replace(signed, body=b"x")):
        with pytest.raises(InvalidSignatureException) as caught:
            verifier.verify(wrong)
        texts += [str(caught.value), repr(caught.value)]
    key = sigv4.derive_signing_key(SECRET.encode(), "20150830", "us-east-1", "kms")
    for text in texts:
        assert SECRET not in text
        assert NEW_SECRET not in text
        assert SESSION_TOKEN not in text
        assert key.hex() not in text


def test_configuration_is_validated() -> None:
    with pytest.raises(ValueError, match="max_skew_seconds"):
        make_verifier(max_skew_seconds=-1)
    with pytest.raises(ValueError, match="signing_key_cache_size"):
        make_verifier(signing_key_cache_size=-1)


# --- The header before its signature, parsed once -------------------------------------------
def test_a_header_parsed_before_parses_the_same_with_any_signature(signed: SignedRequest) -> None:
    verifier = make_verifier()
    verifier.verify(signed)
    base = header(signed, "Authorization").rsplit(", Signature=", 1)[0]
    assert base in sigv4._FORMS  # remembered: the next request's header is not tokenized
    for signature in ("0" * 64, "ünïcødé", "x"):
        request = replace_header(signed, "Authorization", f"{base}, Signature={signature}")
        remembered = verifier.parse(request)
        sigv4._FORMS.clear()
        assert verifier.parse(request) == remembered
        assert remembered.signature == signature
        verifier.verify(signed)  # remembered again
    expect(
        InvalidSignatureException,
        SIGNATURE_MISMATCH,
        lambda: verifier.verify(replace_header(signed, "Authorization", f"{base}, Signature=0a")),
    )


@pytest.mark.parametrize(
    ("tail", "message"),
    [
        # A signature that is not one token is never taken from what was remembered.
        (
            ", Signature=ab,cd",
            "'cd' not a valid key=value pair (missing equal-sign) in Authorization header: "
            "'{value}'.",
        ),
        (
            ", Signature=ab cd",
            "'cd' not a valid key=value pair (missing equal-sign) in Authorization header: "
            "'{value}'.",
        ),
        (
            ", Signature=",
            "Authorization header requires 'Signature' parameter. Authorization={value}",
        ),
    ],
)
def test_a_header_parsed_before_still_fails_as_it_must(
    signed: SignedRequest, tail: str, message: str
) -> None:
    verifier = make_verifier()
    verifier.verify(signed)
    value = header(signed, "Authorization").rsplit(", Signature=", 1)[0] + tail
    expect(
        IncompleteSignatureException,
        message.format(value=value),
        lambda: verifier.verify(replace_header(signed, "Authorization", value)),
    )
    # And without a date, the message names every missing part, as for a header never seen.
    expect(
        IncompleteSignatureException,
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
        f"Authorization={header(signed, 'Authorization')}",
        lambda: verifier.verify(replace_header(signed, "X-Amz-Date", None), check_signature=False),
    )


def test_what_is_remembered_is_bounded(signed: SignedRequest) -> None:
    verifier = make_verifier(at=T0)
    sigv4._FORMS.clear()
    base = header(signed, "Authorization").rsplit(", Signature=", 1)[0]
    for n in range(sigv4._DERIVED_LIMIT + 10):
        value = base.replace("SignedHeaders=", f"SignedHeaders=x-{n};", 1) + ", Signature=00"
        with pytest.raises(InvalidSignatureException):
            verifier.verify(replace_header(signed, "Authorization", value))
    assert len(sigv4._FORMS) <= sigv4._DERIVED_LIMIT
    long_value = base.replace("SignedHeaders=", "SignedHeaders=" + "y" * 600 + ";", 1)
    with pytest.raises(InvalidSignatureException):
        verifier.verify(replace_header(signed, "Authorization", long_value + ", Signature=00"))
    assert long_value not in sigv4._FORMS
