"""Attacks on the web console, against a real development-mode server, with a client that sends
what a browser would and lacks a browser's protections: unauthenticated access to every console
URL, cross-site requests and CSRF, session fixation and expiry, cookie flags, XSS through
everything a tenant can write, and secrets at rest in the session store."""

from __future__ import annotations

import http.client
import json
import re
import ssl
import subprocess
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

from openkms.tlsdev import make_dev_certs
from tests.conftest import ServerProcess, child_env, create_account, free_port, openkms_command
from tests.console.support import Browserless, ConsoleServer, start_dev_server
from tests.security.support import client, new_user

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleServer]:
    cs = start_dev_server(tmp_path_factory.mktemp("console-attacks"))
    try:
        yield cs
    finally:
        cs.process.stop()


@pytest.fixture(scope="module")
def key_id(console: ConsoleServer) -> str:
    kms = client(console.server, "kms")
    tags = [{"TagKey": "t", "TagValue": '"><svg onload=alert(2)>'}]
    meta = kms.create_key(Description=XSS, Tags=tags)
    return str(meta["KeyMetadata"]["KeyId"])


class _Scan(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name.lower() for name, _ in attrs}
        self.found += [f"{tag} {name}" for name in names if name.startswith("on")]
        if tag == "script" and "src" not in names:
            self.found.append("inline script")
        if tag == "script":
            self._in_script = True


def inline_code(html: str) -> list[str]:
    """Elements the browser would run as code of the page itself (inline script, on*=)."""
    scan = _Scan()
    scan.feed(html)
    return scan.found


def signed_in(console: ConsoleServer) -> Browserless:
    browser = Browserless(console.server.endpoint)
    answer = browser.sign_in(console.server.access_key_id, console.server.secret_access_key)
    assert answer.status == 303, answer.body
    return browser


PAGES = ("/console/", "/console/overview", "/console/keys", "/console/keys/new",
         "/console/audit", "/console/iam", "/console/keys/{key}", "/console/keys/{key}/import",
         "/console/keystores",
         "/console/secrets",
         "/console/secrets/new", "/console/secrets/secret?id=x")
SECRET_ACTIONS = ("new", "reveal", "put-value", "description", "tag", "untag", "delete",
                  "restore", "policy", "delete-policy", "rotate", "cancel-rotation")
KEY_ACTIONS = ("policy", "rotation-on", "rotation-off", "rotate", "schedule-deletion",
               "cancel-deletion", "enable", "disable", "description", "tag", "untag", "alias",
               "unalias", "delete-material", "replicate", "create-grant", "retire-grant",
               "revoke-grant", "import-parameters", "import", "primary-region")
ACTIONS = ("/console/keys/new", "/console/signout", "/console/iam/create-user",
           "/console/iam/delete-user", "/console/iam/create-key", "/console/iam/create-role",
           "/console/iam/put-user-policy", "/console/keystores/create",
           "/console/keystores/connect", "/console/keystores/delete",
           *(f"/console/keys/{{key}}/{a}" for a in KEY_ACTIONS),
           *(f"/console/secrets/{a}" for a in SECRET_ACTIONS))


def test_every_console_url_needs_a_session(console: ConsoleServer, key_id: str) -> None:
    anonymous = Browserless(console.server.endpoint)
    for path in PAGES:
        answer = anonymous.get(path.format(key=key_id))
        assert answer.status == 303, path
        assert answer.headers["location"].startswith("/console/signin"), path
    assert anonymous.get("/console/overview/metrics.json").status == 401
    for path in ACTIONS:
        answer = anonymous.post(path.format(key=key_id), {"csrf": "x", "days": "7"})
        assert answer.status == 403, path
    # A forged cookie is no session either.
    anonymous.cookie = "openkms_console=" + "A" * 43
    assert anonymous.get("/console/keys").status == 303
    meta = client(console.server, "kms").describe_key(KeyId=key_id)["KeyMetadata"]
    assert meta["KeyState"] == "Enabled"


