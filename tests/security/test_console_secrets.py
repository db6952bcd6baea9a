"""Attacks on the console's secrets pages, against a real development-mode server: revealing a
value without the CSRF token, by GET, from another site, or as a principal the API refuses;
script in a secret's name, description and tags; and the value's presence anywhere it should
not be (the page before the reveal, the browser's cache, the server's logs and audit files)."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.console.support import Browserless, ConsoleServer, start_dev_server
from tests.security.support import client, new_user
from tests.security.test_console_attacks import inline_code

pytestmark = pytest.mark.xdist_group("console-secrets")  # one server, one worker

VALUE = f"s3cr3t-{uuid.uuid4().hex}"
XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleServer]:
    cs = start_dev_server(tmp_path_factory.mktemp("console-secrets"))
    try:
        yield cs
    finally:
        cs.process.stop()


@pytest.fixture(scope="module")
def arn(console: ConsoleServer) -> str:
    sm = client(console.server, "secretsmanager")
    made = sm.create_secret(Name=f"db/{uuid.uuid4().hex[:6]}", SecretString=VALUE,
                            Description="the database password")
    return str(made["ARN"])


def signed_in(console: ConsoleServer) -> Browserless:
    browser = Browserless(console.server.endpoint)
    answer = browser.sign_in(console.server.access_key_id, console.server.secret_access_key)
    assert answer.status == 303
    return browser


def _secret_page(arn: str) -> str:
    return "/console/secrets/secret?id=" + arn


def test_the_value_is_not_on_the_page_until_revealed(console: ConsoleServer, arn: str) -> None:
    browser = signed_in(console)
    page = browser.get(_secret_page(arn))
    assert page.status == 200 and 'id="reveal"' in page.body
    assert VALUE not in page.body
    assert VALUE not in browser.get("/console/secrets").body
    token = browser.csrf(_secret_page(arn))
    shown = browser.post("/console/secrets/reveal", {"csrf": token, "secret_id": arn})
    assert shown.status == 200
    assert f'id="secret-value">{VALUE}</pre>' in shown.body
    assert shown.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in shown.headers["content-security-policy"]
    assert inline_code(shown.body) == [] and inline_code(page.body) == []
    # Reloading the page (a GET) hides it again.
    assert VALUE not in browser.get(_secret_page(arn)).body


def test_reveal_without_csrf_token_or_from_another_site_is_refused(
    console: ConsoleServer, arn: str
) -> None:
    browser = signed_in(console)
    token = browser.csrf(_secret_page(arn))
    attempts = [
        browser.post("/console/secrets/reveal", {"secret_id": arn}),
        browser.post("/console/secrets/reveal", {"csrf": "guess", "secret_id": arn}),
        browser.post("/console/secrets/reveal", {"csrf": token, "secret_id": arn},
                     headers={"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}),
    ]
    for answer in attempts:
        assert answer.status == 403 and VALUE not in answer.body
    # A link or a prefetch is a GET: never a reveal.
    for path in ("/console/secrets/reveal?secret_id=" + arn,
                 "/console/secrets/reveal?csrf=" + token + "&secret_id=" + arn):
        answer = browser.get(path)
        assert answer.status in (404, 405) and VALUE not in answer.body
    # Signed out, nothing at all.
    stranger = Browserless(console.server.endpoint)
    answer = stranger.post("/console/secrets/reveal", {"csrf": token, "secret_id": arn})
    assert answer.status == 403 and VALUE not in answer.body


def test_a_principal_without_get_secret_value_sees_access_denied(
    console: ConsoleServer, arn: str
) -> None:
    iam = client(console.server, "iam")
    reader = new_user(iam, None, {
        "Effect": "Allow",
        "Action": ["secretsmanager:DescribeSecret", "secretsmanager:ListSecrets",
                   "secretsmanager:ListSecretVersionIds", "secretsmanager:GetResourcePolicy"],
        "Resource": "*",
    })
    browser = Browserless(console.server.endpoint)
    deadline = time.monotonic() + 5
    while True:  # a new user's policy takes effect within the cache TTL
        browser.sign_in(reader.creds["AccessKeyId"], reader.creds["SecretAccessKey"])
        page = browser.get(_secret_page(arn))
        if page.status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert page.status == 200 and 'id="reveal"' in page.body
    token = browser.csrf(_secret_page(arn))
    answer = browser.post("/console/secrets/reveal", {"csrf": token, "secret_id": arn})
    assert answer.status == 400
    assert re.search(r'id="error">AccessDeniedException: ', answer.body), answer.body[:2000]
    assert VALUE not in answer.body
    # Nor can it store a new value or delete the secret.
    for action in ("put-value", "delete"):
        answer = browser.post(f"/console/secrets/{action}",
                              {"csrf": token, "secret_id": arn, "value": "x", "days": "7"})
        assert answer.status == 400 and "AccessDeniedException" in answer.body
    sm = client(console.server, "secretsmanager")
    assert sm.get_secret_value(SecretId=arn)["SecretString"] == VALUE


def test_script_in_name_description_and_tags_stays_text(console: ConsoleServer) -> None:
    sm = client(console.server, "secretsmanager")
    name = f"x{uuid.uuid4().hex[:6]}-<script>"
    made = sm.create_secret(Name=f"ok-{uuid.uuid4().hex[:6]}", SecretString=XSS,
                            Description=XSS, Tags=[{"Key": "t", "Value": XSS}])
    refused_name = False
    try:
        sm.create_secret(Name=name, SecretString="v")
    except sm.exceptions.ClientError:
        refused_name = True  # AWS refuses < and > in a name: nothing to render
    browser = signed_in(console)
    pages = [browser.get(_secret_page(made["ARN"])).body,
             browser.get("/console/secrets?q=ok-&field=name").body]
    token = browser.csrf(_secret_page(made["ARN"]))
    pages.append(browser.post("/console/secrets/reveal",
                              {"csrf": token, "secret_id": made["ARN"]}).body)
    for body in pages:
        assert '<script>alert("x")' not in body and "onerror=alert" not in body.replace(
            "onerror=alert(1)&gt;", "")
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in body
    assert refused_name or "&lt;script&gt;" in browser.get("/console/secrets").body


def test_create_put_delete_and_restore_through_the_console(console: ConsoleServer) -> None:
    browser = signed_in(console)
    token = browser.csrf("/console/secrets/new")
    name = f"app/{uuid.uuid4().hex[:6]}"
    made = browser.post("/console/secrets/new", {"csrf": token, "name": name, "value": "first",
                                                 "description": "d", "tags": "team=pay"})
    assert made.status == 303, made.body[:500]
    location = made.headers["location"]
    assert "done=created" in location
    sm = client(console.server, "secretsmanager")
    described = sm.describe_secret(SecretId=name)
    assert described["Tags"] == [{"Key": "team", "Value": "pay"}]
    arn = described["ARN"]
    assert browser.post("/console/secrets/put-value",
                        {"csrf": token, "secret_id": arn, "value": "second"}).status == 303
    assert sm.get_secret_value(SecretId=arn)["SecretString"] == "second"
    page = browser.get(_secret_page(arn)).body
    assert "AWSPREVIOUS" in page and "AWSCURRENT" in page and "second" not in page
    previous = sm.get_secret_value(SecretId=arn, VersionStage="AWSPREVIOUS")["VersionId"]
    assert f'id="reveal-{previous}"' in page and "first" not in page
    shown = browser.post("/console/secrets/reveal",
                         {"csrf": token, "secret_id": arn, "version_id": previous})
    assert 'id="secret-value">first</pre>' in shown.body
    assert browser.post("/console/secrets/delete",
                        {"csrf": token, "secret_id": arn, "days": "7"}).status == 303
    assert "DeletedDate" in sm.describe_secret(SecretId=arn)
    assert name not in browser.get("/console/secrets").body
    assert name in browser.get("/console/secrets?deleted=1").body
    assert 'id="do-restore"' in browser.get(_secret_page(arn)).body
    assert browser.post("/console/secrets/restore",
                        {"csrf": token, "secret_id": arn}).status == 303
    assert "DeletedDate" not in sm.describe_secret(SecretId=arn)
    # A wrong recovery window is refused in AWS's words, never a 500.
    bad = browser.post("/console/secrets/delete", {"csrf": token, "secret_id": arn, "days": "3"})
    assert bad.status == 400 and "InvalidParameterException" in bad.body
    # The resource policy: saved with PutResourcePolicy, a malformed one refused in AWS's words.
    account = arn.split(":")[4]
    doc = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
        "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]})
    assert browser.post("/console/secrets/policy",
                        {"csrf": token, "secret_id": arn, "policy": doc}).status == 303
    assert json.loads(sm.get_resource_policy(SecretId=arn)["ResourcePolicy"]) == json.loads(doc)
    assert "GetSecretValue" in browser.get(_secret_page(arn)).body
    bad_policy = browser.post("/console/secrets/policy",
                              {"csrf": token, "secret_id": arn, "policy": "{not json"})
    assert bad_policy.status == 400 and "{not json" in bad_policy.body
    assert browser.post("/console/secrets/delete-policy",
                        {"csrf": token, "secret_id": arn}).status == 303
    assert "ResourcePolicy" not in sm.get_resource_policy(SecretId=arn)
    # Search by tag through ListSecrets filters.
    found = browser.get("/console/secrets?q=pay&field=tag-value").body
    assert name in found


def test_the_value_is_in_no_log_or_audit_file_and_the_reveal_is_audited(
    console: ConsoleServer, arn: str
) -> None:
    browser = signed_in(console)
    token = browser.csrf(_secret_page(arn))
    assert browser.post("/console/secrets/reveal",
                        {"csrf": token, "secret_id": arn}).status == 200
    data_dir = Path(console.server.data_dir)
    deadline = time.monotonic() + 5
    while True:  # the audit record is flushed within 50 ms
        records = [
            json.loads(line)
            for path in sorted(data_dir.glob("audit*.log*"))
            for line in path.read_text().splitlines() if line.strip()
        ]
        reveals = [r for r in records if r.get("eventName") == "GetSecretValue"
                   and str(r.get("userAgent", "")).startswith("openkms-console/")]
        if reveals or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert reveals and reveals[-1]["eventSource"] == "secretsmanager.amazonaws.com"
    for path in data_dir.rglob("*"):
        if path.is_file():
            assert VALUE.encode() not in path.read_bytes(), path


def test_malformed_requests_get_an_answer_never_a_500(console: ConsoleServer, arn: str) -> None:
    browser = signed_in(console)
    token = browser.csrf("/console/secrets")
    answers = [
        browser.get("/console/secrets?next=not-a-token&field=nope&q=" + "x" * 5000),
        browser.get("/console/secrets/secret?id=" + "%00" * 10),
        browser.get("/console/secrets/secret?id=" + "a" * 3000),
        browser.get("/console/secrets/secret"),
        browser.post("/console/secrets/reveal", {"csrf": token, "secret_id": ""}),
        browser.post("/console/secrets/reveal", {"csrf": token, "secret_id": arn,
                                                 "version_id": "../../x"}),
        browser.post("/console/secrets/reveal", {"csrf": token, "secret_id": arn,
                                                 "version_stage": "\u0000" * 300}),
        browser.post("/console/secrets/delete", {"csrf": token, "secret_id": arn,
                                                 "days": "many"}),
        browser.post("/console/secrets/tag", {"csrf": token, "secret_id": arn}),
        browser.post("/console/secrets/policy", {"csrf": token, "secret_id": arn,
                                                 "policy": "{not json"}),
        browser.post("/console/secrets/new", {"csrf": token}),
        browser.post("/console/secrets/nothing", {"csrf": token, "secret_id": arn}),
    ]
    for answer in answers:
        assert answer.status in (200, 303, 400, 404), (answer.status, answer.body[:300])
        assert VALUE not in answer.body
    sm = client(console.server, "secretsmanager")
    assert "DeletedDate" not in sm.describe_secret(SecretId=arn)
