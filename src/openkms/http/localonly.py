"""Development mode answers its developer only, not the web pages the developer visits.

A server started with ``--dev`` (and above all ``--accept-any-credentials``, which takes any
well-formed signature as the account root) listens on a loopback address, but a browser on
the same machine can still reach it:

* **Cross-site requests**: any page can make the browser ``POST`` to ``http://127.0.0.1:4566``
  as a "simple" request (no preflight) with a ``text/plain`` body, e.g. to ``/_openkms/reset``.
  The browser sends an ``Origin`` header naming the page. Requests whose ``Origin`` (or
  ``Sec-Fetch-Site: cross-site``) names anything but a loopback origin are refused, and the
  reset needs a request no page can send without a CORS preflight (which openkms never
  grants): ``Content-Type: application/json`` or an ``X-Openkms-Reset`` header.
* **DNS rebinding**: a page on ``evil.example`` rebinds that name to 127.0.0.1 and reads the
  answers as same-origin; its requests carry ``Host: evil.example:4566``. Only requests whose
  ``Host`` is a loopback name (``localhost``, ``127.x.x.x``, ``[::1]``, with any port) are
  answered.

Refusals are ``AccessDeniedException`` (HTTP 400, as KMS sends it).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

__all__ = ["cross_site_refusal", "is_loopback_name", "reset_refusal"]


def is_loopback_name(host: str) -> bool:
    """``localhost`` (any case, with a trailing dot), an IPv4 address in 127.0.0.0/8 or
    ``::1`` (bracketed or not)."""
    name = host.strip().lower().rstrip(".")
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _host_name(value: str) -> str:
    """The host part of a ``Host`` header value (``[::1]:4566`` -> ``[::1]``)."""
    value = value.strip()
    if value.startswith("["):
        end = value.find("]")
        return value[: end + 1] if end >= 0 else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def _headers(scope: MutableMapping[str, Any], *names: bytes) -> dict[bytes, list[str]]:
    found: dict[bytes, list[str]] = {}
    raw: Iterable[tuple[bytes, bytes]] = scope["headers"]
    for name, value in raw:
        if name in names:
            found.setdefault(name, []).append(value.decode("latin-1"))
    return found


def cross_site_refusal(scope: MutableMapping[str, Any]) -> str | None:
    """Why a request must not be answered in development mode, or None."""
    headers = _headers(scope, b"host", b"origin", b"sec-fetch-site")
    for host in headers.get(b"host", ()):
        if not is_loopback_name(_host_name(host)):
            return (
                f"Development mode answers only requests addressed to a loopback name "
                f"(localhost, 127.0.0.1, [::1]), not to {host[:100]!r}."
            )
    for origin in headers.get(b"origin", ()):
        parts = urlsplit(origin.strip())
        if parts.scheme not in ("http", "https") or not is_loopback_name(parts.hostname or ""):
            return (
                f"Development mode refuses requests from web pages of another origin "
                f"({origin[:100]!r})."
            )
    if any(v.strip().lower() == "cross-site" for v in headers.get(b"sec-fetch-site", ())):
        return "Development mode refuses cross-site requests from web pages."
    return None


def reset_refusal(scope: MutableMapping[str, Any]) -> str | None:
    """Why ``POST /_openkms/reset`` is refused, or None: it must be a request a web page
    cannot send without a preflight (JSON content type, or an ``X-Openkms-Reset`` header)."""
    headers = _headers(scope, b"content-type", b"x-openkms-reset")
    if headers.get(b"x-openkms-reset"):
        return None
    for value in headers.get(b"content-type", ()):
        if value.split(";", 1)[0].strip().lower() == "application/json":
            return None
    return (
        "The reset needs 'Content-Type: application/json' (or an 'X-Openkms-Reset' header), "
        "which no web page can send across sites without a preflight."
    )
