"""Requests and responses of the console, and the protections every answer carries.

* Every answer: a strict Content-Security-Policy (scripts and styles only from our own files,
  no inline script, no framing, forms post only to us), ``nosniff``, ``same-origin`` referrers
  (the development sign-in link carries a token in its URL: no other site sees it), ``no-store``.
* The session cookie: HttpOnly, SameSite=Strict, Path=/console, Secure (and the ``__Host-``
  prefix) when the server speaks TLS.
* State-changing requests: POST only, from our own origin (``Origin`` and ``Sec-Fetch-Site``
  when the browser sends them) and, once signed in, with the session's CSRF token.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlsplit

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
COOKIE_PLAIN = "openkms_console"
COOKIE_TLS = "__Host-openkms_console"
MAX_FORM_BYTES = 256 * 1024
# A multipart form (the key material upload) has a few fields: more parts than this and none of
# them is read (so the CSRF check fails and the request is refused).
MAX_PARTS = 16


@dataclass(slots=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    scheme: str
    client: tuple[str, int]
    form: dict[str, str] = field(default_factory=dict)
    # Uploaded files of a multipart form, by field name: their bytes, nothing else of them
    # (the browser's file name and content type are claims, and nothing reads them).
    files: dict[str, bytes] = field(default_factory=dict)

    @classmethod
    def from_scope(cls, scope: MutableMapping[str, Any], body: bytes) -> Request:
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            key = name.decode("latin-1").lower()
            # Repeated headers: the first wins (a second Cookie or Origin is suspicious anyway).
            headers.setdefault(key, value.decode("latin-1"))
        query = _first_values(scope.get("query_string", b"").decode("latin-1"))
        request = cls(
            method=scope["method"],
            path=scope["path"],
            query=query,
            headers=headers,
            body=body,
            scheme=str(scope.get("scheme") or "http"),
            client=_client(scope),
        )
        content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if request.method == "POST" and content_type == "application/x-www-form-urlencoded":
            request.form = _first_values(body.decode("utf-8", "replace"))
        elif request.method == "POST" and content_type == "multipart/form-data":
            request.form, request.files = _multipart(headers.get("content-type", ""), body)
        return request

    @property
    def secure(self) -> bool:
        return self.scheme == "https"

    @property
    def host(self) -> str:
        return self.headers.get("host", "localhost")

    def cookie(self) -> str | None:
        raw = self.headers.get("cookie")
        if not raw:
            return None
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(raw)
        except CookieError:
            return None
        morsel = jar.get(COOKIE_TLS if self.secure else COOKIE_PLAIN)
        return morsel.value if morsel is not None else None

    def same_origin(self) -> bool:
        """Whether the browser says this request comes from a page of ours. A browser always
        sends ``Origin`` on a POST; ``Sec-Fetch-Site`` when it knows it."""
        fetch_site = self.headers.get("sec-fetch-site")
        if fetch_site is not None and fetch_site.lower() not in ("same-origin", "none"):
            return False
        origin = self.headers.get("origin")
        if origin is None or origin == "null":
            # No Origin, or the opaque one a browser sends under some referrer policies: only
            # the browser's own word that the request is same-origin lets it through.
            return fetch_site is not None and fetch_site.lower() == "same-origin"
        parts = urlsplit(origin)
        return parts.scheme == self.scheme and parts.netloc.lower() == self.host.lower()


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def redirect(cls, location: str, status: int = 303) -> Response:
        return cls(status, b"", headers=[("location", location)])

    @classmethod
    def text(cls, status: int, text: str) -> Response:
        return cls(status, text.encode(), "text/plain; charset=utf-8")

    def set_session(self, sid: str, max_age: int, secure: bool) -> None:
        if secure:
            self.headers.append(
                (
                    "set-cookie",
                    f"{COOKIE_TLS}={sid}; Path=/; Max-Age={max_age}; HttpOnly; Secure; "
                    "SameSite=Strict",
                )
            )
        else:
            self.headers.append(
                (
                    "set-cookie",
                    f"{COOKIE_PLAIN}={sid}; Path=/console; Max-Age={max_age}; HttpOnly; "
                    "SameSite=Strict",
                )
            )

    def clear_session(self, secure: bool) -> None:
        if secure:
            cookie = f"{COOKIE_TLS}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict"
            self.headers.append(("set-cookie", cookie))
        else:
            cookie = f"{COOKIE_PLAIN}=; Path=/console; Max-Age=0; HttpOnly; SameSite=Strict"
            self.headers.append(("set-cookie", cookie))

    def asgi_headers(self) -> list[tuple[bytes, bytes]]:
        headers = [
            ("content-type", self.content_type),
            ("content-length", str(len(self.body))),
            ("content-security-policy", CSP),
            ("x-content-type-options", "nosniff"),
            ("x-frame-options", "DENY"),
            ("referrer-policy", "same-origin"),
            ("cross-origin-opener-policy", "same-origin"),
            ("cross-origin-resource-policy", "same-origin"),
            *self.headers,
        ]
        if not any(name == "cache-control" for name, _ in self.headers):
            headers.append(("cache-control", "no-store"))
        return [(n.encode("latin-1"), v.encode("latin-1")) for n, v in headers]


def _client(scope: MutableMapping[str, Any]) -> tuple[str, int]:
    client = scope.get("client") or ("", 0)
    return str(client[0]), int(client[1])


def _first_values(text: str) -> dict[str, str]:
    try:
        parsed = parse_qs(text, keep_blank_values=True, max_num_fields=200)
    except ValueError:  # more fields than any console form has: none of them is read
        return {}
    return {name: values[0] for name, values in parsed.items()}


def _multipart(content_type: str, body: bytes) -> tuple[dict[str, str], dict[str, bytes]]:
    """A multipart/form-data body (already within MAX_FORM_BYTES) as its text fields and its
    files, read as RFC 7578 has browsers send it: one level of parts, each with a
    ``Content-Disposition: form-data`` naming it. Anything else (no boundary, a preamble, too
    many parts, a part without a name, headers beyond MAX_PART_HEADER_BYTES, a field that is not
    UTF-8, no closing delimiter) gives no fields at all: the request then fails the CSRF check.

    Not the email package's parser: it reads a mail's nested multiparts, comments and RFC 2231
    continuations recursively and in quadratic time, so a stranger's 256 KiB body could raise
    RecursionError or hold the event loop (the API's too) for many seconds. Here the work is
    one split of the body and a bounded look at each part's headers."""
    boundary = _boundary(content_type)
    if boundary is None:
        return {}, {}
    pieces = (b"\r\n" + body).split(b"\r\n--" + boundary, MAX_PARTS + 1)
    if pieces[0]:
        return {}, {}
    form: dict[str, str] = {}
    files: dict[str, bytes] = {}
    for piece in pieces[1:]:
        if piece.startswith(b"--"):  # the close delimiter: what follows is the epilogue
            return form, files
        parsed = _part(piece)
        if parsed is None:
            return {}, {}
        name, is_file, data = parsed
        if is_file:
            files.setdefault(name, data)
        else:
            try:
                form.setdefault(name, data.decode("utf-8"))
            except UnicodeDecodeError:
                return {}, {}
    # More parts than MAX_PARTS, or a body cut short before its close delimiter.
    return {}, {}


# RFC 2046's boundary: 1 to 70 of these characters (a space not last), quoted or not.
_BCHARS = re.compile(r"[0-9A-Za-z'()+_,./:=? -]{0,69}[0-9A-Za-z'()+_,./:=?-]")
# One ``; name=value`` parameter of a header, anchored where the previous one ended: a quoted
# value without escapes (browsers percent-encode quotes and line breaks in names), or a token.
_PARAM = re.compile(r'[ \t]*;[ \t]*([A-Za-z0-9!#$%&\'*+.^_`|~-]+)[ \t]*=[ \t]*'
                    r'(?:"([^"\r\n]*)"|([^;"\s]*))')
MAX_PART_HEADER_BYTES = 4096


def _boundary(content_type: str) -> bytes | None:
    _, sep, rest = content_type.partition(";")
    found = _params(sep + rest)
    value = found.get("boundary") if found is not None else None
    if value is None or not _BCHARS.fullmatch(value):
        return None
    return value.encode("ascii")


def _params(text: str) -> dict[str, str] | None:
    """The parameters after a header's first value (``text`` starts at its first ``;``), by
    lower-cased name, the first of a repeated name winning; None when malformed."""
    found: dict[str, str] = {}
    pos, end = 0, len(text.rstrip())
    while pos < end:
        match = _PARAM.match(text, pos)
        if match is None:
            return None
        value = match.group(2) if match.group(2) is not None else match.group(3)
        found.setdefault(match.group(1).lower(), value)
        pos = match.end()
    return found


def _part(piece: bytes) -> tuple[str, bool, bytes] | None:
    """One part (what follows its delimiter line) as (field name, whether it is a file, its
    bytes); None when malformed."""
    if not piece.startswith(b"\r\n"):
        return None
    head, blank, data = piece[2:].partition(b"\r\n\r\n")
    if not blank or len(head) > MAX_PART_HEADER_BYTES:
        return None
    disposition: str | None = None
    for line in head.split(b"\r\n"):
        name, colon, value = line.partition(b":")
        if not colon:
            return None
        if name.strip().lower() == b"content-disposition" and disposition is None:
            try:
                disposition = value.decode("utf-8").strip()
            except UnicodeDecodeError:
                return None
    if disposition is None:
        return None
    kind, sep, rest = disposition.partition(";")
    params = _params(sep + rest)
    if kind.strip().lower() != "form-data" or params is None or not params.get("name"):
        return None
    return params["name"], "filename" in params, data
