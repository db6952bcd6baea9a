"""One listening socket per worker process, so that connections are spread over the workers.

uvicorn's supervisor binds one socket and every worker accepts from it. A worker that wakes
first accepts every connection waiting in the queue, so a client pool that opens its keep-alive
connections together lands on one worker: measured here, 32 wrk connections split 32/0 in half
the runs, and a 2-worker node then served 12k requests/s instead of 19k while a core idled.

With ``SO_REUSEPORT`` each worker listens on a socket of its own, bound to the same address, and
the kernel hashes each new connection to one of them. The supervisor's socket only reserves the
port (bound, never listening, so the kernel hands it no connection). When uvicorn starts a worker
it pickles the supervisor's sockets into the new process; ``ReservedPort`` pickles to "bind a
fresh socket to my address", so each worker, restarts included, gets its own listener.

Linux only: elsewhere ``SO_REUSEPORT`` does not balance, and the shared socket is kept. Only
sockets of the same user can join a ``SO_REUSEPORT`` group, and that user can already read the
data directory, so the option opens no door that was closed.
"""

from __future__ import annotations

import contextlib
import socket
import sys
from typing import Any


class PortInUse(OSError):
    """Another server already listens on the address."""


def balancing_supported() -> bool:
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


class ReservedPort(socket.socket):
    """The supervisor's socket: holds the address; in a worker it becomes that worker's own."""

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        return (_worker_listener, (int(self.family), self.getsockname()))


def _set_options(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)


def _worker_listener(family: int, address: Any) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        _set_options(sock)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock  # uvicorn calls listen() on it when the worker starts serving


def reserve(host: str, port: int) -> ReservedPort:
    """Binds ``host:port`` for the workers to share; refuses if a server already listens there.

    ``SO_REUSEPORT`` would let this process join another openkms (same user) on the same port
    and silently take half its connections; a connection attempt tells the two cases apart.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = ReservedPort(family, socket.SOCK_STREAM)
    try:
        _set_options(sock)
        sock.bind((host, port))
        bound_port = sock.getsockname()[1]
        if _someone_listens(family, host, bound_port):
            raise PortInUse(f"[Errno 98] address already in use: {host}:{bound_port}")
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _someone_listens(family: int, host: str, port: int) -> bool:
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - a probe of the wildcard bind
        host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
    probe = socket.socket(family, socket.SOCK_STREAM)
    probe.settimeout(0.5)
    try:
        probe.connect((host, port))
    except OSError:
        return False
    else:
        return True
    finally:
        with contextlib.suppress(OSError):
            probe.close()
