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

The same class bounds what a slow or greedy client can hold (uvicorn has no such limits for
httptools; ``h11_max_incomplete_event_size`` only applies to h11):

* **Header time**: a request's line and headers must arrive within ``header_timeout_seconds``
  of its first byte, and the first request within that time of the connection (a connection
  that sends nothing is closed). **Body time**: the body within ``body_timeout_seconds`` of the
  end of the headers. A client that trickles a byte every few seconds is answered ``408`` and
  disconnected; the application sees ``http.disconnect``.
* **Header size**: more than ``max_header_bytes`` of request line and headers is answered
  ``431`` and disconnected, counted as the bytes arrive (httptools would otherwise buffer a
  header of any size until its end).
* **Connections**: beyond ``max_connections`` open connections in the worker, a new one is
  answered ``503`` and closed at once (uvicorn's ``limit_concurrency``, set to the same number,
  answers requests ``503`` once the limit is reached).

The limits are the server's settings (``OPENKMS_SETTINGS_JSON``), read once per process.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from openkms.config import settings_from_env


@dataclass(frozen=True, slots=True)
class Limits:
    max_header_bytes: int
    header_timeout: float
    body_timeout: float
    max_connections: int


@lru_cache(maxsize=1)
def limits() -> Limits:
    settings = settings_from_env()
    return Limits(
        max_header_bytes=settings.max_header_bytes,
        header_timeout=settings.header_timeout_seconds,
        body_timeout=settings.body_timeout_seconds,
        max_connections=settings.max_connections,
    )


