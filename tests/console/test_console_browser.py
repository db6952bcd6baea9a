"""The console in a real browser: Debian's Chromium driven by Playwright for Python, against one
development-mode server (and one short-session server for the expiry test).

The tests run in order and build on each other (one key, created in the browser, is the subject
of the policy, rotation and deletion tests, and the audit test finds those actions). Each page
visited is written as a PNG to $OPENKMS_TEST_SCREENSHOTS (default: a temporary directory); the
best of them are in docs/console/.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from tests.components import unavailable
from tests.console.support import ConsoleServer, start_dev_server
from tests.security.support import client

CHROMIUM = "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    unavailable("chromium", f"{CHROMIUM} is not installed", module_level=True)
playwright_api = pytest.importorskip("playwright.sync_api")

# One worker runs the whole module, in order (make test: --dist loadgroup). The pure-Python
# build runs the same console code over the same API as the compiled one; the browser tests run
# in the compiled build only, so that they cost their ~35 s once per `make test`.
pytestmark = pytest.mark.xdist_group("console-browser")
if os.environ.get("OPENKMS_TEST_BUILD") == "pure":
    pytest.skip(
        "browser tests run in the compiled build only (the console is plain Python in both)",
        allow_module_level=True,
    )

ALIAS = f"alias/console-{uuid.uuid4().hex[:8]}"
XSS = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleServer]:
    cs = start_dev_server(tmp_path_factory.mktemp("console-browser"))
    try:
        yield cs
    finally:
        cs.process.stop()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = os.environ.get("OPENKMS_TEST_SCREENSHOTS")
    path = Path(where) if where else tmp_path_factory.mktemp("console-screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def page(browser: Any, console: ConsoleServer) -> Iterator[Any]:
    """The root user's page: signed in through the one-time development link (so every test
    finds it used, whatever order they run in)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.on("dialog", lambda dialog: dialog.accept())
    tab.set_default_timeout(20000)
    assert console.console_url.startswith(console.server.endpoint + "/console/signin/dev?token=")
    tab.goto(console.console_url)
    assert tab.url.endswith("/console/")
    yield tab
    context.close()


@pytest.fixture(scope="module")
def made_key(page: Any, console: ConsoleServer, shots: Path) -> str:
    """A key created through the create-key form: the subject of the key page tests."""
    page.goto(console.base + "/keys/new")
    shot(page, shots, "create-key")
    page.fill("#alias", ALIAS)
    page.fill("#description", XSS)
    page.fill("#tags", "team=payments\nenv=test")
    page.click("#create")
    assert "The key was created." in page.locator(".flash.ok").inner_text()
    return str(page.locator("#key-id").inner_text())


def shot(tab: Any, shots: Path, name: str) -> None:
    tab.screenshot(path=str(shots / f"{name}.png"))


def test_sign_in_through_the_dev_link(page: Any, console: ConsoleServer, shots: Path) -> None:
    page.goto(console.base + "/")
    assert page.locator(".who .arn").inner_text().endswith(":root")
    # Some traffic for the charts to show (the page samples at 0, 1 and 2 s, then every 5 s).
    kms = client(console.server, "kms")
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    until = time.monotonic() + 2.5
    while time.monotonic() < until:
        blob = kms.encrypt(KeyId=key_id, Plaintext=b"x")["CiphertextBlob"]
        kms.decrypt(CiphertextBlob=blob)
        with contextlib.suppress(ClientError):  # some errors for the errors chart
            kms.describe_key(KeyId="alias/missing")
    page.wait_for_selector("#chart-rps .uplot", timeout=20000)  # the charts drew
    shot(page, shots, "overview")


def test_the_dev_link_works_once(page: Any, browser: Any, console: ConsoleServer) -> None:
    context = browser.new_context()
    tab = context.new_page()
    tab.goto(console.console_url)
    assert "/console/signin" in tab.url
    assert "already used" in tab.locator("#error").inner_text()
    context.close()