def test_cookie_flags_and_security_headers(console: ConsoleServer) -> None:
    browser = Browserless(console.server.endpoint)
    answer = browser.sign_in(console.server.access_key_id, console.server.secret_access_key)
    cookie = answer.headers["set-cookie"]
    assert re.match(r"openkms_console=[A-Za-z0-9_-]{43}; ", cookie)
    flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "path", "max-age", "samesite"} <= flags
    assert "SameSite=Strict" in cookie and "Path=/console" in cookie
    assert "secure" not in flags  # plain HTTP on loopback: a Secure cookie would not come back
    for path in ("/console/signin", "/console/keys", "/console/keys/new", "/console/audit",
                 "/console/iam", "/console/overview", "/console/nothing-here",
                 "/console/secrets", "/console/secrets/new"):
        answer = browser.get(path)
        csp = answer.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp, path
        assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["cache-control"] == "no-store"
        # No inline script and no inline event handler anywhere: the CSP could not allow them.
        assert inline_code(answer.body) == [], path


def test_csrf_token_and_origin_are_both_required(console: ConsoleServer, key_id: str) -> None:
    victim = signed_in(console)
    token = victim.csrf()
    other = signed_in(console)
    other_token = other.csrf()
    assert other_token != token
    path = f"/console/keys/{key_id}/disable"
    refusals = [
        victim.post(path, {}),  # no token
        victim.post(path, {"csrf": "x" * 43}),  # a wrong one
        victim.post(path, {"csrf": other_token}),  # another session's
        victim.post(path, {"csrf": token}, headers={"Origin": "http://evil.example"}),
        victim.post(path, {"csrf": token}, headers={"Origin": "http://127.0.0.1:1"}),
        victim.post(path, {"csrf": token}, headers={"Sec-Fetch-Site": "cross-site"}),
        victim.post(path, {"csrf": token}, headers={"Sec-Fetch-Site": "same-site"}),
        victim.post(path, {"csrf": token}, same_origin=False),  # neither header
        victim.post(path, {"csrf": token}, same_origin=False, headers={"Origin": "null"}),
        victim.request("GET", path + f"?csrf={token}"),  # never by GET
    ]
    assert [r.status for r in refusals] == [403] * 9 + [404]
    kms = client(console.server, "kms")
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
    # The same request from our own origin with the token goes through.
    assert victim.post(path, {"csrf": token}).status == 303
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Disabled"
    assert victim.post(f"/console/keys/{key_id}/enable", {"csrf": token}).status == 303


def test_sign_in_from_another_site_is_refused(console: ConsoleServer) -> None:
    """Login CSRF: a page elsewhere must not sign the browser in as the attacker."""
    browser = Browserless(console.server.endpoint)
    answer = browser.post(
        "/console/signin",
        {"access_key_id": console.server.access_key_id,
         "secret_access_key": console.server.secret_access_key},
        headers={"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"},
    )
    assert answer.status == 403
    assert browser.cookie is None


def test_session_fixation(console: ConsoleServer) -> None:
    """An id planted before sign-in is never adopted: sign-in always issues a new one."""
    browser = Browserless(console.server.endpoint)
    planted = "openkms_console=" + "F" * 43
    browser.cookie = planted
    browser.sign_in(console.server.access_key_id, console.server.secret_access_key)
    assert browser.cookie is not None and browser.cookie != planted
    attacker = Browserless(console.server.endpoint)
    attacker.cookie = planted
    assert attacker.get("/console/keys").status == 303


def test_sign_out_ends_the_session_on_the_server(console: ConsoleServer) -> None:
    browser = signed_in(console)
    stolen = browser.cookie
    token = browser.csrf()
    assert browser.post("/console/signout", {"csrf": token}).status == 303
    replay = Browserless(console.server.endpoint)
    replay.cookie = stolen
    assert replay.get("/console/keys").status == 303


