"""uvicorn's httptools protocol, with each response written in one system call.

uvicorn writes a response's status line and headers when the application sends
``http.response.start`` and the body when it sends ``http.response.body``: two ``send(2)`` calls
per response, and two wake-ups of the client, for replies that are a few hundred bytes. Profiles
of Encrypt at 32 connections put a sixth of a worker's time in those writes. Here the
transport's writes are held and written together: one ``send(2)`` per response
(``100 Continue`` and a response that follows it in the same step go out together too). Only
the protocol class is swapped, through uvicorn's documented ``http=`` setting.

When a complete response is written is chosen by whether other requests are in progress in the
worker. If this response's request is the only one, it is written at once: nothing could join
it. If others are in progress (a busy worker, many connections), it is held until the event
loop has run everything that was ready in the current step, and goes out with the responses
that step completed. A loopback client (or a proxy) waiting on another CPU is woken by every
write, and on a virtual machine waking an idle vCPU costs tens of µs of CPU on each side; the
responses of one step written back to back wake it once, and the worker does not stop between
two responses to run the receiving side of a woken peer. Measured on a shared 2-vCPU VM
(docs/benchmarks.md, Encrypt, 2 workers, interleaved rounds): at 32 connections 121 µs of
server CPU per request against 139 writing every response at once (-13 %) and 128 always
waiting for the end of the step; at one connection always waiting cost up to 17 % more CPU,
and this choice behaves as writing at once. uvloop 0.23 writes a small buffer at once and 0.22
queued it, so leaving it to the loop made the number and timing of writes depend on its
version; holding the bytes here makes them the same on both (``tests/unit/test_http_protocol.py``
counts them on asyncio's loop and on uvloop's).
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

    def on_response_complete(self) -> None:
        # uvicorn calls this right after the last byte of a response. With no other request in
        # progress in this worker nothing can join the write: send it now. Otherwise it waits
        # for the end of the loop step (the flush ``write`` scheduled), with the responses the
        # step completes beside it. ``self.tasks`` is the server's set of request tasks; this
        # response's own task is still in it.
        transport = self.transport
        if len(self.tasks) <= 1 and isinstance(transport, _CoalescingTransport):
            transport.flush()
        super().on_response_complete()

