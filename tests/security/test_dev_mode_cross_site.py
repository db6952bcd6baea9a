"""Attacks on a developer's machine through the browser, against ``openkms serve --dev
--accept-any-credentials``: a web page posts a "simple" cross-site request to
``/_openkms/reset``, or rebinds its own DNS name to 127.0.0.1 and then signs (any signature
will do) and reads Decrypt answers as same-origin.

Rules (openkms; the standard defences of local development servers): development mode answers
only requests whose ``Host`` is a loopback name (localhost, 127.x.x.x, [::1]) and that carry no
``Origin`` of another site; the reset requires a request no web page can send across sites
without a CORS preflight (``Content-Type: application/json`` or an ``X-Openkms-Reset`` header).
Refusals are ``AccessDeniedException``.
"""

from __future__ import annotations

import base64
import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conformance import kms_headers, sign
from tests.conftest import Server, ServerProcess, make_client
from tests.security import host_port


@pytest.fixture(scope="module")
def permissive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("openkms-permissive")
    proc = ServerProcess(
        data_dir, extra_args=["--dev", "--accept-any-credentials", "--account-id", "111122223333"]
    )
    proc.start()
    try:
        yield Server(
            endpoint=proc.endpoint,
            access_key_id="AKIAANYTHINGGOES000",
            secret_access_key="whatever",
            account_id="111122223333",
            data_dir=data_dir,
        )
    finally:
        proc.stop()


def _raw(server: Server, method: str, path: str, body: bytes, headers: dict[str, str]) -> Any:
    host, port = host_port(server.endpoint)
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        if not any(name.lower() == "content-length" for name in headers):
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def _key_count(server: Server) -> int:
    return len(make_client(server).list_keys()["Keys"])


def test_cross_site_simple_post_cannot_reset(permissive: Server) -> None:
    """What a page on https://evil.example can send without a preflight: a text/plain POST
    with its Origin. Before: every key was wiped."""
    make_client(permissive).create_key(Description="survives the page")
    count = _key_count(permissive)
    host = host_port(permissive.endpoint)
    status, _, body = _raw(
        permissive,
        "POST",
        "/_openkms/reset",
        b"x",
        {
            "Host": f"{host[0]}:{host[1]}",
            "Origin": "https://evil.example",
            "Content-Type": "text/plain",
        },
    )
    assert status == 400, body
    assert b"AccessDeniedException" in body
    assert _key_count(permissive) == count


def test_simple_post_without_origin_still_cannot_reset(permissive: Server) -> None:
    """A simple request from a context that sends no Origin (older browsers, some redirects):
    still refused, since the reset requires a non-simple request."""
    make_client(permissive).create_key()
    count = _key_count(permissive)
    host = host_port(permissive.endpoint)
    status, _, body = _raw(
        permissive,
        "POST",
        "/_openkms/reset",
        b"x",
        {"Host": f"{host[0]}:{host[1]}", "Content-Type": "text/plain"},
    )
    assert status == 400 and b"application/json" in body
    assert _key_count(permissive) == count


def test_dns_rebinding_host_cannot_decrypt(permissive: Server) -> None:
    """After rebinding, the page's requests reach 127.0.0.1 with ``Host: evil.example:port``
    and (in this mode) any signature: refused before any operation runs."""
    kms = make_client(permissive)
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"secret")["CiphertextBlob"]
    body = json.dumps({"CiphertextBlob": base64.b64encode(blob).decode()}).encode()
    port = host_port(permissive.endpoint)[1]
    url = f"http://evil.example:{port}/"
    headers = sign(
        url,
        body,
        kms_headers("Decrypt"),
        access_key_id="AKIAANYTHINGGOES000",
        secret_access_key="whatever",
    )
    headers["Host"] = f"evil.example:{port}"
    status, _, answer = _raw(permissive, "POST", "/", body, headers)
    assert status == 400, answer
    assert b"AccessDeniedException" in answer and b"secret" not in answer
    assert b"c2VjcmV0" not in answer  # base64 of the plaintext


def test_foreign_origin_cannot_call_the_api(permissive: Server) -> None:
    host, port = host_port(permissive.endpoint)
    headers = sign(
        permissive.endpoint + "/",
        b"{}",
        {**kms_headers("ListKeys"), "Origin": "http://evil.example"},
        access_key_id="AKIAANYTHINGGOES000",
        secret_access_key="whatever",
    )
    headers["Host"] = f"{host}:{port}"
    status, _, body = _raw(permissive, "POST", "/", b"{}", headers)
    assert status == 400 and b"AccessDeniedException" in body


def test_the_developer_can_still_reset_and_use_localhost(permissive: Server) -> None:
    """What fixtures do: a JSON POST to 127.0.0.1, and boto3 through ``localhost``."""
    make_client(permissive).create_key()
    host, port = host_port(permissive.endpoint)
    status, _, body = _raw(
        permissive,
        "POST",
        "/_openkms/reset",
        b"{}",
        {"Host": f"{host}:{port}", "Content-Type": "application/json"},
    )
    assert status == 200, body
    assert _key_count(permissive) == 0
    via_localhost = Server(
        endpoint=f"http://localhost:{port}",
        access_key_id="AKIAANYTHINGGOES000",
        secret_access_key="x",
        account_id="111122223333",
        data_dir=Path(permissive.data_dir),
    )
    make_client(via_localhost).list_keys()
    status, _, _ = _raw(
        permissive,
        "GET",
        "/healthz",
        b"",
        {"Host": f"localhost:{port}", "Origin": f"http://localhost:{port}"},
    )
    assert status == 200


def test_plain_dev_mode_checks_the_host_too(tmp_path: Path) -> None:
    proc = ServerProcess(tmp_path / "dev", extra_args=["--dev"])
    proc.start()
    try:
        host, port = host_port(proc.endpoint)
        server = Server(proc.endpoint, "AKIAX", "x", "000000000000", tmp_path / "dev")
        status, _, body = _raw(server, "GET", "/healthz", b"", {"Host": f"evil.example:{port}"})
        assert status == 400 and b"AccessDeniedException" in body
        status, _, _ = _raw(server, "GET", "/healthz", b"", {"Host": f"{host}:{port}"})
        assert status == 200
    finally:
        proc.stop()