def test_the_dev_link_works_once(tmp_path_factory: pytest.TempPathFactory) -> None:
    cs = start_dev_server(tmp_path_factory.mktemp("console-devlink"))
    try:
        path = cs.console_url.removeprefix(cs.server.endpoint)
        first, second = Browserless(cs.server.endpoint), Browserless(cs.server.endpoint)
        assert first.get(path).status == 303 and first.cookie
        assert second.get(path).status == 403 and second.cookie is None
        assert second.get("/console/signin/dev?token=guess").status == 403
    finally:
        cs.process.stop()


def test_a_session_expires_on_the_server(tmp_path_factory: pytest.TempPathFactory) -> None:
    config = tmp_path_factory.mktemp("console-ttl") / "openkms.toml"
    config.write_text("console_session_seconds = 1\n")
    cs = start_dev_server(tmp_path_factory.mktemp("console-expiry"), "--config", str(config))
    try:
        browser = signed_in(cs)
        kept = browser.cookie
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            replay = Browserless(cs.server.endpoint)
            replay.cookie = kept  # the browser would drop it; an attacker would not
            if replay.get("/console/keys").status == 303:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the console session did not expire")
    finally:
        cs.process.stop()


def test_tenant_data_renders_inert(console: ConsoleServer, key_id: str) -> None:
    kms = client(console.server, "kms")
    alias = f"alias/x-{uuid.uuid4().hex[:6]}"
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    policy = json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
    policy["Statement"].append({
        "Sid": "xss", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "kms:Encrypt",
        "Resource": "*",
        "Condition": {"StringEquals": {"kms:EncryptionContext:x": "</textarea>" + XSS}},
    })
    kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=json.dumps(policy))
    kms.encrypt(KeyId=key_id, Plaintext=b"p", EncryptionContext={"note": XSS})
    browser = signed_in(console)
    pages = [
        browser.get(f"/console/keys/{key_id}").body,
        browser.get(f"/console/keys?q={alias}").body,
        browser.get("/console/keys?q=svg").body,  # found by its tag value
    ]
    deadline = time.monotonic() + 10
    while True:  # the audit record of the Encrypt call (flushed within 50 ms)
        audit = browser.get(f"/console/audit?key={key_id}&operation=Encrypt").body
        if "Encrypt" in re.sub(r"<[^>]+>", "", audit).split("Search", 1)[-1] or \
                time.monotonic() > deadline:
            break
        time.sleep(0.1)
    pages.append(audit)
    for body in pages:
        assert "<script>alert" not in body
        assert "<img src=x" not in body and "<svg onload" not in body
        assert "</textarea><script" not in body
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in pages[0]
    assert "&lt;svg onload=alert(2)&gt;" in pages[0]
    assert "&lt;/textarea&gt;" in pages[0]
    assert "&lt;script&gt;" in audit  # the encryption context value in the record


def test_the_session_store_holds_no_secret(console: ConsoleServer) -> None:
    """Sessions live in the server's database: the secret access key must not be there in the
    clear (it is sealed under a key derived from the cookie's id, which the server keeps
    only as a digest)."""
    browser = signed_in(console)
    assert browser.cookie
    session_id = browser.cookie.split("=", 1)[1]
    secret = console.server.secret_access_key.encode()
    for path in Path(console.server.data_dir).rglob("*"):
        # dev.env and the server's stdout (which prints dev.env) hold the dev key by design.
        if path.is_file() and path.name not in ("dev.env", "server.stdout.log"):
            data = path.read_bytes()
            assert secret not in data, path
            assert session_id.encode() not in data, path


def test_static_files_cannot_escape_their_directory(console: ConsoleServer) -> None:
    browser = signed_in(console)
    assert browser.get("/console/static/console.js").status == 200
    for path in ("/console/static/../app.py", "/console/static/%2e%2e/app.py",
                 "/console/static/vendor/../../sessions.py", "/console/static/..%2fapp.py",
                 "/console/static/vendor/uPlot.LICENSE.txt"):
        assert browser.get(path).status == 404, path


