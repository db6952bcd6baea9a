"""Attacks that hold the server's connections: slowloris headers, slow bodies, silent
connections, huge headers and connection floods.

Rules (openkms, as HTTP servers in front of AWS apply them): a request's line and headers must
arrive within ``header_timeout_seconds`` (and the first request within that time of the
connection), its body within ``body_timeout_seconds`` of the headers, else ``408`` and the
connection is closed; more than ``max_header_bytes`` of headers is ``431``; beyond
``max_connections`` open connections a new one gets ``503`` and is closed. The limits are
settings; this module runs a server with short ones.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from tests.conftest import Server, ServerProcess, create_account, server_from_account
from tests.security import connect, healthz_seconds, read_until_closed, write_config

HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 2.0
MAX_CONNECTIONS = 30


@pytest.fixture(scope="module")
def tight(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("openkms-slow")
    config = write_config(
        data_dir / "limits.toml",
        [
            f"header_timeout_seconds = {HEADER_TIMEOUT}",
            f"body_timeout_seconds = {BODY_TIMEOUT}",
            "keep_alive_timeout_seconds = 2",
            f"max_connections = {MAX_CONNECTIONS}",
        ],
    )
    account = create_account(data_dir)
    proc = ServerProcess(data_dir, extra_args=["--config", str(config)])
    proc.start()
    try:
        yield server_from_account(proc.endpoint, data_dir, account)
    finally:
        proc.stop()


def _trickle(sock: socket.socket, data: bytes, interval: float, limit: float) -> float:
    """Sends ``data`` a byte every ``interval`` s until the server closes (or ``limit``);
    returns the seconds until the connection was cut."""
    started = time.monotonic()
    sock.settimeout(interval)
    for byte in data:
        if time.monotonic() - started > limit:
            break
        try:
            sock.sendall(bytes([byte]))
            if sock.recv(65536) == b"":
                break
        except TimeoutError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            break
    return time.monotonic() - started


def test_slowloris_headers_a_byte_every_300ms_are_cut_off(tight: Server) -> None:
    """Headers trickled a byte at a time never complete: the connection is closed after the
    header deadline instead of being held for ever."""
    with connect(tight.endpoint) as sock:
        head = b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 200
        seconds = _trickle(sock, head, 0.3, 10.0)
    assert seconds < HEADER_TIMEOUT + 1.5, seconds


def test_slow_body_a_byte_every_300ms_is_answered_408(tight: Server) -> None:
    with connect(tight.endpoint) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-amz-json-1.1\r\n"
            b"X-Amz-Target: TrentService.ListKeys\r\nContent-Length: 500\r\n\r\n"
        )
        started = time.monotonic()
        received = b""
        sock.settimeout(0.3)
        while time.monotonic() - started < 10:
            try:
                sock.sendall(b" ")
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
            if not chunk:
                break
            received += chunk
        seconds = time.monotonic() - started
    assert seconds < BODY_TIMEOUT + 1.5, seconds
    assert received.startswith(b"HTTP/1.1 408"), received[:80]


def test_silent_connection_is_closed(tight: Server) -> None:
    """A connection that sends nothing at all is closed after the header deadline."""
    with connect(tight.endpoint) as sock:
        data, seconds = read_until_closed(sock, 10.0)
    assert seconds < HEADER_TIMEOUT + 1.0, seconds
    assert data == b"" or data.startswith(b"HTTP/1.1 408")


def test_4_mib_x_amz_target_is_refused_with_431(tight: Server) -> None:
    """The issue's 4 MiB X-Amz-Target header: refused once the headers pass max_header_bytes,
    without the server reading (or buffering) the rest."""
    with connect(tight.endpoint) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: TrentService.")
        sent = 0
        try:
            chunk = b"A" * 65536
            while sent < 4 * 1024 * 1024:
                sock.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        data, _ = read_until_closed(sock, 5.0)
    assert sent < 4 * 1024 * 1024 or data.startswith(b"HTTP/1.1 431"), (sent, data[:80])
    if data:
        assert data.startswith(b"HTTP/1.1 431"), data[:80]
    assert healthz_seconds(tight.endpoint) < 1.0


def test_header_just_over_the_limit_in_one_packet_is_refused(tight: Server) -> None:
    with connect(tight.endpoint) as sock:
        sock.sendall(
            b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: "
            + b"u" * (16 * 1024)
            + b"\r\n\r\n"
        )
        data, _ = read_until_closed(sock, 5.0)
    assert data.startswith(b"HTTP/1.1 431"), data[:80]


def test_connection_flood_is_capped_and_recovers(tight: Server) -> None:
    """60 idle connections against a cap of 30: the extra ones are answered 503 and closed at
    once; when the idle ones time out, the server answers again."""
    sockets = [connect(tight.endpoint) for _ in range(2 * MAX_CONNECTIONS)]
    try:
        refused = 0
        for sock in sockets:
            sock.settimeout(0.5)
            try:
                data = sock.recv(4096)
            except TimeoutError:
                continue
            except ConnectionResetError:
                refused += 1
                continue
            if data.startswith(b"HTTP/1.1 503") or data == b"":
                refused += 1
        assert refused >= MAX_CONNECTIONS - 2, refused
    finally:
        for sock in sockets:
            sock.close()
    deadline = time.monotonic() + HEADER_TIMEOUT + 3
    while healthz_seconds(tight.endpoint, timeout=1.0) >= 1.0:
        assert time.monotonic() < deadline, "the server did not recover"
        time.sleep(0.1)


def test_slowloris_connections_below_the_cap_leave_healthz_fast(tight: Server) -> None:
    """Twenty connections trickling headers do not slow down anyone else."""
    sockets = [connect(tight.endpoint) for _ in range(20)]
    try:
        for sock in sockets:
            sock.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        worst = max(healthz_seconds(tight.endpoint) for _ in range(10))
        assert worst < 0.5, worst  # blocked, it would be seconds; 0.5 leaves room for a busy CI
    finally:
        for sock in sockets:
            sock.close()
