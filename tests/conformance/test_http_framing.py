"""HTTP/1.1 framing over a raw socket against the real server: keep-alive, pipelining,
``Expect: 100-continue``, ``HEAD`` and ``Connection: close`` behave as HTTP says they should
with responses written whole (tests/unit/test_http_protocol.py counts the writes)."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from tests.conftest import Server


def _connect(server: Server) -> socket.socket:
    parts = urlsplit(server.endpoint)
    sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _get(path: str, extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode()


def _read_response(sock: socket.socket, buffer: bytearray) -> tuple[bytes, bytes]:
    """(head, body) of the next response, reading only as much as it needs."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before a full response"
        buffer += chunk
    end = buffer.index(b"\r\n\r\n") + 4
    head = bytes(buffer[:end])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(buffer) < end + length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed inside a body"
        buffer += chunk
    body = bytes(buffer[end : end + length])
    del buffer[: end + length]
    return head, body


def test_keep_alive_and_pipelined_requests(server: Server) -> None:
    with _connect(server) as sock:
        sock.sendall(_get("/healthz") + _get("/readyz") + _get("/healthz"))
        buffer = bytearray()
        for _ in range(3):
            head, body = _read_response(sock, buffer)
            assert head.startswith(b"HTTP/1.1 200")
            assert b'"status":"ok"' in body
        assert not buffer


def test_connection_close_ends_the_connection_after_the_response(server: Server) -> None:
    with _connect(server) as sock:
        sock.sendall(_get("/healthz", "Connection: close\r\n"))
        buffer = bytearray()
        head, _ = _read_response(sock, buffer)
        assert b"connection: close" in head.lower()
        assert sock.recv(1) == b""


def test_head_has_headers_only(server: Server) -> None:
    with _connect(server) as sock:
        sock.sendall(b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n" + _get("/healthz"))
        buffer = bytearray()
        while buffer.count(b"HTTP/1.1 ") < 2 or not buffer.endswith(b"}"):
            chunk = sock.recv(65536)
            assert chunk, bytes(buffer)
            buffer += chunk
        first, _, rest = bytes(buffer).partition(b"\r\n\r\n")
        assert first.startswith(b"HTTP/1.1 ")
        assert b"content-length:" in first.lower()
        assert rest.startswith(b"HTTP/1.1 200")  # no body between the two responses


def test_expect_100_continue(server: Server) -> None:
    body = b"{}"
    request = (
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.1\r\n"
        b"X-Amz-Target: TrentService.ListKeys\r\nExpect: 100-continue\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    )
    with _connect(server) as sock:
        sock.sendall(request)
        interim = sock.recv(65536)
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(body)
        buffer = bytearray(interim[len(b"HTTP/1.1 100 Continue\r\n\r\n") :])
        head, answer = _read_response(sock, buffer)
        # Unsigned: AWS's answer to a request without credentials.
        assert head.startswith(b"HTTP/1.1 400") or head.startswith(b"HTTP/1.1 403")
        assert b"MissingAuthenticationToken" in answer or b"MissingAuthenticationToken" in head
