"""Verify AWS Signature Version 4 (AWS4-HMAC-SHA256) on incoming requests.

Both forms are accepted: the ``Authorization`` header and the query-presigned URL
(``X-Amz-Algorithm``, ``X-Amz-Credential``, ...). The checks run in the order AWS's own
front ends run them, and fail with AWS's error types and messages, so that SDKs and the AWS CLI
see exactly what they would see from AWS:

1. both an ``Authorization`` header and ``X-Amz-Algorithm`` in the query, or neither;
2. the ``Authorization`` header's ``key=value`` syntax, then its missing parts (or the missing
   query parameters of a presigned URL);
3. the date's format, then (only when the signature is checked) the clock skew / expiry;
4. ``host`` among the signed headers, the algorithm, the credential's five elements, the scope
   (region and service when the caller names them, terminator, date);
5. the access key id, then the signature, then the body against ``x-amz-content-sha256``.

The credential scope's region and service are returned for the caller to check (the verifier
serves whatever service it is told it is), or checked here if ``verify`` is given them.

Canonicalization follows the AWS specification as botocore implements it on the client side:
header values are trimmed and their internal whitespace folded, repeated headers are joined with
``,``, the query is decoded, re-encoded per RFC 3986 and sorted, and the path is normalized
(dot segments and empty segments removed) and encoded once more, as every service but S3
expects. With ``normalize_path=False`` (S3's rules) the path is neither normalized nor double
encoded.

Nothing here logs, and no message or ``repr`` ever contains a secret or a derived key.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import mktime_tz, parsedate_tz
from functools import lru_cache
from typing import Final, Protocol
from urllib.parse import quote, unquote_to_bytes

from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.hmac import HMAC

from openkms.clock import Clock
from openkms.errors import (
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
    UnrecognizedClientException,
)

__all__ = [
    "ALGORITHM",
    "UNSIGNED_PAYLOAD",
    "ParsedAuthorization",
    "SecretLookup",
    "SigV4Verifier",
    "SignedRequest",
    "VerifiedSignature",
    "group_headers",
]

ALGORITHM: Final = "AWS4-HMAC-SHA256"
TERMINATOR: Final = "aws4_request"
UNSIGNED_PAYLOAD: Final = "UNSIGNED-PAYLOAD"
# S3's ceiling for X-Amz-Expires: a signing key is only good for seven days.
MAX_PRESIGNED_EXPIRES: Final = 604800

# --- Messages, worded as AWS words them -----------------------------------------------------
MSG_MISSING_AUTHENTICATION: Final = "Missing Authentication Token"
MSG_BOTH_FORMS: Final = (
    "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header."
)
MSG_REQUIRES_DATE: Final = (
    "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
)
MSG_HOST_NOT_SIGNED: Final = (
    "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
)
MSG_UNKNOWN_KEY: Final = "The security token included in the request is invalid."
MSG_SIGNATURE_MISMATCH: Final = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)
MSG_PRESIGNED_EXPIRED: Final = "Request has expired"
MSG_CONTENT_SHA256_MISMATCH: Final = (
    "The provided 'x-amz-content-sha256' header does not match what was computed."
)
MSG_CONTENT_SHA256_INVALID: Final = (
    "x-amz-content-sha256 must be UNSIGNED-PAYLOAD or a valid sha256 value."
)
MSG_UNSIGNED_PAYLOAD_REFUSED: Final = (
    "This server requires a signed payload (x-amz-content-sha256)."
)
MSG_EXPIRES_NOT_A_NUMBER: Final = "X-Amz-Expires should be a number"
MSG_NOT_SIGNED: Final = "'{}' must be a 'SignedHeader' in the AWS Authorization."
MSG_REGION: Final = "Credential should be scoped to a valid region, not '{}'."
MSG_EXPIRES_NEGATIVE: Final = "X-Amz-Expires must be non-negative"
MSG_EXPIRES_TOO_LARGE: Final = (
    "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires "
    f"must be less than {MAX_PRESIGNED_EXPIRES} seconds"
)

_AUTH_PARAMETERS: Final = ("Credential", "Signature", "SignedHeaders")
_QUERY_PARAMETERS: Final = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Signature",
    "X-Amz-SignedHeaders",
    "X-Amz-Date",
)
_HEX_DIGITS: Final = frozenset("0123456789abcdefABCDEF")
_BASIC_FORMAT: Final = "%Y%m%dT%H%M%SZ"


# --- Public types ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SignedRequest:
    """A request as the HTTP layer received it.

    ``path`` and ``query`` are the raw request target, still percent-encoded; characters beyond
    ASCII are taken as UTF-8 (decode the wire bytes with ``surrogateescape`` to keep any byte).
    """

    method: str
    path: str
    query: str
    headers: Sequence[tuple[str, str]]
    body: bytes


# Not frozen: a frozen dataclass pays object.__setattr__ per field, on every request. The
# explicit __init__ (the dataclass keeps it) is compiled by mypyc; the generated one is a Python
# function that mypyc calls with a dictionary of keywords: 2-5k instructions per object.
@dataclass(slots=True)
class VerifiedSignature:
    access_key_id: str
    region: str
    service: str
    scope_date: str
    signed_at: float
    # A session token is half of a credential: keep it out of logs that print the object.
    session_token: str | None = field(repr=False)

    def __init__(
        self,
        access_key_id: str,
        region: str,
        service: str,
        scope_date: str,
        signed_at: float,
        session_token: str | None,
    ) -> None:
        self.access_key_id = access_key_id
        self.region = region
        self.service = service
        self.scope_date = scope_date
        self.signed_at = signed_at
        self.session_token = session_token


@dataclass(slots=True)
class ParsedAuthorization:
    """Everything the signature claims, checked for form but not for truth."""

    presigned: bool
    access_key_id: str
    scope_date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str
    # The request time in ISO-8601 basic format, as it enters the string to sign.
    amz_date: str
    signed_at: float
    expires: int | None
    session_token: str | None = field(repr=False)
    content_sha256: str | None

    def __init__(  # see VerifiedSignature
        self,
        presigned: bool,
        access_key_id: str,
        scope_date: str,
        region: str,
        service: str,
        signed_headers: tuple[str, ...],
        signature: str,
        amz_date: str,
        signed_at: float,
        expires: int | None,
        session_token: str | None,
        content_sha256: str | None,
    ) -> None:
        self.presigned = presigned
        self.access_key_id = access_key_id
        self.scope_date = scope_date
        self.region = region
        self.service = service
        self.signed_headers = signed_headers
        self.signature = signature
        self.amz_date = amz_date
        self.signed_at = signed_at
        self.expires = expires
        self.session_token = session_token
        self.content_sha256 = content_sha256

    @property
    def credential_scope(self) -> str:
        return f"{self.scope_date}/{self.region}/{self.service}/{TERMINATOR}"


class SecretLookup(Protocol):
    # Positional-only, so that any ``Callable[[str], bytes | None]`` qualifies.
    def __call__(self, access_key_id: str, /) -> bytes | None:
        """The secret access key (UTF-8 bytes) or None if the key id is unknown."""
        ...


# --- Helpers ---------------------------------------------------------------------------------
# (the claims, the grouped headers, the query's pairs). A plain tuple: a NamedTuple is built by a
# Python-level __new__.
_Parsed = tuple[ParsedAuthorization, dict[str, list[str]], list[tuple[str, str]]]


def group_headers(headers: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """Header values by lower-cased name, repeated headers in the order received."""
    grouped: dict[str, list[str]] = {}
    for name, value in headers:
        key = name.lower()
        bucket = grouped.get(key)
        if bucket is None:
            grouped[key] = [value]
        else:
            bucket.append(value)
    return grouped


def _format_time(epoch: int) -> str:
    return time.strftime(_BASIC_FORMAT, time.gmtime(epoch))


def _joined(values: list[str] | None) -> str:
    if values is None:
        return ""
    if len(values) == 1:
        return values[0].strip()
    return ",".join(v.strip() for v in values)


def _to_bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _unquote(text: str) -> str:
    if "%" not in text:
        return text
    return unquote_to_bytes(_to_bytes(text)).decode("utf-8", "surrogateescape")


@lru_cache(maxsize=512)
def _parse_date(value: str, http_date_allowed: bool) -> tuple[str, float] | None:
    """``(basic-format timestamp, epoch seconds)``, or None if the value is not a date.

    Cached: concurrent requests share their timestamps, and ``datetime`` is the slow part.
    A ``Date`` header may also carry an RFC 1123 date; AWS signs its basic-format equivalent.
    """
    if (
        len(value) == 16
        and value[8] == "T"
        and value[15] == "Z"
        and value[:8].isascii()
        and value[:8].isdigit()
        and value[9:15].isascii()
        and value[9:15].isdigit()
    ):
        try:
            moment = datetime(
                int(value[0:4]),
                int(value[4:6]),
                int(value[6:8]),
                int(value[9:11]),
                int(value[11:13]),
                int(value[13:15]),
                tzinfo=UTC,
            )
        except ValueError:
            return None
        return value, moment.timestamp()
    if http_date_allowed:
        parts = parsedate_tz(value)
        if parts is not None and parts[9] is not None:
            epoch = mktime_tz(parts)
            return _format_time(epoch), float(epoch)
    return None


def _split_query(query: str) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for item in query.split("&"):
        if item:
            key, _, value = item.partition("=")
            pairs.append((key, value))
    return pairs


def _encode_query_component(text: str) -> str:
    # Decode first so that whatever the client escaped (or left raw) comes out the same.
    return quote(unquote_to_bytes(_to_bytes(text)), safe="")


def _canonical_query(pairs: list[tuple[str, str]], presigned: bool) -> str:
    encoded: list[tuple[str, str]] = []
    for key, value in pairs:
        if presigned and _unquote(key) == "X-Amz-Signature":
            continue
        encoded.append((_encode_query_component(key), _encode_query_component(value)))
    # Sort by key, then by value; sorting the joined "k=v" strings would put "a-b" before "a".
    encoded.sort()
    return "&".join(f"{key}={value}" for key, value in encoded)


def _remove_dot_segments(path: str) -> str:
    # RFC 3986 5.2.4, plus the removal of empty segments that AWS services (and botocore) apply.
    output: list[str] = []
    for segment in path.split("/"):
        if not segment or segment == ".":
            continue
        if segment == "..":
            if output:
                output.pop()
        else:
            output.append(segment)
    first = "/" if path.startswith("/") else ""
    last = "/" if path.endswith("/") and output else ""
    return first + "/".join(output) + last


def _canonical_uri(path: str, normalize: bool) -> str:
    if path in ("/", ""):
        return "/"
    if normalize:
        # Every service but S3 encodes the already-encoded path once more ("double encoding").
        return quote(_to_bytes(_remove_dot_segments(path)), safe="/~")
    return quote(unquote_to_bytes(_to_bytes(path)), safe="/~")


def _canonical_header_value(values: list[str] | None) -> str:
    if values is None:
        return ""
    if len(values) == 1:
        return " ".join(values[0].split())
    return ",".join(" ".join(v.split()) for v in values)


def _is_sha256_hex(value: str) -> bool:
    return len(value) == 64 and _HEX_DIGITS.issuperset(value)


def _display_name(name: str) -> str:
    """``x-amz-target`` -> ``X-Amz-Target``, as AWS names headers in its messages."""
    return "-".join(part[:1].upper() + part[1:] for part in name.split("-"))


# What the same text always gives, for text a client repeats on every request (its SignedHeaders,
# its credential for the day): bounded in entries and in the length of what is kept, since the
# text is the caller's.
_DERIVED_LIMIT: Final = 1024
_DERIVED_MAX_CHARS: Final = 512
_SIGNED_HEADERS: dict[str, tuple[str, ...]] = {}
_CREDENTIALS: dict[str, tuple[str, ...]] = {}


def _signed_header_names(text: str) -> tuple[str, ...]:
    names = _SIGNED_HEADERS.get(text)
    if names is None:
        names = tuple(text.lower().split(";"))
        if len(text) <= _DERIVED_MAX_CHARS:
            if len(_SIGNED_HEADERS) >= _DERIVED_LIMIT:
                _SIGNED_HEADERS.clear()
            _SIGNED_HEADERS[text] = names
    return names


def _credential_parts(credential: str) -> tuple[str, ...]:
    # AWS ignores trailing slashes here ("AKID/date/region/service/aws4_request/").
    parts = _CREDENTIALS.get(credential)
    if parts is None:
        parts = tuple(credential.rstrip("/").split("/"))
        if len(credential) <= _DERIVED_MAX_CHARS:
            if len(_CREDENTIALS) >= _DERIVED_LIMIT:
                _CREDENTIALS.clear()
            _CREDENTIALS[credential] = parts
    return parts


# The Authorization header before its signature -> (algorithm, Credential, SignedHeaders).
_FORMS: dict[str, tuple[str, str, str]] = {}
_SIGNATURE_MARK: Final = ", Signature="


def _known_form(authorization: str) -> tuple[str, str, str, str] | None:
    """(algorithm, Credential, SignedHeaders, Signature) of a header whose text before
    ", Signature=" has been parsed before (``_remember_form``), else None.

    A client sends the same header on every request but for its signature, which botocore
    writes last. The signature must be letters and digits: then it is one token, and the
    header splits as the remembered one did, with this signature as its last pair."""
    cut = authorization.rfind(_SIGNATURE_MARK)
    if cut <= 0:
        return None
    signature = authorization[cut + len(_SIGNATURE_MARK) :]
    if not signature.isalnum():
        return None
    known = _FORMS.get(authorization[:cut])
    if known is None:
        return None
    return known[0], known[1], known[2], signature


def _remember_form(
    authorization: str, algorithm: str, credential: str, signed_headers: str, signature: str
) -> None:
    """Keeps what a well-formed header's text before its signature parsed to, for
    ``_known_form`` (bounded, as the other derived texts)."""
    cut = authorization.rfind(_SIGNATURE_MARK)
    if (
        cut <= 0
        or cut > _DERIVED_MAX_CHARS
        or algorithm != ALGORITHM  # the first token came from the text before the signature
        or authorization[cut + len(_SIGNATURE_MARK) :] != signature
        or not signature.isalnum()
    ):
        return
    if len(_FORMS) >= _DERIVED_LIMIT:
        _FORMS.clear()
    _FORMS[authorization[:cut]] = (algorithm, credential, signed_headers)


def derive_signing_key(secret: bytes, scope_date: str, region: str, service: str) -> bytes:
    key = hmac.digest(b"AWS4" + secret, _to_bytes(scope_date), "sha256")
    key = hmac.digest(key, _to_bytes(region), "sha256")
    key = hmac.digest(key, _to_bytes(service), "sha256")
    return hmac.digest(key, b"aws4_request", "sha256")


def _parse_expires(raw: str) -> int:
    text = _unquote(raw)
    digits = text[1:] if text.startswith("-") else text
    if not digits or not digits.isascii() or not digits.isdigit():
        raise IncompleteSignatureException(MSG_EXPIRES_NOT_A_NUMBER)
    if text.startswith("-"):
        raise IncompleteSignatureException(MSG_EXPIRES_NEGATIVE)
    expires = int(digits)
    if expires > MAX_PRESIGNED_EXPIRES:
        raise IncompleteSignatureException(MSG_EXPIRES_TOO_LARGE)
    return expires


# --- The verifier ----------------------------------------------------------------------------
class SigV4Verifier:
    """Checks SigV4 signatures; safe to share between threads."""

    __slots__ = (
        "_allow_unsigned_payload",
        "_cache_lock",
        "_cache_size",
        "_clock",
        "_derive",
        "_hash_body",
        "_key_cache",
        "_lookup",
        "_max_skew",
        "_must_sign",
        "_must_sign_prefixes",
        "_normalize_path",
        "_regions",
        "_skew_text",
        "_unsigned_cache",
    )

    def __init__(
        self,
        lookup: SecretLookup,
        clock: Clock,
        *,
        max_skew_seconds: int = 900,
        normalize_path: bool = True,
        signing_key_cache_size: int = 4096,
        allow_unsigned_payload: bool = True,
        derive: Callable[[bytes, str, str, str], bytes] | None = None,
        must_sign: Iterable[str] = (),
        must_sign_prefixes: Iterable[str] = (),
        hash_body: bool = False,
        regions: Iterable[str] | None = None,
    ) -> None:
        """``derive`` replaces ``derive_signing_key`` (tests count the derivations with it).

        The rules of every AWS service but S3 (the server's settings):

        * ``must_sign``: header names (lower case) that must be among the SignedHeaders when the
          request carries them (``content-type``); ``must_sign_prefixes``: the same for every
          header whose name starts with one of them (``x-amz-``). Refused with
          ``InvalidSignatureException`` "'X-Amz-Target' must be a 'SignedHeader' in the AWS
          Authorization."
        * ``hash_body``: the payload hash of the canonical request is always the SHA-256 of the
          body received, whatever ``x-amz-content-sha256`` says (so ``UNSIGNED-PAYLOAD`` or a
          hash of another body makes the signature mismatch), as AWS computes it outside S3.
        * ``regions``: the Regions a credential scope may name; any other is refused with
          "Credential should be scoped to a valid region, not '<region>'." None: any.
        """
        if max_skew_seconds < 0:
            raise ValueError("max_skew_seconds must not be negative")
        if signing_key_cache_size < 0:
            raise ValueError("signing_key_cache_size must not be negative")
        self._lookup = lookup
        self._clock = clock
        self._derive = derive if derive is not None else derive_signing_key
        self._max_skew = int(max_skew_seconds)
        self._skew_text = (
            f"{self._max_skew // 60} min." if self._max_skew % 60 == 0 else f"{self._max_skew} sec."
        )
        self._normalize_path = normalize_path
        self._allow_unsigned_payload = allow_unsigned_payload
        self._must_sign = frozenset(name.lower() for name in must_sign)
        self._must_sign_prefixes = tuple(prefix.lower() for prefix in must_sign_prefixes)
        self._hash_body = hash_body
        self._regions = None if regions is None else frozenset(regions)
        self._cache_size = signing_key_cache_size
        # (access key id, date, region, service) -> (secret, HMAC keyed with the signing key).
        # The secret rides along so that a hit can be checked against the current secret: a
        # rotated key never matches. Copying a keyed HMAC is cheaper than keying a new one.
        self._key_cache: OrderedDict[tuple[str, str, str, str], tuple[bytes, HMAC]] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._unsigned_cache: dict[tuple[tuple[str, ...], tuple[str, ...]], str] = {}

    def __repr__(self) -> str:
        return (
            f"SigV4Verifier(max_skew_seconds={self._max_skew}, "
            f"normalize_path={self._normalize_path}, "
            f"signing_key_cache_size={self._cache_size})"
        )

    # --- public API --------------------------------------------------------------------------
    def parse(self, request: SignedRequest) -> ParsedAuthorization:
        """The signature's claims, checked for syntax only (no secret, no clock)."""
        return self._parse(group_headers(request.headers), request.query, None, None, None)[0]

    def verify(
        self,
        request: SignedRequest,
        *,
        check_signature: bool = True,
        expected_region: str | None = None,
        expected_service: str | None = None,
    ) -> VerifiedSignature:
        """Authenticate ``request`` or raise the error AWS would answer.

        ``check_signature=False`` (the server's accept-any-credentials mode) still requires a
        well-formed signature with a credential scope, but skips the clock, the secret lookup,
        the signature and the body hash. ``expected_region``/``expected_service``, when given,
        are checked against the credential scope with AWS's messages.
        """
        return self.verify_grouped(
            request.method,
            request.path,
            request.query,
            group_headers(request.headers),
            request.body,
            check_signature=check_signature,
            expected_region=expected_region,
            expected_service=expected_service,
        )

    def verify_grouped(
        self,
        method: str,
        path: str,
        query: str,
        headers: dict[str, list[str]],
        body: bytes,
        *,
        check_signature: bool = True,
        expected_region: str | None = None,
        expected_service: str | None = None,
    ) -> VerifiedSignature:
        """``verify`` for a server that has already grouped the headers by lower-cased name
        (see ``group_headers``), so that they are walked once per request."""
        now = self._clock.now() if check_signature else None
        auth, _, pairs = self._parse(headers, query, now, expected_region, expected_service)
        if check_signature:
            self._check_signature(method, path, body, auth, headers, pairs)
        return VerifiedSignature(
            access_key_id=auth.access_key_id,
            region=auth.region,
            service=auth.service,
            scope_date=auth.scope_date,
            signed_at=auth.signed_at,
            session_token=auth.session_token,
        )

    def clear_cache(self) -> None:
        with self._cache_lock:
            self._key_cache.clear()

    # --- parsing -----------------------------------------------------------------------------
    def _parse(
        self,
        headers: dict[str, list[str]],
        query_text: str,
        now: float | None,
        expected_region: str | None,
        expected_service: str | None,
    ) -> _Parsed:
        authorization = _joined(headers.get("authorization"))
        query = _split_query(query_text) if query_text else []
        query_auth: dict[str, str] = {}
        for key, value in query:
            name = _unquote(key)
            if name.startswith("X-Amz-") and name not in query_auth:
                query_auth[name] = value
        presigned = "X-Amz-Algorithm" in query_auth

        if authorization and presigned:
            raise InvalidSignatureException(MSG_BOTH_FORMS)
        if not authorization and not presigned:
            raise MissingAuthenticationTokenException(MSG_MISSING_AUTHENTICATION)

        expires: int | None = None
        if presigned:
            missing = [p for p in _QUERY_PARAMETERS if not query_auth.get(p)]
            if missing:
                raise IncompleteSignatureException(
                    " ".join(f"AWS query-string parameters must include '{p}'." for p in missing)
                    + " Re-examine the query-string parameters."
                )
            algorithm = _unquote(query_auth["X-Amz-Algorithm"])
            credential = _unquote(query_auth["X-Amz-Credential"])
            signature = _unquote(query_auth["X-Amz-Signature"])
            signed_headers_text = _unquote(query_auth["X-Amz-SignedHeaders"])
            date_text = _unquote(query_auth["X-Amz-Date"])
            date = _parse_date(date_text, False)
            raw_token = query_auth.get("X-Amz-Security-Token")
            token = (
                _unquote(raw_token)
                if raw_token is not None
                else _joined(headers.get("x-amz-security-token"))
            )
            content_sha256 = _joined(headers.get("x-amz-content-sha256"))
            if not content_sha256 and "X-Amz-Content-Sha256" in query_auth:
                content_sha256 = _unquote(query_auth["X-Amz-Content-Sha256"])
        else:
            amz_date = _joined(headers.get("x-amz-date"))
            http_date = "" if amz_date else _joined(headers.get("date"))
            date_text = amz_date or http_date
            known = _known_form(authorization) if date_text else None
            if known is not None:
                algorithm, credential, signed_headers_text, signature = known
            else:
                tokens = authorization.replace(",", " ").split()
                algorithm = tokens[0] if tokens else ""  # "Authorization: ," has no algorithm
                params: dict[str, str] = {}
                for token_text in tokens[1:]:
                    key, equals, value = token_text.partition("=")
                    if not equals:
                        raise IncompleteSignatureException(
                            f"'{token_text}' not a valid key=value pair (missing equal-sign) in "
                            f"Authorization header: '{authorization}'."
                        )
                    params[key] = value
                credential = params.get("Credential", "")
                signature = params.get("Signature", "")
                signed_headers_text = params.get("SignedHeaders", "")
                if not (credential and signature and signed_headers_text and date_text):
                    problems = [
                        f"Authorization header requires '{p}' parameter."
                        for p in _AUTH_PARAMETERS
                        if not params.get(p)
                    ]
                    if not date_text:
                        problems.append(MSG_REQUIRES_DATE)
                    raise IncompleteSignatureException(
                        " ".join(problems) + f" Authorization={authorization}"
                    )
                _remember_form(authorization, algorithm, credential, signed_headers_text, signature)
            date = _parse_date(date_text, bool(http_date))
            token = _joined(headers.get("x-amz-security-token"))
            content_sha256 = _joined(headers.get("x-amz-content-sha256"))

        if date is None:
            raise IncompleteSignatureException(
                f"Date must be in ISO-8601 'basic format'. Got '{date_text}'. "
                "See http://en.wikipedia.org/wiki/ISO_8601"
            )
        amz_date, signed_at = date
        if presigned and "X-Amz-Expires" in query_auth:
            expires = _parse_expires(query_auth["X-Amz-Expires"])
        if now is not None:
            self._check_time(amz_date, signed_at, expires, now)

        signed_headers = _signed_header_names(signed_headers_text)
        if "host" not in signed_headers and ":authority" not in signed_headers:
            raise InvalidSignatureException(MSG_HOST_NOT_SIGNED)
        if self._must_sign or self._must_sign_prefixes:
            unsigned = self._unsigned_header(headers, signed_headers)
            if unsigned is not None:
                raise InvalidSignatureException(MSG_NOT_SIGNED.format(_display_name(unsigned)))
        if algorithm != ALGORITHM:
            raise IncompleteSignatureException(
                f"Unsupported AWS 'algorithm': '{algorithm}' (only {ALGORITHM} for now)."
            )

        # AWS ignores trailing slashes here ("AKID/date/region/service/aws4_request/").
        parts = _credential_parts(credential)
        if len(parts) != 5:
            raise IncompleteSignatureException(
                "Credential must have exactly 5 slash-delimited elements, "
                f"e.g. keyid/date/region/service/term, got '{credential}'"
            )
        access_key_id, scope_date, region, service, terminator = parts
        scope_problems: list[str] = []
        if (expected_region is not None and region != expected_region) or (
            self._regions is not None and region not in self._regions
        ):
            scope_problems.append(MSG_REGION.format(region))
        if expected_service is not None and service != expected_service:
            scope_problems.append(
                f"Credential should be scoped to correct service: '{expected_service}'."
            )
        if terminator != TERMINATOR:
            scope_problems.append(
                f"Credential should be scoped with a valid terminator: '{TERMINATOR}', "
                f"not '{terminator}'."
            )
        if scope_date != amz_date[:8]:
            scope_problems.append(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
                f"from HTTP: '{scope_date}' != '{amz_date[:8]}', from '{amz_date}'."
            )
        if scope_problems:
            raise InvalidSignatureException(" ".join(scope_problems))
        if not access_key_id:
            raise UnrecognizedClientException(MSG_UNKNOWN_KEY)

        parsed = ParsedAuthorization(
            presigned=presigned,
            access_key_id=access_key_id,
            scope_date=scope_date,
            region=region,
            service=service,
            signed_headers=signed_headers,
            signature=signature,
            amz_date=amz_date,
            signed_at=signed_at,
            expires=expires,
            session_token=token or None,
            content_sha256=content_sha256 or None,
        )
        return parsed, headers, query

    def _unsigned_header(
        self, headers: dict[str, list[str]], signed_headers: tuple[str, ...]
    ) -> str | None:
        """The first header the request carries that must be signed but is not. A client sends
        the same header names, and signs the same ones, on every request: the answer is kept
        for that pair (bounded; "" stands for none)."""
        ident = (signed_headers, tuple(headers))
        cache = self._unsigned_cache
        cached = cache.get(ident)
        if cached is not None:
            return cached or None
        found = self._first_unsigned(headers, signed_headers)
        if len(cache) >= _DERIVED_LIMIT:
            cache.clear()
        cache[ident] = found or ""
        return found

    def _first_unsigned(
        self, headers: dict[str, list[str]], signed_headers: tuple[str, ...]
    ) -> str | None:
        prefixes = self._must_sign_prefixes
        for name in headers:
            if name in signed_headers:
                continue
            if name in self._must_sign or (prefixes and name.startswith(prefixes)):
                return name
        return None

    def _check_time(self, amz_date: str, signed_at: float, expires: int | None, now: float) -> None:
        current = math.floor(now)
        skew = self._max_skew
        if signed_at > current + skew:
            raise InvalidSignatureException(
                f"Signature not yet current: {amz_date} is still later than "
                f"{_format_time(current + skew)} ({_format_time(current)} + {self._skew_text})"
            )
        if expires is not None:
            # A presigned URL lives for X-Amz-Expires, however long that is against the skew.
            if current > signed_at + expires:
                raise InvalidSignatureException(MSG_PRESIGNED_EXPIRED)
        elif signed_at < current - skew:
            raise InvalidSignatureException(
                f"Signature expired: {amz_date} is now earlier than "
                f"{_format_time(current - skew)} ({_format_time(current)} - {self._skew_text})"
            )

    # --- the cryptographic check -------------------------------------------------------------
    def _check_signature(
        self,
        method: str,
        path: str,
        body: bytes,
        auth: ParsedAuthorization,
        headers: dict[str, list[str]],
        query: list[tuple[str, str]],
    ) -> None:
        secret = self._lookup(auth.access_key_id)
        if secret is None:
            raise UnrecognizedClientException(MSG_UNKNOWN_KEY)

        declared = None if self._hash_body else auth.content_sha256
        body_must_match = False
        if declared is None:
            payload_hash = hashlib.sha256(body).hexdigest()
        elif declared == UNSIGNED_PAYLOAD:
            if not self._allow_unsigned_payload:
                raise InvalidSignatureException(MSG_UNSIGNED_PAYLOAD_REFUSED)
            payload_hash = declared
        elif _is_sha256_hex(declared):
            payload_hash = declared
            body_must_match = True
        else:
            raise InvalidSignatureException(MSG_CONTENT_SHA256_INVALID)

        lines = [method, "\n", _canonical_uri(path, self._normalize_path), "\n"]
        if query:
            lines.append(_canonical_query(query, auth.presigned))
        lines.append("\n")
        for name in auth.signed_headers:
            lines += (name, ":", _canonical_header_value(headers.get(name)), "\n")
        lines += ("\n", ";".join(auth.signed_headers), "\n", payload_hash)
        canonical_request = "".join(lines)

        string_to_sign = (
            f"{ALGORITHM}\n{auth.amz_date}\n{auth.credential_scope}\n"
            f"{hashlib.sha256(_to_bytes(canonical_request)).hexdigest()}"
        )
        mac = self._signer(
            secret, auth.access_key_id, auth.scope_date, auth.region, auth.service
        ).copy()
        mac.update(_to_bytes(string_to_sign))
        expected = mac.finalize().hex()
        if not hmac.compare_digest(expected.encode(), auth.signature.encode("utf-8", "replace")):
            raise InvalidSignatureException(MSG_SIGNATURE_MISMATCH)

        # Checked only once the signature holds, so that a caller without the key learns nothing
        # from it: a body swapped under a signed hash is not the request that was signed.
        if (
            body_must_match
            and declared is not None
            and hashlib.sha256(body).hexdigest() != declared.lower()
        ):
            raise InvalidSignatureException(MSG_CONTENT_SHA256_MISMATCH)

    def _signer(
        self, secret: bytes, access_key_id: str, scope_date: str, region: str, service: str
    ) -> HMAC:
        """An HMAC-SHA256 keyed with the signing key, to be copied for each string to sign."""
        if self._cache_size == 0:
            return HMAC(self._derive(secret, scope_date, region, service), SHA256())
        cache_key = (access_key_id, scope_date, region, service)
        with self._cache_lock:
            hit = self._key_cache.get(cache_key)
            if hit is not None:
                self._key_cache.move_to_end(cache_key)
        if hit is not None and hmac.compare_digest(hit[0], secret):
            return hit[1]
        signer = HMAC(self._derive(secret, scope_date, region, service), SHA256())
        with self._cache_lock:
            self._key_cache[cache_key] = (secret, signer)
            self._key_cache.move_to_end(cache_key)
            while len(self._key_cache) > self._cache_size:
                self._key_cache.popitem(last=False)
        return signer