class _HeadersTooLarge(Exception):
    """Raised from a parser callback: the request's head is over ``max_header_bytes``."""


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
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limits = limits()
        self._deadline: asyncio.TimerHandle | None = None
        self._in_head = True  # reading a request line and headers (or waiting for them)
        self._head_bytes = 0  # bytes received while in the head, an upper bound
        self._head_exact = 0  # bytes of the head the parser handed over
        self._too_large = False
        self._refused = False
        # Direct answers (see _take_directly): the application's two methods, or None for an
        # application that has none (the benchmarks' trivial app). direct_eligible itself
        # declines everything when the direct_api setting is off.
        self._direct_eligible: Any = getattr(self.app, "direct_eligible", None)
        self._answer_direct: Any = getattr(self.app, "answer_direct", None)
        self._direct = False  # the request being read is to be answered directly
        self._direct_body: list[bytes] = []

    # -- connection -----------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        wrapped = _CoalescingTransport(transport, self.loop)
        super().connection_made(wrapped)  # type: ignore[arg-type]
        if len(self.connections) > self._limits.max_connections:
            self._refuse(503, "Too many connections.")
            return
        self._arm(self._limits.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if (
            self._in_head
            and self._head_bytes > self._limits.max_header_bytes
            and not self._refused
            and not self.transport.is_closing()
        ):
            self._refuse(431, "Request header fields too large.")

    def send_400_response(self, msg: str) -> None:
        # uvicorn's answer to a parser error, which is how a callback's refusal surfaces.
        if self._too_large:
            self._refuse(431, "Request header fields too large.")
        else:
            self._disarm()
            super().send_400_response(msg)

    # -- parser callbacks -------------------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_exact = 0
        if self._deadline is None:
            self._arm(self._limits.header_timeout)

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        self._arm(self._limits.body_timeout)
        if self._direct_eligible is not None and self._take_directly():
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if self._direct:
            self._direct_body.append(body)  # at most its declared length, within the limit
            return
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._disarm()
        if self._direct:
            self._answer()
            return
        super().on_message_complete()

    # -- API requests answered without the ASGI cycle --------------------------------------------
    # uvicorn gives every request an asyncio task running a RequestResponseCycle, which talks to
    # the application through ASGI messages: a scope, a receive and two sends, each an awaited
    # coroutine. For openkms's API requests that layer is a fifth of the instructions of a
    # request (79 k of 372 k for an Encrypt) and 18 % of its CPU (docs/benchmarks.md, "Ninth
    # session"). A request that needs none of what the cycle is for is answered here instead, in
    # the parser's own callbacks: OpenKMSApp.answer_direct gives the whole response, the bytes
    # the cycle would have written, and uvicorn's own bookkeeping then runs as after any
    # response. What needs the cycle keeps it: any method but POST, any path but "/", HTTP/1.0,
    # "Connection: close", "Expect: 100-continue", an upgrade, a request behind one the cycle is
    # still answering on this connection, the concurrency limit reached, and whatever
    # OpenKMSApp.direct_eligible declines (a chunked or oversized body, an operation that runs
    # off the event loop, a local-only server).
    def _take_directly(self) -> bool:
        parser = self.parser
        cycle = self.cycle
        if (
            self.url != b"/"
            or parser.get_method() != b"POST"
            or parser.get_http_version() != "1.1"
            or not parser.should_keep_alive()
            or parser.should_upgrade()
            or self.expect_100_continue
            or not (cycle is None or cycle.response_complete)
            or self.pipeline
            or (
                self.limit_concurrency is not None
                and (
                    len(self.connections) >= self.limit_concurrency
                    or len(self.tasks) >= self.limit_concurrency
                )
            )
        ):
            return False
        scope: dict[str, Any] = self.scope  # type: ignore[assignment]
        scope["method"] = "POST"
        scope["path"] = self.root_path + "/"
        scope["raw_path"] = self.root_path.encode("ascii") + b"/"
        scope["query_string"] = b""
        if not self._direct_eligible(scope):
            return False
        self._direct = True
        self._direct_body = []
        return True

    def _answer(self) -> None:
        self._direct = False
        chunks = self._direct_body
        self._direct_body = []
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        try:
            response = self._answer_direct(
                self.scope, body, self.server_state.default_headers, STATUS_LINE
            )
        except Exception:  # what uvicorn's cycle does when an application raises
            self.logger.exception("Exception in ASGI application\n")
            defaults = b"".join(b"%s: %s\r\n" % pair for pair in self.server_state.default_headers)
            self.transport.write(STATUS_LINE[500] + defaults + _INTERNAL_ERROR)
            self.transport.close()
            return
        self.transport.write(response)
        # uvicorn's bookkeeping after a response (the request count, the keep-alive timer,
        # reading resumed), without this class's immediate flush: no request is ever in
        # progress here, and the write goes out at the end of the loop step (_CoalescingTransport)
        # with whatever else the step answers.
        HttpToolsProtocol.on_response_complete(self)

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

    # -- limits ---------------------------------------------------------------------------------
    def _count_head(self, size: int) -> None:
        self._head_exact += size
        if self._head_exact > self._limits.max_header_bytes:
            self._too_large = True
            raise _HeadersTooLarge

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self._refused or self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is not None and cycle.response_started and not cycle.response_complete:
            self.transport.close()  # a response is being written: nothing more to say
            return
        self._refuse(408, "Request timeout.")

    def _refuse(self, status: int, message: str) -> None:
        """Answer ``status`` (unless a response is under way), close, and tell the
        application, if it is waiting for the body, that the client is gone."""
        self._refused = True
        self._disarm()
        cycle = self.cycle
        in_flight = cycle is not None and not cycle.response_complete
        if not (in_flight and cycle is not None and cycle.response_started):
            body = message.encode("ascii")
            self.transport.write(
                b"".join(
                    (
                        STATUS_LINE[status],
                        b"content-type: text/plain; charset=utf-8\r\n",
                        b"content-length: %d\r\n" % len(body),
                        b"connection: close\r\n\r\n",
                        body,
                    )
                )
            )
        if in_flight and cycle is not None:
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.close()


# uvicorn's answer when an application fails before its response started (send_500_response),
# after its status line and default headers.
_INTERNAL_ERROR = (
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: 21\r\n"
    b"connection: close\r\n\r\n"
    b"Internal Server Error"
)

__all__ = ["CoalescingHttpToolsProtocol", "Limits", "limits"]
