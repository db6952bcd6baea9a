"""Console test helpers: a development-mode server (its dev account and one-time sign-in link
read from dev.env), and a small cookie-keeping HTTP client for the attack tests."""

from __future__ import annotations

import http.client
import re
import shlex
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import urllib3

from tests.conftest import Server, ServerProcess


def dev_env(data_dir: Path) -> dict[str, str]:
    values = {}
    for line in (data_dir / "dev.env").read_text().splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        parts = shlex.split(value) if value else [""]
        values[name.strip()] = parts[0] if parts else ""
    return values


@dataclass
class ConsoleServer:
    process: ServerProcess
    server: Server
    console_url: str  # the one-time sign-in link

    @property
    def base(self) -> str:
        return f"{self.server.endpoint}/console"


def start_dev_server(data_dir: Path, *extra: str) -> ConsoleServer:
    """``openkms serve --dev`` on a fresh data directory: its dev account and sign-in link."""
    proc = ServerProcess(data_dir, extra_args=("--dev", *extra))
    proc.start()
    env = dev_env(data_dir)
    server = Server(
        endpoint=proc.endpoint,
        access_key_id=env["AWS_ACCESS_KEY_ID"],
        secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        account_id="",
        data_dir=data_dir,
    )
    return ConsoleServer(proc, server, env.get("OPENKMS_CONSOLE_URL", ""))


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: str
    raw: bytes = b""


class Browserless:
    """Requests as a browser would send them (cookie, Origin, Sec-Fetch-Site), and none of a
    browser's protections: what an attacker's script or a curious user can do."""

    def __init__(self, endpoint: str) -> None:
        parts = urllib.parse.urlsplit(endpoint)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.origin = endpoint
        self.cookie: str | None = None

    def request(
        self,
        method: str,
        path: str,
        form: dict[str, str] | None = None,
        *,
        headers: dict[str, str] | None = None,
        same_origin: bool = True,
    ) -> Answer:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        sent = {"Host": f"{self.host}:{self.port}"}
        if same_origin and method == "POST":
            sent["Origin"] = self.origin
            sent["Sec-Fetch-Site"] = "same-origin"
        if self.cookie:
            sent["Cookie"] = self.cookie
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        sent.update(headers or {})
        try:
            conn.request(method, path, body=body, headers=sent)
            resp = conn.getresponse()
            raw = resp.read()
        finally:
            conn.close()
        text = raw.decode("utf-8", "replace")
        for value in resp.headers.get_all("set-cookie") or []:
            pair = value.split(";", 1)[0]
            self.cookie = None if pair.endswith("=") else pair
        return Answer(resp.status, resp.headers, text, raw)

    def upload(
        self, path: str, fields: dict[str, str], files: dict[str, tuple[str, bytes, str]],
        **kwargs: object,
    ) -> Answer:
        """A multipart/form-data POST, as a browser sends a form with file inputs: each file is
        (file name, bytes, content type)."""
        body, content_type = urllib3.encode_multipart_formdata({**fields, **files})
        return self.request_raw(path, body, content_type, **kwargs)

    def request_raw(
        self, path: str, body: bytes, content_type: str, *, same_origin: bool = True,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        sent = {"Host": f"{self.host}:{self.port}", "Content-Type": content_type}
        if same_origin:
            sent["Origin"] = self.origin
            sent["Sec-Fetch-Site"] = "same-origin"
        if self.cookie:
            sent["Cookie"] = self.cookie
        sent.update(headers or {})
        try:
            conn.request("POST", path, body=body, headers=sent)
            resp = conn.getresponse()
            raw = resp.read()
        finally:
            conn.close()
        return Answer(resp.status, resp.headers, raw.decode("utf-8", "replace"), raw)

    def get(self, path: str) -> Answer:
        return self.request("GET", path)

    def post(self, path: str, form: dict[str, str], **kwargs: object) -> Answer:
        return self.request("POST", path, form, **kwargs)  # type: ignore[arg-type]

    def sign_in(self, access_key_id: str, secret: str) -> Answer:
        return self.post(
            "/console/signin", {"access_key_id": access_key_id, "secret_access_key": secret}
        )

    def csrf(self, path: str = "/console/keys") -> str:
        page = self.get(path)
        match = re.search(r'name="csrf" value="([^"]+)"', page.body)
        assert match, page.body[:500]
        return match.group(1)
