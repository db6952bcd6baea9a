"""The response-coalescing protocol, driven with a recording transport: one write per
response, whatever the application sends and whatever uvicorn adds."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from openkms.http.protocol import CoalescingHttpToolsProtocol


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 4566)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    body = b'{"ok":true}'
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _drive_app(app: Any, *chunks: bytes) -> tuple[RecordingTransport, Any]:
    """``app`` served by the protocol as `openkms serve` configures it (no middleware around
    the app, a date among the default headers), fed ``chunks`` one loop step apart."""

    async def run() -> tuple[RecordingTransport, Any]:
        config = Config(
            app=app,
            http=CoalescingHttpToolsProtocol,
            lifespan="off",
            access_log=False,
            proxy_headers=False,  # as `openkms serve` runs it: no middleware around the app
        )
        config.load()
        state = ServerState()
        state.default_headers = [(b"date", b"Mon, 07 Dec 2026 10:00:00 GMT")]
        protocol = CoalescingHttpToolsProtocol(config, state, {})
        transport = RecordingTransport()
        protocol.connection_made(transport)
        for chunk in chunks:
            protocol.data_received(chunk)
            for _ in range(5):
                await asyncio.sleep(0)
        return transport, protocol

    return asyncio.run(run())


def _drive(*chunks: bytes) -> RecordingTransport:
    return _drive_app(_app, *chunks)[0]


def test_one_write_per_response() -> None:
    transport = _drive(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert len(transport.writes) == 2
    for write in transport.writes:
        assert write.startswith(b"HTTP/1.1 200 OK\r\n")
        assert write.endswith(b'\r\n\r\n{"ok":true}')


def test_pipelined_requests_each_get_their_write() -> None:
    request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    transport = _drive(request * 3)
    assert len(transport.writes) == 3
    assert all(w.endswith(b'{"ok":true}') for w in transport.writes)


def test_head_writes_the_headers() -> None:
    transport = _drive(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert len(transport.writes) == 1
    assert transport.writes[0].endswith(b"content-length: 11\r\n\r\n")


def test_continue_and_close_are_flushed() -> None:
    transport = _drive(
        b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n"
        b"Connection: close\r\n\r\n",
        b"{}",
    )
    assert transport.writes[0] == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert transport.writes[1].startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"connection: close\r\n" in transport.writes[1]
    assert transport.closed


# -- when the write happens: at the end of the loop step, the same on asyncio's and uvloop's ---


def _loops() -> list[Any]:
    import uvloop

    return [asyncio.new_event_loop, uvloop.new_event_loop]


def _serve_on(loop_factory: Any, connections: int, requests_each: int) -> list[list[bytes]]:
    """``connections`` protocols on one loop, each sent its requests in one segment; every
    write is recorded with the number of responses the app had completed by then."""
    completed = 0
    seen: list[list[bytes]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        nonlocal completed
        if scope["type"] != "http":
            return
        await _app(scope, receive, send)
        completed += 1

    async def run() -> list[list[bytes]]:
        config = Config(app=app, http=CoalescingHttpToolsProtocol, lifespan="off", access_log=False)
        config.load()
        transports = []
        for _ in range(connections):
            protocol = CoalescingHttpToolsProtocol(config, ServerState(), {})
            transport = RecordingTransport()
            protocol.connection_made(transport)
            transports.append((protocol, transport))
        for protocol, _ in transports:
            protocol.data_received(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * requests_each)
        for _ in range(10 * requests_each):
            await asyncio.sleep(0)
        for _, transport in transports:
            seen.append(transport.writes)
        return seen

    loop: asyncio.AbstractEventLoop = loop_factory()
    try:
        return loop.run_until_complete(run())
    finally:
        loop.close()


@pytest.mark.parametrize("loop_factory", _loops(), ids=["asyncio", "uvloop"])
def test_one_write_per_response_on_both_loops(loop_factory: Any) -> None:
    for writes in _serve_on(loop_factory, connections=8, requests_each=1):
        assert len(writes) == 1
        assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
        assert writes[0].endswith(b'{"ok":true}')


@pytest.mark.parametrize("loop_factory", _loops(), ids=["asyncio", "uvloop"])
def test_pipelined_responses_one_write_each_on_both_loops(loop_factory: Any) -> None:
    for writes in _serve_on(loop_factory, connections=2, requests_each=3):
        assert len(writes) == 3
        assert all(w.count(b"HTTP/1.1 200 OK") == 1 for w in writes)


def _same_step_writes(connections: int) -> list[int]:
    """``connections`` connections of one server (one ServerState, as in a worker), each sent
    one request in the same step; the total number of writes after each of four steps."""

    async def run() -> list[int]:
        config = Config(
            app=_app, http=CoalescingHttpToolsProtocol, lifespan="off", access_log=False
        )
        config.load()
        state = ServerState()
        transports = []
        for _ in range(connections):
            protocol = CoalescingHttpToolsProtocol(config, state, {})
            transport = RecordingTransport()
            protocol.connection_made(transport)
            protocol.data_received(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            transports.append(transport)
        counts = []
        for _ in range(4):
            await asyncio.sleep(0)
            counts.append(sum(len(t.writes) for t in transports))
        assert all(len(t.writes) == 1 for t in transports)
        return counts

    return asyncio.run(run())


def test_responses_of_a_busy_worker_are_held_until_the_step_ends() -> None:
    """Other requests in progress: the responses one step completes go out together after it."""
    counts = _same_step_writes(3)
    assert counts[0] == 0  # step 1: the three apps ran and completed, nothing written yet
    assert counts[-1] == 3  # step 2: each connection's response in one write


def test_a_lone_response_is_written_at_once() -> None:
    """No other request in progress in the worker: nothing could join the write, so it is not
    delayed to the end of the step."""
    counts = _same_step_writes(1)
    assert counts[0] == 1
    assert counts[-1] == 1


# -- API requests answered from the protocol (OpenKMSApp.direct_eligible / answer_direct) --------
class _DirectApp:
    """An application with the two methods of OpenKMSApp the protocol answers directly with, and
    an ASGI side for everything else; it records which way each request went. ``enabled``
    stands for the ``direct_api`` setting, which OpenKMSApp.direct_eligible reads."""

    def __init__(self, enabled: bool = True, eligible: bool = True, fails: bool = False) -> None:
        self._direct = enabled
        self.eligible = eligible
        self.fails = fails
        self.direct: list[bytes] = []
        self.asgi: list[str] = []

    def direct_eligible(self, scope: dict[str, Any]) -> bool:
        assert scope["method"] == "POST" and scope["path"] == "/" and scope["raw_path"] == b"/"
        return self._direct and self.eligible

    def answer_direct(
        self,
        scope: dict[str, Any],
        body: bytes,
        default_headers: list[tuple[bytes, bytes]],
        status_lines: dict[int, bytes],
    ) -> bytes:
        if self.fails:
            raise RuntimeError("boom")
        self.direct.append(body)
        reply = b'{"n":%d}' % len(self.direct)
        head = status_lines[200] + b"".join(b"%s: %s\r\n" % h for h in default_headers)
        return head + b"content-length: %d\r\n\r\n" % len(reply) + reply

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.asgi.append(scope["method"])
            await _app(scope, receive, send)


def _post(body: bytes = b"{}", extra: bytes = b"") -> bytes:
    return b"POST / HTTP/1.1\r\nHost: x\r\n%sContent-Length: %d\r\n\r\n%s" % (
        extra,
        len(body),
        body,
    )


def test_an_api_request_is_answered_without_the_asgi_cycle() -> None:
    app = _DirectApp()
    request = _post(b'{"a":1}')
    transport, protocol = _drive_app(app, request[:-2], request[-2:])  # the body in two parts
    assert app.direct == [b'{"a":1}'] and app.asgi == []
    assert protocol.cycle is None and not protocol.tasks
    assert len(transport.writes) == 1
    assert transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\ndate: ")
    assert transport.writes[0].endswith(b'{"n":1}')
    assert not transport.closed
    assert protocol.server_state.total_requests == 1


def test_pipelined_api_requests_are_answered_in_order_in_one_write() -> None:
    app = _DirectApp()
    transport, _ = _drive_app(app, _post(b"1") + _post(b"22") + _post(b"333"))
    assert app.direct == [b"1", b"22", b"333"]
    assert len(transport.writes) == 1  # the step's answers together, in order
    assert transport.writes[0].count(b"HTTP/1.1 200 OK") == 3
    assert transport.writes[0].index(b'{"n":1}') < transport.writes[0].index(b'{"n":3}')


@pytest.mark.parametrize(
    ("request_bytes", "app"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", _DirectApp()),
        (_post(extra=b"Connection: close\r\n"), _DirectApp()),
        (_post(extra=b"Expect: 100-continue\r\n"), _DirectApp()),
        (b"POST / HTTP/1.0\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", _DirectApp()),
        (b"POST /other HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", _DirectApp()),
        (b"POST /?a=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", _DirectApp()),
        (_post(), _DirectApp(eligible=False)),
        (_post(), _DirectApp(enabled=False)),
    ],
    ids=["get", "close", "continue", "http-1.0", "path", "query", "declined", "turned-off"],
)
def test_what_goes_through_the_asgi_cycle(request_bytes: bytes, app: _DirectApp) -> None:
    transport, _ = _drive_app(app, request_bytes)
    assert app.direct == [] and len(app.asgi) == 1
    assert any(w.endswith(b'{"ok":true}') for w in transport.writes)


def test_a_request_behind_one_the_cycle_answers_waits_for_it() -> None:
    app = _DirectApp()
    # The first request goes through the cycle (Expect), the second must not overtake it.
    transport, _ = _drive_app(app, _post(extra=b"Expect: 100-continue\r\n") + _post(b"2"))
    # It waits in uvicorn's pipeline and is answered through the cycle too, after the first.
    assert app.asgi == ["POST", "POST"] and app.direct == []
    assert b"".join(transport.writes).count(b'{"ok":true}') == 2


def test_an_application_failure_is_a_500_and_the_connection_closes() -> None:
    transport, _ = _drive_app(_DirectApp(fails=True), _post())
    assert transport.writes[0].startswith(b"HTTP/1.1 500 Internal Server Error\r\ndate: ")
    assert transport.writes[0].endswith(b"connection: close\r\n\r\nInternal Server Error")
    assert transport.closed
