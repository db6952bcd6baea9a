"""The console's key list and overview on the key search extensions (OpenKMS.SearchKeys,
OpenKMS.CountKeysByState): searches and filters find keys anywhere in the list in one page
load, the overview counts every key by state, and a signed-in user with less access sees only
the keys he may describe."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest

from tests.console.support import Browserless, ConsoleServer, start_dev_server
from tests.security.support import SETTLE_SECONDS, client, new_user

pytestmark = pytest.mark.xdist_group("console-search")  # one server, one worker


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleServer]:
    cs = start_dev_server(tmp_path_factory.mktemp("console-search"))
    try:
        yield cs
    finally:
        cs.process.stop()


@pytest.fixture(scope="module")
def made(console: ConsoleServer) -> dict[str, str]:
    kms = client(console.server, "kms")
    keys = {
        "plain": kms.create_key(Description="plain key")["KeyMetadata"]["KeyId"],
        "tagged": kms.create_key(
            Description="t", Tags=[{"TagKey": "team", "TagValue": "needle-ops"}]
        )["KeyMetadata"]["KeyId"],
        "off": kms.create_key(Description="switched off")["KeyMetadata"]["KeyId"],
        "going": kms.create_key(Description="going away")["KeyMetadata"]["KeyId"],
        "rotating": kms.create_key(Description="rotates soon")["KeyMetadata"]["KeyId"],
    }
    kms.disable_key(KeyId=keys["off"])
    kms.schedule_key_deletion(KeyId=keys["going"], PendingWindowInDays=7)
    kms.enable_key_rotation(KeyId=keys["rotating"], RotationPeriodInDays=90)
    return keys


def _rows(body: str) -> list[str]:
    return re.findall(r'<td class="mono"><a href="/console/keys/([0-9a-z-]+)"', body)


def test_search_and_filters_use_the_index(console: ConsoleServer, made: dict[str, str]) -> None:
    browser = Browserless(console.server.endpoint)
    browser.sign_in(console.server.access_key_id, console.server.secret_access_key)
    page = browser.get("/console/keys?q=needle")
    assert page.status == 200 and _rows(page.body) == [made["tagged"]]
    assert "1 search request" in page.body
    assert _rows(browser.get("/console/keys?state=Disabled").body) == [made["off"]]
    assert _rows(browser.get("/console/keys?q=switched&state=Enabled").body) == []
    assert _rows(browser.get("/console/keys?q=%25").body) == []
    # Each row is still DescribeKey's answer: its description shows.
    assert "going away" in browser.get("/console/keys?state=PendingDeletion").body
    overview = browser.get("/console/overview").body
    states = dict(re.findall(r's-(\w+)">\1</span></td><td class="num">(\d+)<', overview))
    assert states == {"Disabled": "1", "Enabled": "3", "PendingDeletion": "1"}
    assert "All 5 keys of this Region that you may describe." in overview
    deletions = overview.split('id="deletions"', 1)[1].split("</table>", 1)[0]
    assert made["going"] in deletions


def test_a_user_sees_only_what_he_may_describe(console: ConsoleServer,
                                               made: dict[str, str]) -> None:  # fmt: skip
    iam = client(console.server, "iam")
    user = new_user(
        iam, None,
        {"Effect": "Allow", "Action": ["kms:ListKeys", "kms:ListAliases"], "Resource": "*"},
        {"Effect": "Allow", "Action": "kms:DescribeKey",
         "Resource": f"arn:aws:kms:*:*:key/{made['plain']}"},
    )  # fmt: skip
    browser = Browserless(console.server.endpoint)
    deadline = time.monotonic() + SETTLE_SECONDS
    while browser.sign_in(user.creds["AccessKeyId"], user.creds["SecretAccessKey"]).status != 303:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    deadline = time.monotonic() + SETTLE_SECONDS
    while _rows(browser.get("/console/keys?state=Enabled").body) != [made["plain"]]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert _rows(browser.get("/console/keys?q=needle").body) == []
    assert _rows(browser.get("/console/keys?state=Disabled").body) == []
    overview = browser.get("/console/overview").body
    assert "All 1 keys of this Region that you may describe." in overview
    assert made["going"] not in overview
