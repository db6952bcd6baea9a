"""The console's API client: each call is a SigV4-signed HTTP request, handed to the server's own
ASGI application in-process, exactly as it would arrive from boto3 over the wire.

So every console action is authenticated, authorized, rate-limited, measured and audited by the
same code as any other client's call, as the signed-in principal (``userAgent`` names the
console). Nothing below ``openkms.http`` knows the console exists; the console knows only the
application's ASGI entry point.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode
from xml.etree import ElementTree

from botocore.auth import SigV4Auth  # type: ignore[import-untyped]
from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]
from botocore.credentials import Credentials  # type: ignore[import-untyped]

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Asgi = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]

USER_AGENT = "openkms-console/1.0"


@dataclass(frozen=True, slots=True)
class Creds:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def __repr__(self) -> str:
        return f"Creds(access_key_id={self.access_key_id!r}, secret=<redacted>)"


class ApiError(Exception):
    """An error answer from the API: AWS's code and message, shown to the user as they are."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True, slots=True)
class Origin:
    """Where the browser's request came from, carried into the API request (the audit record's
    sourceIPAddress, the Host the signature covers, aws:SecureTransport)."""

    host: str
    client: tuple[str, int]
    scheme: str
    region: str
    browser_agent: str


class ApiClient:
    def __init__(self, app: Asgi) -> None:
        self._app = app

    async def kms(
        self, creds: Creds, origin: Origin, operation: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        return await self._json(creds, origin, "kms", f"TrentService.{operation}", params)

    async def openkms(
        self, creds: Creds, origin: Origin, operation: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        """An openkms extension of the KMS API (``OpenKMS.SearchKeys`` ...), signed for ``kms``."""
        return await self._json(creds, origin, "kms", f"OpenKMS.{operation}", params)

    async def secrets(
        self, creds: Creds, origin: Origin, operation: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        """A Secrets Manager call (JSON 1.1, signed for ``secretsmanager``)."""
        return await self._json(
            creds, origin, "secretsmanager", f"secretsmanager.{operation}", params
        )

    async def _json(
        self, creds: Creds, origin: Origin, service: str, target: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        body = json.dumps(params).encode()
        headers = {
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": target,
        }
        status, payload, _ = await self._call(creds, origin, service, body, headers)
        if status >= 300:
            raise _json_error(payload, status)
        try:
            doc = json.loads(payload) if payload else {}
        except ValueError:
            doc = {}
        return doc if isinstance(doc, dict) else {}

    async def query(
        self, creds: Creds, origin: Origin, service: str, action: str, params: dict[str, str]
    ) -> ElementTree.Element:
        """An IAM or STS call (AWS Query protocol); the answer's ``...Result`` element."""
        version = "2010-05-08" if service == "iam" else "2011-06-15"
        body = urlencode({"Action": action, "Version": version, **params}).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
        status, payload, _ = await self._call(creds, origin, service, body, headers)
        try:
            root = ElementTree.fromstring(payload)  # noqa: S314 - our own server's answer
        except ElementTree.ParseError:
            # Refused before the Query API answered (a body limit, a cross-site refusal):
            # the JSON error of the transport.
            raise _json_error(payload, status) from None
        if status >= 300:
            code = _find_text(root, "Code") or "InternalFailure"
            raise ApiError(code, _find_text(root, "Message"), status)
        found = children(root, f"{action}Result")
        return found[0] if found else ElementTree.Element("empty")

    async def _call(
        self, creds: Creds, origin: Origin, service: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, bytes, dict[str, str]]:
        request = AWSRequest(
            method="POST", url=f"{origin.scheme}://{origin.host}/", data=body, headers=headers
        )
        request.headers["Host"] = origin.host
        request.headers["User-Agent"] = f"{USER_AGENT} ({origin.browser_agent[:200]})"
        credentials = Credentials(
            creds.access_key_id, creds.secret_access_key, creds.session_token
        )
        SigV4Auth(credentials, service, origin.region).add_auth(request)
        raw_headers = [
            (name.lower().encode("latin-1"), str(value).encode("latin-1"))
            for name, value in request.headers.items()
        ]
        raw_headers.append((b"content-length", str(len(body)).encode()))
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": origin.scheme,
            "path": "/",
            "raw_path": b"/",
            "query_string": b"",
            "headers": raw_headers,
            "client": origin.client,
            "server": None,
        }
        sent = False

        async def receive() -> Message:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        answer: dict[str, Any] = {"status": 500, "body": b"", "headers": {}}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                answer["headers"] = {
                    k.decode("latin-1"): v.decode("latin-1") for k, v in message["headers"]
                }
            elif message["type"] == "http.response.body":
                answer["body"] += message.get("body", b"")

        await self._app(scope, receive, send)
        return int(answer["status"]), bytes(answer["body"]), dict(answer["headers"])


def _json_error(payload: bytes, status: int) -> ApiError:
    try:
        doc = json.loads(payload) if payload else {}
    except ValueError:
        doc = {}
    if not isinstance(doc, dict):
        doc = {}
    code = str(doc.get("__type", "InternalFailure")).rsplit("#", 1)[-1]
    return ApiError(code, str(doc.get("message") or doc.get("Message") or ""), status)


def _find_text(root: ElementTree.Element, name: str) -> str:
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] == name:
            return element.text or ""
    return ""


def children(element: ElementTree.Element, name: str) -> list[ElementTree.Element]:
    """Elements named ``name`` (any namespace) anywhere below ``element``."""
    return [e for e in element.iter() if e.tag.rsplit("}", 1)[-1] == name]


def text_of(element: ElementTree.Element, name: str) -> str:
    return _find_text(element, name)