def test_sign_in_with_a_key_pair(browser: Any, console: ConsoleServer, shots: Path) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    tab = context.new_page()
    tab.goto(console.base + "/keys")
    assert "/console/signin" in tab.url
    shot(tab, shots, "signin")
    tab.fill("#access_key_id", console.server.access_key_id)
    tab.fill("#secret_access_key", "wrong" + console.server.secret_access_key)
    tab.click("#signin")
    assert "SignatureDoesNotMatch" in tab.locator("#error").inner_text()
    tab.fill("#access_key_id", console.server.access_key_id)
    tab.fill("#secret_access_key", console.server.secret_access_key)
    tab.click("#signin")
    assert tab.locator(".who .arn").inner_text().endswith(":root")
    context.close()


def test_create_a_key_and_find_it_by_alias(
    page: Any, console: ConsoleServer, shots: Path, made_key: str
) -> None:
    # Another key, so that the search has something to leave out.
    client(console.server, "kms").create_key(Description="unrelated")
    page.goto(console.base + "/keys")
    shot(page, shots, "keys")
    page.fill("#q", ALIAS.removeprefix("alias/"))
    page.click("#search")
    rows = page.locator("#keys tbody tr")
    assert rows.count() == 1
    assert made_key in rows.first.inner_text()
    assert ALIAS in rows.first.inner_text()
    page.goto(console.base + "/keys?q=payments")  # by tag value
    assert made_key in page.locator("#keys").inner_text()


def test_a_script_in_a_description_stays_text(
    page: Any, console: ConsoleServer, made_key: str
) -> None:
    page.goto(console.base + "/keys?q=" + ALIAS)
    assert XSS in page.locator("#keys").inner_text()
    page.locator("#keys a").first.click()
    assert page.locator("#description").inner_text() == XSS
    assert page.evaluate("() => window.__xss") is None
    assert page.locator("#description script, #description img").count() == 0


def _open_key(page: Any, console: ConsoleServer, key_id: str) -> str:
    page.goto(console.base + "/keys?q=" + ALIAS)
    page.locator("#keys a").first.click()
    assert page.locator("#key-id").inner_text() == key_id
    return key_id


def test_edit_the_policy_with_a_mistake_then_fix_it(
    page: Any, console: ConsoleServer, shots: Path, made_key: str
) -> None:
    _open_key(page, console, made_key)
    good = json.loads(page.locator("#policy-text").input_value())
    page.fill("#policy-text", '{"Version": "2012-10-17", "Statement": [')
    page.click("#do-policy")
    error = page.locator("#error").inner_text()
    assert error.startswith("MalformedPolicyDocumentException:")
    shot(page, shots, "policy-error")
    # The lockout safety check: a policy that lets nobody change it again.
    locked = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": good["Statement"][0]["Principal"]["AWS"]},
         "Action": "kms:Encrypt", "Resource": "*"}]}
    page.fill("#policy-text", json.dumps(locked))
    page.click("#do-policy")
    assert "MalformedPolicyDocumentException" in page.locator("#error").inner_text()
    assert "will not allow you to update the key policy" in page.locator("#error").inner_text()
    good["Statement"].append({
        "Sid": "console-test", "Effect": "Allow",
        "Principal": good["Statement"][0]["Principal"], "Action": "kms:Decrypt", "Resource": "*",
    })
    page.fill("#policy-text", json.dumps(good, indent=2))
    page.click("#do-policy")
    assert "The key policy was saved." in page.locator(".flash.ok").inner_text()
    assert "console-test" in page.locator("#policy-text").input_value()


def test_rotation_enable_and_rotate_on_demand(
    page: Any, console: ConsoleServer, shots: Path, made_key: str
) -> None:
    _open_key(page, console, made_key)
    page.fill("#period", "180")
    page.click("#do-rotation-on")
    assert "Automatic rotation is on." in page.locator(".flash.ok").inner_text()
    assert "every 180 days" in page.locator("#rotation-status").inner_text()
    page.click("#do-rotate")
    assert "rotated" in page.locator(".flash.ok").inner_text()
    timeline = page.locator("#timeline").inner_text()
    assert "original key material" in timeline
    assert "on-demand rotation" in timeline
    assert "next automatic rotation" in timeline
    shot(page, shots, "key")


