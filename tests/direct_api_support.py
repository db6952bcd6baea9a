"""Two servers to compare direct answers with the ASGI cycle's, and raw signed requests to send
them (tests/integration/test_direct_api.py, tests/security/test_direct_api_attacks.py).

``two_servers`` starts them on copies of one data directory, one with ``direct_api`` (on by
default) and one with ``direct_api = false``; sent the same raw requests over sockets, they
must answer alike but for the date, the request id and what is random.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.conftest import REGION, Server, ServerProcess, create_account, server_from_account
from tests.security import connect, write_config

MAX_BODY = 65536


def two_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server]]:
    """(direct, through ASGI): the same account and keys, one data directory copied."""
    direct_dir = tmp_path_factory.mktemp("openkms-direct")
    account = create_account(direct_dir)
    asgi_dir = tmp_path_factory.mktemp("openkms-asgi")
    shutil.rmtree(asgi_dir)
    shutil.copytree(direct_dir, asgi_dir)
    procs = []
    try:
        for data_dir, direct in ((direct_dir, "true"), (asgi_dir, "false")):
            config = write_config(
                data_dir / "direct.toml",
                [f"direct_api = {direct}", f"max_body_bytes = {MAX_BODY}"],
            )
            proc = ServerProcess(data_dir, extra_args=["--config", str(config)])
            proc.start()
            procs.append(proc)
        yield (
            server_from_account(procs[0].endpoint, direct_dir, account),
            server_from_account(procs[1].endpoint, asgi_dir, account),
        )
    finally:
        for proc in procs:
            proc.stop()


def signed(
    server: Server,
    operation: str,
    payload: dict[str, Any] | bytes,
    extra: dict[str, str] | None = None,
    signer: Server | None = None,
) -> bytes:
    """The raw HTTP/1.1 request botocore would send (signed by ``signer``'s credentials)."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    request = AWSRequest(
        method="POST",
        url=server.endpoint + "/",
        data=body,
        headers={
            "X-Amz-Target": f"TrentService.{operation}",
            "Content-Type": "application/x-amz-json-1.1",
            **(extra or {}),
        },
    )
    who = signer or server
    SigV4Auth(Credentials(who.access_key_id, who.secret_access_key), "kms", REGION).add_auth(
        request
    )
    host = server.endpoint.split("//", 1)[1]
    head = [f"POST / HTTP/1.1\r\nHost: {host}\r\n"]
    head += [f"{k}: {v}\r\n" for k, v in request.headers.items()]
    if "Transfer-Encoding" in (extra or {}):
        return "".join(head).encode() + b"\r\n"  # the caller sends the body in chunks
    head.append(f"Content-Length: {len(body)}\r\n")
    return "".join(head).encode() + b"\r\n" + body


def exchange(server: Server, raw: bytes, responses: int = 1) -> list[tuple[bytes, bytes]]:
    """Sends ``raw`` on one connection; the (head, body) of ``responses`` responses."""
    sock = connect(server.endpoint)
    try:
        sock.sendall(raw)
        return read_responses(sock, responses)
    finally:
        sock.close()


def read_responses(sock: socket.socket, count: int) -> list[tuple[bytes, bytes]]:
    data = b""
    out: list[tuple[bytes, bytes]] = []
    while len(out) < count:
        end = data.find(b"\r\n\r\n")
        if end >= 0 and data.startswith(b"HTTP/1.1 100 "):
            data = data[end + 4 :]  # "100 Continue": an interim answer
            continue
        if end >= 0:
            head = data[:end]
            length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))  # type: ignore[union-attr]
            if len(data) >= end + 4 + length:
                out.append((head, data[end + 4 : end + 4 + length]))
                data = data[end + 4 + length :]
                continue
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed after {len(out)} responses: {data[:300]!r}")
        data += chunk
    return out


def normalized(head: bytes) -> list[bytes]:
    """The head's lines with the date and the request id's value left out."""
    lines = head.split(b"\r\n")
    return [
        re.sub(rb"^(date|x-amzn-requestid): .*$", rb"\1: -", line, flags=re.I) for line in lines
    ]


def both(servers: tuple[Server, Server], make: Any, responses: int = 1) -> list[Any]:
    return [exchange(server, make(server), responses) for server in servers]
