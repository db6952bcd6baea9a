"""uvicorn's httptools protocol, with each response written in one system call.

uvicorn writes a response's status line and headers when the application sends
``http.response.start`` and the body when it sends ``http.response.body``: two ``send(2)`` calls
per response, and two wake-ups of the client, for replies that are a few hundred bytes. Profiles
of Encrypt at 32 connections put a sixth of a worker's time in those writes. Here the
transport's writes are held until the response is complete (or the event loop has finished the
current step, for anything else uvicorn writes, such as ``100 Continue``) and then written
together. Only the protocol class is swapped, through uvicorn's documented ``http=`` setting.
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
            # A safety net: whatever is written is on the wire by the end of this loop step.
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
        # uvicorn calls this right after writing the last byte of a response.
        transport = self.transport
        if isinstance(transport, _CoalescingTransport):
            transport.flush()
        super().on_response_complete()
