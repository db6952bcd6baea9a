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
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Server
from tests.direct_api_support import both, exchange, normalized, signed, two_servers


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server]]:
    yield from two_servers(tmp_path_factory)


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