def test_schedule_deletion_and_cancel_it(
    page: Any, console: ConsoleServer, shots: Path, made_key: str
) -> None:
    _open_key(page, console, made_key)
    page.fill("#days", "7")
    page.click("#do-schedule-deletion")
    assert page.locator("#key-state").inner_text() == "PendingDeletion"
    assert re.search(r"in 6 d 23 h|in 7 d", page.locator("#countdown").inner_text())
    shot(page, shots, "deletion")
    page.click("#do-cancel-deletion")
    assert page.locator("#key-state").inner_text() == "Disabled"
    page.click("#do-enable")
    assert page.locator("#key-state").inner_text() == "Enabled"


def test_create_a_grant_see_an_error_then_revoke_it(
    page: Any, console: ConsoleServer, shots: Path, made_key: str
) -> None:
    _open_key(page, console, made_key)
    root = page.locator(".who .arn").inner_text()
    page.locator("#new-grant summary").click()
    page.fill("#grantee", root)
    page.fill("#grant-name", "console-demo")
    page.click("#do-create-grant")  # no operation ticked: AWS's error, the form kept open
    assert page.locator("#error").inner_text().startswith("ValidationException: ")
    assert page.locator("#grant-name").input_value() == "console-demo"
    page.check("#op-Encrypt")
    page.check("#op-Decrypt")
    page.select_option("#constraint", "EncryptionContextEquals")
    page.fill("#grant-context", "purpose=demo")
    page.fill("#retiring", root)
    page.click("#do-create-grant")
    assert "The grant was created." in page.locator(".flash.ok").inner_text()
    grants = page.locator("#grant-list").inner_text()
    assert "console-demo" in grants and "Decrypt, Encrypt" in grants and "purpose" in grants
    page.locator("#new-grant summary").click()  # the form open under the list, for the picture
    page.locator("#grants").screenshot(path=str(shots / "grants.png"))
    page.locator("#grant-list #do-revoke-grant").first.click()
    assert "The grant was revoked." in page.locator(".flash.ok").inner_text()
    assert "console-demo" not in page.locator("#grant-list").inner_text()


def test_import_key_material(
    page: Any, console: ConsoleServer, shots: Path, tmp_path: Path
) -> None:
    kms = client(console.server, "kms")
    key_id = kms.create_key(Origin="EXTERNAL", Description="imported material")[
        "KeyMetadata"]["KeyId"]
    page.goto(console.base + f"/keys/{key_id}")
    page.click("#import-link")
    page.select_option("#algorithm", "RSAES_OAEP_SHA_256")
    page.select_option("#wrapping-spec", "RSA_3072")
    page.screenshot(path=str(shots / "import.png"), full_page=True)
    with page.expect_download() as info:
        page.click("#do-import-parameters")
    download = info.value
    assert download.suggested_filename == "ImportParameters.zip"
    with zipfile.ZipFile(download.path()) as archive:
        public = serialization.load_der_public_key(archive.read("WrappingPublicKey.bin"))
        (tmp_path / "ImportToken.bin").write_bytes(archive.read("ImportToken.bin"))
    wrapped = public.encrypt(  # type: ignore[union-attr]
        os.urandom(32), padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None))
    (tmp_path / "EncryptedKeyMaterial.bin").write_bytes(wrapped)
    # The files swapped first: AWS's error on the page, never a 500.
    page.set_input_files("#material", str(tmp_path / "ImportToken.bin"))
    page.set_input_files("#token", str(tmp_path / "EncryptedKeyMaterial.bin"))
    page.click("#do-import")
    assert page.locator("#error").inner_text().startswith("InvalidImportTokenException: ")
    page.set_input_files("#material", str(tmp_path / "EncryptedKeyMaterial.bin"))
    page.set_input_files("#token", str(tmp_path / "ImportToken.bin"))
    page.check("#expires")
    page.fill("#valid-to", time.strftime("%Y-%m-%d", time.gmtime(time.time() + 90 * 86400)))
    page.click("#do-import")
    assert "The key material was imported." in page.locator(".flash.ok").inner_text()
    assert page.locator("#key-state").inner_text() == "Enabled"
    assert re.search(r"expires .* \(in 8\d d", page.locator("#import").inner_text())
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"x")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"
    page.click("#do-delete-material")
    assert page.locator("#key-state").inner_text() == "PendingImport"
    # Each step is in the audit view ("Every call": GetParametersForImport is a read, which the
    # view leaves out by default when the console made it).
    wanted = {"GetParametersForImport", "ImportKeyMaterial", "DeleteImportedKeyMaterial"}
    deadline = time.monotonic() + 20
    while True:  # the audit writer flushes every 50 ms
        page.goto(console.base + f"/audit?key={key_id}&reads=all")
        names = set(page.locator("#records .op").all_inner_texts())
        if wanted <= names or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert wanted <= names
    assert "InvalidImportTokenException" in page.locator("#records").inner_text()


