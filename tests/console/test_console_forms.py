"""The console's forms without a browser: the create-key flow for every key spec and usage, a
multi-Region key and its replica, a key for imported material, and an IAM user's access key
(shown once). Each answer is the page AWS's answer leads to, never a 500."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from openkms.console.keys import SPEC_USAGES
from tests.console.support import Browserless, ConsoleServer, start_dev_server
from tests.security.support import client

pytestmark = pytest.mark.xdist_group("console-forms")  # one server, one worker


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleServer]:
    cs = start_dev_server(tmp_path_factory.mktemp("console-forms"))
    try:
        yield cs
    finally:
        cs.process.stop()


@pytest.fixture(scope="module")
def browser(console: ConsoleServer) -> Browserless:
    b = Browserless(console.server.endpoint)
    assert b.sign_in(console.server.access_key_id, console.server.secret_access_key).status == 303
    return b


def _key_id(location: str) -> str:
    match = re.fullmatch(r"/console/keys/([0-9a-z-]+)\?done=created", location)
    assert match, location
    return match.group(1)


@pytest.mark.parametrize(("spec", "usage"), SPEC_USAGES)
def test_create_every_spec_and_usage(
    console: ConsoleServer, browser: Browserless, spec: str, usage: str
) -> None:
    token = browser.csrf("/console/keys/new")
    answer = browser.post("/console/keys/new", {"csrf": token, "spec_usage": f"{spec}:{usage}",
                                                "description": f"{spec} {usage}"})
    if answer.status == 400:
        # What this server refuses, it refuses in AWS's words (SM2 outside China's Regions,
        # ML-DSA where OpenSSL lacks it).
        assert re.search(r'id="error">\w+Exception: ', answer.body), answer.body[:2000]
        return
    assert answer.status == 303, answer.body[:500]
    key_id = _key_id(answer.headers["location"])
    meta = client(console.server, "kms").describe_key(KeyId=key_id)["KeyMetadata"]
    assert (meta["KeySpec"], meta["KeyUsage"]) == (spec, usage)
    page = browser.get(f"/console/keys/{key_id}")
    assert page.status == 200 and spec in page.body


def test_multi_region_key_and_replica(console: ConsoleServer, browser: Browserless) -> None:
    token = browser.csrf("/console/keys/new")
    answer = browser.post("/console/keys/new", {"csrf": token, "multi_region": "on",
                                                "spec_usage": "SYMMETRIC_DEFAULT:ENCRYPT_DECRYPT"})
    key_id = _key_id(answer.headers["location"])
    assert key_id.startswith("mrk-")
    page = browser.get(f"/console/keys/{key_id}")
    assert "PRIMARY" in page.body and 'id="do-replicate"' in page.body
    answer = browser.post(f"/console/keys/{key_id}/replicate", {"csrf": token,
                                                                "region": "eu-west-1"})
    assert answer.status == 303
    assert "eu-west-1" in browser.get(f"/console/keys/{key_id}").body
    listed = browser.get("/console/keys?multi=yes")
    assert key_id in listed.body


def test_key_for_imported_material(console: ConsoleServer, browser: Browserless) -> None:
    token = browser.csrf("/console/keys/new")
    answer = browser.post("/console/keys/new", {"csrf": token, "origin": "EXTERNAL",
                                                "spec_usage": "SYMMETRIC_DEFAULT:ENCRYPT_DECRYPT"})
    key_id = _key_id(answer.headers["location"])
    page = browser.get(f"/console/keys/{key_id}")
    assert "PendingImport" in page.body and "none imported" in page.body
    assert key_id in browser.get("/console/keys?origin=EXTERNAL&state=PendingImport").body


def test_an_access_key_secret_is_shown_once(console: ConsoleServer, browser: Browserless) -> None:
    token = browser.csrf("/console/iam")
    assert browser.post("/console/iam/create-user", {"csrf": token, "name": "shown-once"}) \
        .status == 303
    answer = browser.post("/console/iam/create-key", {"csrf": token, "name": "shown-once"})
    assert answer.status == 200
    secret = re.search(r'Secret access key: <span class="secret" data-reveal>([^<]+)<', answer.body)
    assert secret and len(secret.group(1)) == 40
    assert secret.group(1) not in browser.get("/console/iam").body
