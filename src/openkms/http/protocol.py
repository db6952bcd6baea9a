"""uvicorn's httptools protocol, with each response written in one system call.

uvicorn writes a response's status line and headers when the application sends
``http.response.start`` and the body when it sends ``http.response.body``: two ``send(2)`` calls
per response, and two wake-ups of the client, for replies that are a few hundred bytes. Profiles
of Encrypt at 32 connections put a sixth of a worker's time in those writes. Here the
transport's writes are held until the event loop has finished the current step, and then
written together: one ``send(2)`` per response (``100 Continue`` and a response that follows it
in the same step go out together too). Only the protocol class is swapped, through uvicorn's
documented ``http=`` setting.

Why the end of the step and not the end of the response: a loopback client (or a proxy) that
waits on another CPU is woken by every write, and on a virtual machine waking an idle vCPU costs
tens of µs of CPU on each side. At 32 connections a step usually completes several responses;
written back to back, at the end of the step, they wake the client once, and the server does
not stop between two responses to run the receiving side of a woken peer. Measured on a shared
2-vCPU VM (docs/benchmarks.md): Encrypt, 2 workers, 32 connections, 6-7 % less server CPU per
request; at one connection no difference. uvloop 0.23 writes a small buffer at once and 0.22
queued it, so relying on the loop made the number of writes depend on its version; holding the
bytes here makes them the same on both (``tests/unit/test_http_protocol.py`` counts them).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class _CoalescingTransport:
    """Delegates to the real transport; ``write`` collects until ``flush``."""

    __slots__ = ("_armed", "_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []
        self._armed = False

    def write(self, data: bytes) -> None:
        self._held.append(data)
        if not self._armed:
            # Whatever is written is on the wire by the end of this loop step.
            self._armed = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        self._armed = False
        held = self._held
        if held:
            self._held = []
            self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = []
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(len(b) for b in self._held)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        wrapped = _CoalescingTransport(transport, self.loop)
        super().connection_made(wrapped)  # type: ignore[arg-type]

    # A complete response stays held until the end of the loop step (the flush ``write``
    # scheduled): see the module's docstring. A closing connection is flushed by ``close``.