def test_the_actions_are_in_the_audit_view(
    page: Any, console: ConsoleServer, shots: Path, made_key: str
) -> None:
    # The actions of the tests above, done here again so that this test needs no other.
    key_id = _open_key(page, console, made_key)
    page.fill("#policy-text", "{")
    page.click("#do-policy")
    page.locator("#error").wait_for()
    page.click("#do-rotation-on")
    page.click("#do-rotate")
    page.fill("#days", "7")
    page.click("#do-schedule-deletion")
    page.click("#do-cancel-deletion")
    page.click("#do-enable")
    assert page.locator("#key-state").inner_text() == "Enabled"
    wanted = {"CreateKey", "PutKeyPolicy", "EnableKeyRotation", "RotateKeyOnDemand",
              "ScheduleKeyDeletion", "CancelKeyDeletion", "EnableKey"}
    deadline = time.monotonic() + 20
    while True:  # the audit writer flushes every 50 ms
        page.goto(console.base + f"/audit?key={key_id}")
        names = set(page.locator("#records .op").all_inner_texts())
        if wanted <= names or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert wanted <= names
    assert "Hash chain verified" in page.locator("#chain-status").inner_text()
    first = page.locator("#records details").first
    first.locator("summary").click()
    record = json.loads(first.locator("pre").inner_text())
    assert record["userAgent"].startswith("openkms-console/")
    assert record["userIdentity"]["arn"].endswith(":root")
    shot(page, shots, "audit")
    page.goto(console.base + "/audit?operation=PutKeyPolicy&outcome=error")
    failed = page.locator("#records .bad").all_inner_texts()
    assert failed and set(failed) == {"MalformedPolicyDocumentException"}
    assert "PutKeyPolicy" in page.locator("#records .op").all_inner_texts()


def test_an_iam_user_without_permissions_sees_access_denied(
    browser: Any, console: ConsoleServer, shots: Path
) -> None:
    iam = client(console.server, "iam")
    kms = client(console.server, "kms")
    name = f"nobody-{uuid.uuid4().hex[:6]}"
    iam.create_user(UserName=name)
    issued = iam.create_access_key(UserName=name)["AccessKey"]
    keys_before = len(kms.list_keys(Limit=1000)["Keys"])
    context = browser.new_context(viewport={"width": 1280, "height": 700})
    tab = context.new_page()
    tab.goto(console.base + "/signin")
    tab.fill("#access_key_id", issued["AccessKeyId"])
    tab.fill("#secret_access_key", issued["SecretAccessKey"])
    tab.click("#signin")
    assert tab.locator(".who .arn").inner_text().endswith(f":user/{name}")
    tab.goto(console.base + "/keys")
    assert tab.locator("#error").inner_text().startswith("AccessDeniedException:")
    shot(tab, shots, "access-denied")
    tab.goto(console.base + "/keys/new")
    tab.click("#create")
    assert tab.locator("#error").inner_text().startswith("AccessDeniedException:")
    tab.goto(console.base + "/iam")
    assert "AccessDenied" in tab.locator(".flash.err").inner_text()
    tab.goto(console.base + "/audit")
    assert "AccessDenied" in tab.locator("#error").inner_text()
    assert len(kms.list_keys(Limit=1000)["Keys"]) == keys_before
    context.close()


