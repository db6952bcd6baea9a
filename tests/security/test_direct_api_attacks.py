"""Attacks on the direct answers to API requests (``direct_api``, openkms.http.protocol): what a
stranger, or a client trying to slip a request past the parser, gets from the direct path is
what the ASGI path gives, byte for byte (two servers from tests/direct_api_support.py, one
with the setting and one without).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Server, server_from_account
from tests.direct_api_support import MAX_BODY, both, exchange, normalized, signed, two_servers


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server]]:
    yield from two_servers(tmp_path_factory)


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