def test_no_console_turns_it_off(tmp_path_factory: pytest.TempPathFactory) -> None:
    cs = start_dev_server(tmp_path_factory.mktemp("console-off"), "--no-console")
    try:
        browser = Browserless(cs.server.endpoint)
        answer = browser.get("/console/signin")
        assert answer.status != 200
        assert "text/html" not in answer.headers.get("content-type", "")
        assert cs.console_url == ""
    finally:
        cs.process.stop()


def test_malformed_requests_get_an_answer_never_a_500(console: ConsoleServer, key_id: str) -> None:
    browser = signed_in(console)
    token = browser.csrf()
    anonymous = Browserless(console.server.endpoint)
    answers = [
        anonymous.sign_in("AKIA\u00e9\u4e2d" * 4, "s"),  # not latin-1
        anonymous.sign_in("A" * 5000, "secret"),
        anonymous.sign_in("AKIAAAAAAAAAAAAAAAAA", "x\ny"),
        anonymous.post("/console/signin", {"access_key_id": ""}),
        anonymous.request("POST", "/console/signin", headers={"Content-Type": "text/plain"}),
        anonymous.request("PUT", "/console/keys"),
        anonymous.request("GET", "/console/keys?" + "&".join(f"a{i}=1" for i in range(500))),
        browser.post("/console/keys/new", {f"f{i}": "x" for i in range(300)}),
        browser.post(f"/console/keys/{key_id}/description",
                     {"csrf": token, "description": "\u202e" * 3}),
        browser.post(f"/console/keys/{key_id}/schedule-deletion",
                     {"csrf": token, "days": "not a number"}),
        browser.post(f"/console/keys/{key_id}/alias", {"csrf": token, "alias": "\u00e9" * 300}),
        browser.post("/console/iam/create-user", {"csrf": token, "name": "<b>" * 40}),
        browser.post("/console/keys/new", {"csrf": token, "spec_usage": "NOPE:NOPE"}),
        browser.get("/console/keys/" + "a" * 65),
        browser.get("/console/keys/%00"),
        browser.get("/console/audit?since=yesterday&until=" + "9" * 400),
        browser.get("/console/keys?marker=%%%"),
        browser.request("GET", "/console/keys", headers={"Cookie": "a=\"unterminated; =;"}),
        browser.request("POST", "/console/keys/new", headers={"Content-Length": "99999999"}),
    ]
    for index, answer in enumerate(answers):
        assert 200 <= answer.status < 500, (index, answer.status, answer.body[:300])