class _Attacker(BaseHTTPRequestHandler):
    target = ""

    def do_GET(self) -> None:
        body = (
            "<html><body><form id=f method=post action='" + self.target + "/console/keys/new'>"
            "<input name=csrf value=guess><input name=spec_usage value='SYMMETRIC_DEFAULT:"
            "ENCRYPT_DECRYPT'><input name=description value=csrf-attack></form>"
            "<script>document.getElementById('f').submit()</script></body></html>"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_cross_site_post_is_refused(page: Any, console: ConsoleServer) -> None:
    """A page of another origin makes the signed-in browser post the create-key form."""
    _Attacker.target = console.server.endpoint
    attacker = ThreadingHTTPServer(("127.0.0.1", 0), _Attacker)
    threading.Thread(target=attacker.serve_forever, daemon=True).start()
    try:
        with page.expect_response(lambda r: "/console/keys/new" in r.url) as answer:
            page.goto(f"http://localhost:{attacker.server_address[1]}/")
        assert answer.value.status == 403
    finally:
        attacker.shutdown()
        attacker.server_close()
    kms = client(console.server, "kms")
    keys = kms.list_keys(Limit=1000)["Keys"]
    described = [kms.describe_key(KeyId=k["KeyId"])["KeyMetadata"] for k in keys]
    assert not [m for m in described if m.get("Description") == "csrf-attack"]


def test_iam_page(page: Any, console: ConsoleServer, shots: Path) -> None:
    name = f"console-{uuid.uuid4().hex[:6]}"
    page.goto(console.base + "/iam")
    page.fill("#new-user", name)
    page.click("#do-create-user")
    assert "The user was created." in page.locator(".flash.ok").inner_text()
    assert name in page.locator("#users").inner_text()
    shot(page, shots, "iam")


def test_secrets_create_find_reveal_and_delete(
    page: Any, console: ConsoleServer, shots: Path
) -> None:
    """A secret stored through the form, found by tag, its value hidden until the click (and not
    cached: going back shows the hidden page again), then deleted and restored."""
    name = f"prod/payments-{uuid.uuid4().hex[:6]}"
    value = json.dumps({"username": "app", "password": uuid.uuid4().hex})
    page.goto(console.base + "/secrets/new")
    page.fill("#name", name)
    page.fill("#description", "Payments database credentials")
    page.fill("#value", value)
    page.fill("#tags", "team=payments\nenv=prod")
    page.click("#create")
    assert "The secret was created." in page.locator(".flash.ok").inner_text()
    sm = client(console.server, "secretsmanager")
    sm.put_secret_value(SecretId=name, SecretString=value.replace("app", "app2"))
    page.goto(console.base + "/secrets?field=tag-value&q=paym")
    assert name in page.locator("#secrets").inner_text()
    shot(page, shots, "secrets")
    page.click(f"text={name}")
    assert page.locator("#secret-name").inner_text() == name
    assert "app2" not in page.content()
    with page.expect_response(lambda r: r.url.endswith("/console/secrets/reveal")) as answer:
        page.click("#reveal")
    assert answer.value.headers["cache-control"] == "no-store"
    assert json.loads(page.locator("#secret-value").inner_text())["username"] == "app2"
    assert "AWSPREVIOUS" in page.locator("#versions").inner_text()
    shot(page, shots, "secret")
    page.goto(console.base + "/secrets/secret?id=" + name)
    assert "app2" not in page.content()
    page.fill("#days", "7")
    page.click("#do-delete")
    assert "scheduled for deletion" in page.locator(".flash.ok").inner_text()
    page.click("#do-restore")
    assert "The secret was restored." in page.locator(".flash.ok").inner_text()


def test_a_session_expires(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    short = start_dev_server(
        tmp_path_factory.mktemp("console-expiry"), "--config", str(_short_session_config(
            tmp_path_factory.mktemp("console-expiry-config")))
    )
    try:
        context = browser.new_context()
        tab = context.new_page()
        tab.goto(short.console_url)
        signed_in = time.monotonic()
        assert tab.locator(".who .arn").inner_text().endswith(":root")
        time.sleep(max(0.0, 2.2 - (time.monotonic() - signed_in)))
        tab.goto(short.base + "/keys")
        assert "/console/signin?expired=1" in tab.url
        assert "Your session has ended" in tab.content()
        context.close()
    finally:
        short.process.stop()


def _short_session_config(directory: Path) -> Path:
    path = directory / "openkms.toml"
    path.write_text("console_session_seconds = 2\n")
    return path
