"""The console's ASGI application, mounted in front of the API application on the same port.

Requests under ``/console`` are the console's; everything else goes to the API application
untouched. The console's pages call the API through ``ApiClient`` (signed requests handed to the
same API application), never the service or storage layers. Its own state is the session
records (``openkms.console.sessions``), kept in the server's storage so that every worker
process sees them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from openkms.console import (
    audit_view,
    filters,
    grant_forms,
    iam_view,
    import_forms,
    key_forms,
    keys,
    keystores_view,
    overview,
    secrets,
)
from openkms.console.client import ApiClient, ApiError, Creds, Origin, text_of
from openkms.console.page import Page
from openkms.console.sessions import SessionStore
from openkms.console.web import MAX_FORM_BYTES, Request, Response
from openkms.http.app import OpenKMSApp

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Handler = Callable[[Page], Awaitable[Response]]

log = logging.getLogger("openkms.console")
HERE = Path(__file__).parent
PREFIX = "/console"
_STATIC = HERE / "static"
_ACCESS_KEY_ID = re.compile(r"[A-Z0-9]{16,128}")
_PRINTABLE = re.compile(r"[\x21-\x7e]{1,4096}")
_STATIC_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}


class ConsoleApp:
    def __init__(self, inner: OpenKMSApp) -> None:
        self.inner = inner
        self.settings = inner.settings
        self.api = ApiClient(inner)
        self.sessions = SessionStore(inner.wired.storage, self.settings.console_session_seconds)
        self.clock = inner.runtime.clock
        regions = self.settings.region_set()
        # The console works in one Region: us-east-1 where the server accepts it (boto3's and
        # dev.env's default), else the first the server accepts.
        self.region = "us-east-1" if "us-east-1" in regions else sorted(regions)[0]
        self.templates = Environment(
            loader=FileSystemLoader(str(HERE / "templates")),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        filters.install(self.templates)
        self.templates.globals["grant_operations"] = grant_forms.OPERATIONS
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        # The first matching route answers: grant and import actions before key_forms' general
        # /keys/<id>/<action>.
        for module in (grant_forms, import_forms, key_forms, keys, keystores_view, secrets,
                       audit_view, overview, iam_view):
            for method, pattern, handler in module.ROUTES:
                self.routes.append((method, re.compile(f"^{PREFIX}{pattern}$"), handler))

    # -- ASGI -----------------------------------------------------------------------------------
    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_console(scope["path"]):
            await self.inner(scope, receive, send)
            return
        body = None if _declared_too_large(scope) else await _read_body(receive)
        if body is None:
            response = Response.text(413, "Request body too large.")
        else:
            request = Request.from_scope(scope, body)
            try:
                response = await self.handle(request)
            except Exception:
                log.exception("console: %s %s failed", request.method, request.path)
                response = Response.text(500, "The console could not answer this request.")
        await send(
            {"type": "http.response.start", "status": response.status,
             "headers": response.asgi_headers()}
        )
        await send({"type": "http.response.body", "body": response.body})

    async def handle(self, request: Request) -> Response:
        path = request.path
        if path in (PREFIX, PREFIX + "/"):
            path = PREFIX + "/overview"
        if path.startswith(PREFIX + "/static/") and request.method == "GET":
            return _static(path[len(PREFIX + "/static/") :])
        if path == PREFIX + "/signin":
            return await self.signin(request)
        if path == PREFIX + "/signin/dev" and request.method == "GET":
            return await self.signin_dev(request)
        now = self.clock.now()
        session = self.sessions.load(request.cookie(), now)
        if request.method == "POST":
            # Cross-site requests are refused before anything else, signed in or not.
            if not request.same_origin():
                return Response.text(403, "Cross-site request refused.")
            if session is None:
                return Response.text(403, "Sign in first.")
            if not session.csrf_ok(request.form.get("csrf")):
                return Response.text(403, "The form's CSRF token is missing or wrong.")
        elif request.method != "GET":
            return Response.text(405, "Method not allowed.")
        if session is None:
            if path.endswith(".json"):
                return Response.text(401, "Sign in first.")
            response = Response.redirect(f"{PREFIX}/signin?expired=1")
            if request.cookie():
                response.clear_session(request.secure)
            return response
        if path == PREFIX + "/signout" and request.method == "POST":
            self.sessions.delete(session.sid)
            response = Response.redirect(f"{PREFIX}/signin")
            response.clear_session(request.secure)
            return response
        for method, pattern, handler in self.routes:
            match = pattern.match(path)
            if match and method == request.method:
                page = Page(
                    request=request,
                    session=session,
                    params=match.groupdict(),
                    api=self.api,
                    templates=self.templates,
                    settings=self.settings,
                    region=self.region,
                    metrics=self.inner.metrics,
                )
                return await handler(page)
        return Response.text(404, "Not found.")

    # -- sign-in --------------------------------------------------------------------------------
    def _signin_page(self, status: int = 200, **values: Any) -> Response:
        body = self.templates.get_template("signin.html").render(**values)
        return Response(status, body.encode())

    async def signin(self, request: Request) -> Response:
        if request.method == "GET":
            return self._signin_page(expired=request.query.get("expired") == "1")
        if request.method != "POST":
            return Response.text(405, "Method not allowed.")
        if not request.same_origin():
            return Response.text(403, "Cross-site request refused.")
        form = request.form
        creds = Creds(
            form.get("access_key_id", "").strip(),
            form.get("secret_access_key", "").strip(),
            form.get("session_token", "").strip() or None,
        )
        if not creds.access_key_id or not creds.secret_access_key:
            return self._signin_page(400, error="Enter an access key id and its secret.")
        if not (
            _ACCESS_KEY_ID.fullmatch(creds.access_key_id)
            and _PRINTABLE.fullmatch(creds.secret_access_key)
            and (creds.session_token is None or _PRINTABLE.fullmatch(creds.session_token))
        ):
            return self._signin_page(
                400, error="That is not an access key pair: an access key id is 16 to 128 "
                "letters and digits, a secret and a session token are printable ASCII."
            )
        return await self._start_session(request, creds)

    async def signin_dev(self, request: Request) -> Response:
        creds = self.sessions.consume_devlink(request.query.get("token"), self.clock.now())
        if creds is None:
            return self._signin_page(
                403, error="This sign-in link was already used or has expired. Restart "
                "`make run` for a new one, or sign in with the key pair in dev.env."
            )
        return await self._start_session(request, creds)

    async def _start_session(self, request: Request, creds: Creds) -> Response:
        origin = Origin(
            host=request.host,
            client=request.client,
            scheme=request.scheme,
            region=self.region,
            browser_agent=request.headers.get("user-agent", ""),
        )
        try:
            identity = await self.api.query(creds, origin, "sts", "GetCallerIdentity", {})
        except ApiError as exc:
            return self._signin_page(400, error=f"{exc.code}: {exc.message}")
        arn = text_of(identity, "Arn")
        account = text_of(identity, "Account")
        old = request.cookie()
        if old:
            self.sessions.delete(old)
        session = self.sessions.create(creds, arn, account, self.clock.now())
        response = Response.redirect(f"{PREFIX}/")
        response.set_session(session.sid, self.settings.console_session_seconds, request.secure)
        return response


def _is_console(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def _declared_too_large(scope: Message) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value) > MAX_FORM_BYTES
            except ValueError:
                return False
    return False


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            return None
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


def _static(name: str) -> Response:
    # Only files directly in static/ or static/vendor/, by a plain name: no traversal.
    if not re.fullmatch(r"(vendor/)?[A-Za-z0-9_.-]+", name) or ".." in name:
        return Response.text(404, "Not found.")
    path = _STATIC / name
    suffix = path.suffix
    if suffix not in _STATIC_TYPES or not path.is_file():
        return Response.text(404, "Not found.")
    response = Response(200, path.read_bytes(), _STATIC_TYPES[suffix])
    response.headers.append(("cache-control", "public, max-age=3600"))
    return response


def create(inner: OpenKMSApp) -> ConsoleApp:
    return ConsoleApp(inner)
