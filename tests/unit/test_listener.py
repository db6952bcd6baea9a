"""openkms.http.listener: the supervisor's reserved port and each worker's own listener."""

from __future__ import annotations

import io
import pickle
import socket
import sys
from multiprocessing.reduction import ForkingPickler

import pytest

from openkms.http import listener

pytestmark = pytest.mark.skipif(
    not listener.balancing_supported(), reason="SO_REUSEPORT balancing is Linux's"
)


def _through_spawn(sock: socket.socket) -> socket.socket:
    """What a worker started with multiprocessing's spawn receives."""
    buffer = io.BytesIO()
    ForkingPickler(buffer).dump(sock)
    received = pickle.loads(buffer.getvalue())
    assert isinstance(received, socket.socket)
    return received


def test_a_worker_gets_a_fresh_socket_bound_to_the_reserved_address() -> None:
    reserved = listener.reserve("127.0.0.1", 0)
    try:
        port = reserved.getsockname()[1]
        assert port != 0
        first, second = _through_spawn(reserved), _through_spawn(reserved)
        try:
            for sock in (first, second):
                assert type(sock) is socket.socket
                assert sock.fileno() != reserved.fileno()
                assert sock.getsockname() == ("127.0.0.1", port)
                assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
            first.listen()
            second.listen()  # both listen on the one port
            client = socket.create_connection(("127.0.0.1", port), timeout=5)
            client.close()
        finally:
            first.close()
            second.close()
    finally:
        reserved.close()


def test_the_reserved_port_accepts_no_connection_itself() -> None:
    reserved = listener.reserve("127.0.0.1", 0)
    try:
        port = reserved.getsockname()[1]
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5)
    finally:
        reserved.close()


def test_a_port_where_a_server_listens_is_refused() -> None:
    other = socket.socket()
    other.bind(("127.0.0.1", 0))
    other.listen()
    try:
        with pytest.raises(OSError, match=r"(?i)address already in use"):
            listener.reserve("127.0.0.1", other.getsockname()[1])
    finally:
        other.close()


def test_another_reuseport_server_on_the_port_is_refused_too() -> None:
    # Without the probe, SO_REUSEPORT would let a second openkms join the first one's port.
    first = listener.reserve("127.0.0.1", 0)
    port = first.getsockname()[1]
    worker = _through_spawn(first)
    worker.listen()
    try:
        with pytest.raises(listener.PortInUse, match="address already in use"):
            listener.reserve("127.0.0.1", port)
    finally:
        worker.close()
        first.close()


def test_not_offered_where_the_kernel_does_not_balance(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    assert not listener.balancing_supported()
