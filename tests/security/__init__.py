"""Attacks against a real openkms server process, one module per attack class.

Each test performs the attack it is named after and states, in its docstring, the AWS rule (or
the openkms rule, where AWS publishes none) that defeats it. Helpers shared by the modules live
here; servers come from the fixtures in ``tests/conftest.py``.
"""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


def host_port(endpoint: str) -> tuple[str, int]:
    parts = urlsplit(endpoint)
    return parts.hostname or "127.0.0.1", parts.port or 80


def connect(endpoint: str, timeout: float = 10.0) -> socket.socket:
    sock = socket.create_connection(host_port(endpoint), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def healthz_seconds(endpoint: str, timeout: float = 5.0) -> float:
    """Seconds one ``GET /healthz`` takes on a new connection (``timeout`` if it fails)."""
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(f"{endpoint}/healthz", timeout=timeout) as resp:
            resp.read()
            if resp.status != 200:
                return timeout
    except (urllib.error.URLError, OSError):
        return timeout
    return time.perf_counter() - started


def write_config(path: Path, lines: Iterable[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def read_until_closed(sock: socket.socket, limit: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection (or ``limit`` seconds pass);
    and how long that took."""
    started = time.monotonic()
    data = b""
    sock.settimeout(0.2)
    while time.monotonic() - started < limit:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except (ConnectionResetError, BrokenPipeError):
            break
        if not chunk:
            break
        data += chunk
    return data, time.monotonic() - started


def send_url(url: str, body: bytes, headers: dict[str, str], method: str = "POST") -> Any:
    """``tests.conformance.send`` with the URL's query string kept (presigned URLs)."""
    import http.client

    from tests.conformance import RawResponse

    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        conn.request(method, target, body=body, headers=dict(headers))
        resp = conn.getresponse()
        data = resp.read()
        return RawResponse(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
    finally:
        conn.close()