def test_sessions_work_across_worker_processes(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A session made by one worker is honoured by the others (it lives in the storage)."""
    cs = start_dev_server(tmp_path_factory.mktemp("console-workers"), "--workers", "2")
    try:
        browser = signed_in(cs)
        statuses = {browser.get("/console/keys").status for _ in range(30)}
        assert statuses == {200}
        token = browser.csrf()
        assert all(
            browser.post("/console/keys/new", {"csrf": token}).status == 303 for _ in range(6)
        )
    finally:
        cs.process.stop()


def test_under_tls_the_cookie_is_secure_and_host_only(tmp_path: Path) -> None:
    certs = make_dev_certs(tmp_path / "tls", ["localhost", "127.0.0.1"])
    data_dir = tmp_path / "data"
    account = create_account(data_dir)
    proc = ServerProcess(
        data_dir, extra_args=("--tls-cert", str(certs.server_cert), "--tls-key",
                              str(certs.server_key)),
    )
    port = free_port()
    proc.port = port
    context = ssl.create_default_context(cafile=str(certs.ca_cert))
    with open(data_dir / "server.stderr.log", "ab") as err:
        proc.process = subprocess.Popen(
            openkms_command("serve", "--data-dir", str(data_dir), "--port", str(port),
                            *proc.extra_args),
            env=child_env(), stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip

    def call(method: str, path: str, body: str | None = None,
             headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
        conn = http.client.HTTPSConnection("localhost", port, context=context, timeout=10)
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        resp.read()
        conn.close()
        return resp

    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                call("GET", "/healthz")
                break
            except OSError:
                assert proc.running and time.monotonic() < deadline
                time.sleep(0.2)
        origin = f"https://localhost:{port}"
        form = urllib.parse.urlencode({"access_key_id": account["AccessKeyId"],
                                       "secret_access_key": account["SecretAccessKey"]})
        resp = call("POST", "/console/signin", form, {
            "Content-Type": "application/x-www-form-urlencoded", "Origin": origin,
            "Sec-Fetch-Site": "same-origin"})  # fmt: skip
        cookie = resp.headers["set-cookie"]
        assert cookie.startswith("__Host-openkms_console=")
        assert "; Secure" in cookie and "; Path=/;" in cookie and "HttpOnly" in cookie
        assert "SameSite=Strict" in cookie
        pair = cookie.split(";", 1)[0]
        assert call("GET", "/console/keys", headers={"Cookie": pair}).status == 200
        # The same id under the plain-HTTP name is not read over TLS.
        plain = "openkms_console=" + pair.split("=", 1)[1]
        assert call("GET", "/console/keys", headers={"Cookie": plain}).status == 303
    finally:
        proc.stop()


# -- grants and imported key material -------------------------------------------------------------
def test_a_user_without_create_grant_cannot_make_one(console: ConsoleServer) -> None:
    """The console creates, retires and revokes grants as the signed-in principal: an IAM user
    allowed to read the key but not kms:CreateGrant (nor RetireGrant, RevokeGrant) gets AWS's
    AccessDeniedException and changes nothing."""
    kms = client(console.server, "kms")
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]  # (other tests schedule key_id's deletion)
    account = client(console.server, "sts").get_caller_identity()["Account"]
    iam = client(console.server, "iam")
    reader = new_user(iam, None, {
        "Effect": "Allow",
        "Action": ["kms:DescribeKey", "kms:ListGrants", "kms:ListAliases",
                   "kms:ListResourceTags", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus"],
        "Resource": "*",
    })
    existing = kms.create_grant(KeyId=key_id, GranteePrincipal=f"arn:aws:iam::{account}:root",
                                Operations=["Decrypt"])["GrantId"]
    browser = Browserless(console.server.endpoint)
    deadline = time.monotonic() + 5
    while True:  # a new user's policy takes effect within the cache TTL
        browser.sign_in(reader.creds["AccessKeyId"], reader.creds["SecretAccessKey"])
        page = browser.get(f"/console/keys/{key_id}")
        if page.status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert page.status == 200 and 'id="grant-form"' in page.body
    token = browser.csrf(f"/console/keys/{key_id}")
    answer = browser.post(f"/console/keys/{key_id}/create-grant", {
        "csrf": token, "grantee": reader.arn, "op-Decrypt": "on", "op-CreateGrant": "on"})
    assert answer.status == 400
    assert re.search(r'id="error">AccessDeniedException: ', answer.body), answer.body[:2000]
    for action in ("retire-grant", "revoke-grant"):
        answer = browser.post(f"/console/keys/{key_id}/{action}",
                              {"csrf": token, "grant_id": existing})
        assert answer.status == 400, action
        assert re.search(r'id="error">AccessDeniedException: ', answer.body), action
    grants = kms.list_grants(KeyId=key_id)["Grants"]
    assert [g["GrantId"] for g in grants] == [existing]


def test_grant_and_import_forms_refuse_cross_site_posts(console: ConsoleServer) -> None:
    key_id = client(console.server, "kms").create_key()["KeyMetadata"]["KeyId"]
    victim = signed_in(console)
    token = victim.csrf()
    account = client(console.server, "sts").get_caller_identity()["Account"]
    grant = {"csrf": token, "grantee": f"arn:aws:iam::{account}:root", "op-Decrypt": "on"}
    path = f"/console/keys/{key_id}/create-grant"
    refusals = [
        victim.post(path, grant, headers={"Origin": "http://evil.example"}),
        victim.post(path, grant, headers={"Sec-Fetch-Site": "cross-site"}),
        victim.post(path, grant, same_origin=False),
        victim.post(path, {k: v for k, v in grant.items() if k != "csrf"}),
        victim.post(path, {**grant, "csrf": "x" * 43}),
        # The same as a multipart form (what a cross-site <form enctype=...> could send).
        victim.upload(path, grant, {}, headers={"Origin": "http://evil.example"}),
        victim.upload(f"/console/keys/{key_id}/import", {"csrf": token},
                      {"material": ("m.bin", b"x", "application/octet-stream"),
                       "token": ("t.bin", b"y", "application/octet-stream")},
                      same_origin=False),
        victim.post(f"/console/keys/{key_id}/import-parameters",
                    {"csrf": token, "algorithm": "RSAES_OAEP_SHA_256", "spec": "RSA_2048"},
                    headers={"Sec-Fetch-Site": "cross-site"}),
    ]
    assert [r.status for r in refusals] == [403] * len(refusals)
    assert not client(console.server, "kms").list_grants(KeyId=key_id)["Grants"]
    # The same grant form from our own origin goes through (so the refusals above were the
    # origin and the token, not the form).
    assert victim.post(path, grant).status == 303
    assert len(client(console.server, "kms").list_grants(KeyId=key_id)["Grants"]) == 1


def test_uploads_that_are_huge_or_not_what_they_claim(console: ConsoleServer) -> None:
    kms = client(console.server, "kms")
    key_id = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    browser = signed_in(console)
    path = f"/console/keys/{key_id}/import"
    token = browser.csrf(path)
    fields = {"csrf": token, "expiration_model": "KEY_MATERIAL_DOES_NOT_EXPIRE"}
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200
    answers = {
        # Beyond the console's body limit: refused before the body is read.
        "huge": browser.upload(path, fields,
                               {"material": ("k.bin", b"\x00" * (300 * 1024), "x/y"),
                                "token": ("t.bin", b"t", "x/y")}),
        # An image claiming to be key material, a text file claiming to be a token.
        "png": browser.upload(path, fields,
                              {"material": ("EncryptedKeyMaterial.bin", png, "image/png"),
                               "token": ("ImportToken.bin", b"hello\n", "text/plain")}),
        # A file name that would be markup or a path if it were ever shown or used.
        "name": browser.upload(path, fields,
                               {"material": ('"><script>alert(1)</script>../../etc/passwd',
                                             b"\x00" * 256, "application/octet-stream"),
                                "token": ("t.bin", b"\x00" * 48, "application/octet-stream")}),
        # Malformed multipart bodies: no boundary, too many parts, a field that is not UTF-8.
        "no-boundary": browser.request_raw(path, b"--zz\r\n", "multipart/form-data"),
        "many-parts": browser.upload(path, {"csrf": token, **{f"f{i}": "x" for i in range(40)}},
                                     {}),
        "not-utf8": browser.request_raw(
            path, b'--zz\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n\xff\xfe\r\n'
            b"--zz--\r\n", "multipart/form-data; boundary=zz"),
        "truncated": browser.request_raw(
            path, b'--zz\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n'
            + token.encode(), "multipart/form-data; boundary=zz"),
    }
    statuses = {name: answer.status for name, answer in answers.items()}
    assert statuses["huge"] == 413
    assert statuses["png"] == 400 and "InvalidImportTokenException" in answers["png"].body
    assert statuses["name"] == 400 and "<script>alert(1)" not in answers["name"].body
    assert "etc/passwd" not in answers["name"].body
    for name in ("no-boundary", "many-parts", "not-utf8"):
        assert statuses[name] == 403, (name, answers[name].body[:300])
    assert statuses["truncated"] in (400, 403)  # never a 500, and nothing imported
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingImport"


def test_a_strangers_pathological_multipart_bodies(console: ConsoleServer) -> None:
    """Every multipart POST to the console is parsed before the session or the CSRF token is
    looked at, so a stranger chooses its shape. Within the 256 KiB limit: multiparts nested
    thousands deep and a part header of nested comments (the email package's recursive parser
    raised RecursionError: a 500), and a Content-Disposition of 17,000 RFC 2231 continuations
    (quadratic there: a minute of the event loop, the API's included, per request). Each is
    answered as the malformed form it is, within the client's 30 s timeout, and the API still
    answers."""
    stranger = Browserless(console.server.endpoint)
    nested = b"".join(
        b"--b%d\r\nContent-Type: multipart/form-data; boundary=b%d\r\n\r\n" % (i, i + 1)
        for i in range(3000)
    )
    comments = (b'--zz\r\nContent-Disposition: form-data; name="csrf"\r\nContent-Type: text/plain; '
                + b"((" * 5000 + b"\r\n\r\nx\r\n--zz--\r\n")
    continued = (b"--zz\r\nContent-Disposition: form-data; "
                 + b"".join(b'name*%d="a";' % i for i in range(17000)) + b"\r\n\r\nx\r\n--zz--\r\n")
    bodies = {"nested": (nested, "b0"), "comments": (comments, "zz"),
              "continued": (continued, "zz")}
    for name, (body, boundary) in bodies.items():
        assert len(body) < 256 * 1024, name
        for path in ("/console/signin", "/console/keys/x/import"):
            answer = stranger.request_raw(path, body, f"multipart/form-data; boundary={boundary}")
            assert answer.status in (400, 403), (name, path, answer.status, answer.body[:200])
    assert client(console.server, "kms").list_keys()["Keys"] is not None


def test_multipart_forms_are_read_as_browsers_send_them(console: ConsoleServer) -> None:
    """The console's own multipart reader: a browser's form (quoted boundary, an empty file
    input, the CSRF field first) is read; a preamble, a part without Content-Disposition, an
    unterminated quote or a body without its close delimiter give no fields (so no CSRF token:
    403), never a partial form."""
    browser = signed_in(console)
    token = browser.csrf()
    boundary = "----WebKitFormBoundaryQ2x"

    def form(*parts: bytes, preamble: bytes = b"", close: bool = True) -> bytes:
        body = preamble + b"".join(b"--" + boundary.encode() + b"\r\n" + p + b"\r\n"
                                   for p in parts)
        return body + (b"--" + boundary.encode() + b"--\r\n" if close else b"")

    csrf = b'Content-Disposition: form-data; name="csrf"\r\n\r\n' + token.encode()
    empty_file = (b'Content-Disposition: form-data; name="material"; filename=""\r\n'
                  b"Content-Type: application/octet-stream\r\n\r\n")
    content_type = f'multipart/form-data; boundary="{boundary}"'
    path = "/console/keys/x/import"
    read = browser.request_raw(path, form(csrf, empty_file), content_type)
    assert read.status == 400 and "Choose both files" in read.body, read.body[:300]
    refused = {
        "preamble": form(csrf, empty_file, preamble=b"hello\r\n"),
        "no-disposition": form(csrf, b"Content-Type: text/plain\r\n\r\nx"),
        "open-quote": form(csrf, b'Content-Disposition: form-data; name="a\r\n\r\nx'),
        "unclosed": form(csrf, empty_file, close=False),
    }
    for name, body in refused.items():
        assert browser.request_raw(path, body, content_type).status == 403, name
