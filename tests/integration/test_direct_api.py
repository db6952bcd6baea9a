"""API requests answered from the HTTP protocol's callbacks (``direct_api``, on by default) get
the same bytes as through uvicorn's ASGI cycle (``direct_api = false``): two servers on copies
of one data directory, sent the same raw requests over sockets, answer alike but for the date,
the request id and what is random (an Encrypt's ciphertext). What the direct path leaves to the
cycle (Connection: close, Expect: 100-continue, a chunked or oversized body, pipelining behind
it, operations off the event loop) still works on the direct server.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.conftest import REGION, Server, ServerProcess, create_account, server_from_account
from tests.security import connect, write_config

MAX_BODY = 65536


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server]]:
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


@pytest.mark.parametrize(
    "case",
    [
        ("DescribeKey", {"KeyId": "alias/does-not-exist"}),
        ("DescribeKey", {"KeyId": "1234abcd-12ab-34cd-56ef-1234567890ab"}),
        ("Encrypt", {"KeyId": "alias/x"}),  # a missing member: ValidationException
        ("Decrypt", {"CiphertextBlob": "not base64!"}),
        ("Encrypt", b"{not json"),
        ("ListAliases", {"Limit": 1}),
        ("NoSuchOperation", {}),
    ],
)
def test_the_same_answer_both_ways(
    servers: tuple[Server, Server], case: tuple[str, dict[str, Any] | bytes]
) -> None:
    operation, payload = case
    answers = both(servers, lambda s: signed(s, operation, payload))
    ((direct_head, direct_body),) = answers[0]
    ((asgi_head, asgi_body),) = answers[1]
    assert normalized(direct_head) == normalized(asgi_head)
    assert direct_body == asgi_body


def test_a_bad_signature_the_same_both_ways(servers: tuple[Server, Server]) -> None:
    def wrong(server: Server) -> bytes:
        raw = signed(server, "ListKeys", {})
        return re.sub(rb"Signature=[0-9a-f]{8}", b"Signature=00000000", raw)

    answers = both(servers, wrong)
    assert normalized(answers[0][0][0]) == normalized(answers[1][0][0])
    assert answers[0][0][1] == answers[1][0][1]
    assert b"InvalidSignatureException" in answers[0][0][0]


def test_encrypt_and_decrypt_directly(servers: tuple[Server, Server]) -> None:
    direct, _ = servers
    key = json.loads(
        exchange(direct, signed(direct, "CreateKey", {}))[0][1]  # off the loop: the cycle
    )["KeyMetadata"]["KeyId"]
    ((head, body),) = exchange(
        direct, signed(direct, "Encrypt", {"KeyId": key, "Plaintext": "aGk="})
    )
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    names = [line.split(b":")[0].lower() for line in head.split(b"\r\n")[1:]]
    assert names == [b"date", b"content-type", b"content-length", b"x-amzn-requestid"]
    blob = json.loads(body)["CiphertextBlob"]
    ((_, plain),) = exchange(direct, signed(direct, "Decrypt", {"CiphertextBlob": blob}))
    assert json.loads(plain)["Plaintext"] == "aGk="


def test_pipelined_requests_are_answered_in_order(servers: tuple[Server, Server]) -> None:
    direct, _ = servers
    raw = (
        signed(direct, "DescribeKey", {"KeyId": "alias/first"})
        + signed(direct, "CreateKey", {"Description": "between"})  # through the cycle
        + signed(direct, "DescribeKey", {"KeyId": "alias/third"})
        + signed(direct, "ListAliases", {"Limit": 1})
    )
    answers = exchange(direct, raw, responses=4)
    assert b"alias/first" in answers[0][1]
    assert b"between" in answers[1][1]
    assert b"alias/third" in answers[2][1]
    assert b"Aliases" in answers[3][1]


@pytest.mark.parametrize(
    "extra",
    [{"Connection": "close"}, {"Expect": "100-continue"}],
    ids=["connection-close", "expect-continue"],
)
def test_what_the_cycle_keeps(servers: tuple[Server, Server], extra: dict[str, str]) -> None:
    answers = both(servers, lambda s: signed(s, "DescribeKey", {"KeyId": "alias/x"}, extra))
    assert normalized(answers[0][0][0]) == normalized(answers[1][0][0])
    assert answers[0][0][1] == answers[1][0][1]


def test_a_chunked_body_goes_through_the_cycle(servers: tuple[Server, Server]) -> None:
    def chunked(server: Server) -> bytes:
        body = json.dumps({"KeyId": "alias/chunked"}).encode()
        head = signed(server, "DescribeKey", body, {"Transfer-Encoding": "chunked"})
        return head + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)

    answers = both(servers, chunked)
    assert normalized(answers[0][0][0]) == normalized(answers[1][0][0])
    assert b"alias/chunked" in answers[0][0][1]


def test_an_oversized_body_is_refused_alike(servers: tuple[Server, Server]) -> None:
    def big(server: Server) -> bytes:
        body = json.dumps({"KeyId": "k", "Plaintext": "A" * MAX_BODY}).encode()
        return signed(server, "Encrypt", body)

    answers = [exchange(server, big(server)) for server in servers]
    assert answers[0][0][0].startswith(b"HTTP/1.1 413 ")
    assert normalized(answers[0][0][0]) == normalized(answers[1][0][0])
    assert answers[0][0][1] == answers[1][0][1]


def test_another_account_is_refused_alike(servers: tuple[Server, Server], tmp_path: Path) -> None:
    # A stranger's credentials (an access key no server knows).
    def stranger(server: Server) -> bytes:
        other = server_from_account(
            server.endpoint,
            tmp_path,
            {"AccessKeyId": "AKIAIOSFODNN7EXAMPLE", "SecretAccessKey": "x" * 40, "AccountId": "1"},
        )
        return signed(server, "ListKeys", {}, signer=other)

    answers = both(servers, stranger)
    assert normalized(answers[0][0][0]) == normalized(answers[1][0][0])
    assert answers[0][0][1] == answers[1][0][1]
    assert b"UnrecognizedClientException" in answers[0][0][0]


def test_bytes_beyond_the_declared_length_are_the_next_request_alike(
    servers: tuple[Server, Server],
) -> None:
    # A smuggling attempt: a signed request whose body is followed by a second, unsigned
    # request in the same segment. The second is parsed as a request of its own and refused on
    # its own merits (no signature), on both paths alike.
    def smuggle(server: Server) -> bytes:
        hidden = (
            b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: TrentService.ListKeys\r\n"
            b"Content-Type: application/x-amz-json-1.1\r\nContent-Length: 2\r\n\r\n{}"
        )
        return signed(server, "ListAliases", {"Limit": 1}) + hidden

    answers = both(servers, smuggle, responses=2)
    for direct, asgi in zip(answers[0], answers[1], strict=True):
        assert normalized(direct[0]) == normalized(asgi[0])
        assert direct[1] == asgi[1]
    assert answers[0][0][0].startswith(b"HTTP/1.1 200 ")
    assert b"MissingAuthenticationTokenException" in answers[0][1][0]
