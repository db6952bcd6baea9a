"""Calls the openkms extensions (``OpenKMS.SearchKeys``, ``OpenKMS.CountKeysByState``), which
boto3 cannot name: a SigV4-signed JSON 1.1 request made with botocore's own signer."""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.conftest import Server, ServerProcess, create_account, server_from_account


def call(
    server: Server,
    target: str,
    params: dict[str, Any] | bytes,
    creds: dict[str, str] | None = None,
    *,
    service: str = "kms",
) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON answer) of one signed request."""
    body = params if isinstance(params, bytes) else json.dumps(params).encode()
    creds = creds or {"AccessKeyId": server.access_key_id,
                      "SecretAccessKey": server.secret_access_key}  # fmt: skip
    request = AWSRequest(
        method="POST",
        url=server.endpoint + "/",
        data=body,
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target},
    )
    SigV4Auth(
        Credentials(creds["AccessKeyId"], creds["SecretAccessKey"], creds.get("SessionToken")),
        service,
        server.region,
    ).add_auth(request)
    prepared = urllib.request.Request(
        server.endpoint + "/", data=body, headers=dict(request.headers.items()), method="POST"
    )
    try:
        with urllib.request.urlopen(prepared, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def search(server: Server, creds: dict[str, str] | None = None, **params: Any) -> dict[str, Any]:
    """Every page of a search (following NextMarker): {"Keys": [...], "Pages": n}."""
    keys: list[str] = []
    pages = 0
    while True:
        status, answer = call(server, "OpenKMS.SearchKeys", params, creds)
        assert status == 200, answer
        pages += 1
        keys += [k["KeyId"] for k in answer["Keys"]]
        if not answer["Truncated"]:
            return {"Keys": keys, "Pages": pages}
        params = {**params, "Marker": answer["NextMarker"]}


@contextlib.contextmanager
def own_server(data_dir: Path) -> Iterator[Server]:
    """A server of this module's own (its keys are the only keys)."""
    account = create_account(data_dir)
    proc = ServerProcess(data_dir)
    proc.start()
    try:
        yield server_from_account(proc.endpoint, data_dir, account)
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def search_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with own_server(tmp_path_factory.mktemp("search")) as server:
        yield server
