"""The console's forms without a browser: the create-key flow for every key spec and usage, a
multi-Region key and its replica, a key for imported material (the whole import flow: wrapping
parameters, upload, expiry, deletion), grants (create with constraints, retire, revoke), and an
IAM user's access key (shown once). Each answer is the page AWS's answer leads to, never a
500."""

from __future__ import annotations

import io
import os
import re
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from openkms.console.keys import SPEC_USAGES
from tests.components import unavailable
from tests.console.support import Browserless, ConsoleServer, start_dev_server
from tests.integration.xks_proxy import URI_PATH, XksProxy
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
    # The replica becomes the primary: UpdatePrimaryRegion, this key a replica.
    answer = browser.post(f"/console/keys/{key_id}/primary-region", {"csrf": token,
                                                                     "region": "eu-west-1"})
    assert answer.status == 303, answer.body[:2000]
    kms = client(console.server, "kms")
    deadline = time.monotonic() + 10
    while True:  # the change completes in the background (Updating, then done), as on AWS
        config = kms.describe_key(KeyId=key_id)["KeyMetadata"]["MultiRegionConfiguration"]
        if config["MultiRegionKeyType"] == "REPLICA" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert config["PrimaryKey"]["Region"] == "eu-west-1"
    answer = browser.post(f"/console/keys/{key_id}/primary-region", {"csrf": token,
                                                                     "region": "nowhere-1"})
    assert answer.status == 400 and re.search(r'id="error">\w+Exception: ', answer.body)


def test_key_for_imported_material(console: ConsoleServer, browser: Browserless) -> None:
    token = browser.csrf("/console/keys/new")
    answer = browser.post("/console/keys/new", {"csrf": token, "origin": "EXTERNAL",
                                                "spec_usage": "SYMMETRIC_DEFAULT:ENCRYPT_DECRYPT"})
    key_id = _key_id(answer.headers["location"])
    page = browser.get(f"/console/keys/{key_id}")
    assert "PendingImport" in page.body and "none imported" in page.body
    assert key_id in browser.get("/console/keys?origin=EXTERNAL&state=PendingImport").body


def test_key_in_a_custom_key_store_goes_to_the_api(
    console: ConsoleServer, browser: Browserless
) -> None:
    """The form passes the custom key store and external key id to CreateKey; a store that does
    not exist is AWS's error, the form kept (a real store is tests/integration's part)."""
    token = browser.csrf("/console/keys/new")
    answer = browser.post("/console/keys/new", {
        "csrf": token, "origin": "EXTERNAL_KEY_STORE",
        "custom_key_store_id": "cks-0123456789abcdef0", "xks_key_id": "ext-key-1",
        "spec_usage": "SYMMETRIC_DEFAULT:ENCRYPT_DECRYPT", "description": "kept"})
    assert answer.status == 400
    assert re.search(r'id="error">CustomKeyStoreNotFoundException: ', answer.body), \
        answer.body[:2000]
    assert 'value="ext-key-1"' in answer.body and 'value="kept"' in answer.body


def test_an_access_key_secret_is_shown_once(console: ConsoleServer, browser: Browserless) -> None:
    token = browser.csrf("/console/iam")
    assert browser.post("/console/iam/create-user", {"csrf": token, "name": "shown-once"}) \
        .status == 303
    answer = browser.post("/console/iam/create-key", {"csrf": token, "name": "shown-once"})
    assert answer.status == 200
    secret = re.search(r'Secret access key: <span class="secret" data-reveal>([^<]+)<', answer.body)
    assert secret and len(secret.group(1)) == 40
    assert secret.group(1) not in browser.get("/console/iam").body


# -- grants ---------------------------------------------------------------------------------------
def _account(console: ConsoleServer) -> str:
    return str(client(console.server, "sts").get_caller_identity()["Account"])


def test_grant_create_retire_revoke(console: ConsoleServer, browser: Browserless) -> None:
    kms = client(console.server, "kms")
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    root = f"arn:aws:iam::{_account(console)}:root"
    token = browser.csrf(f"/console/keys/{key_id}")
    answer = browser.post(f"/console/keys/{key_id}/create-grant", {
        "csrf": token, "grantee": root, "op-Encrypt": "on", "op-Decrypt": "on",
        "op-Bogus": "on", "constraint": "EncryptionContextSubset",
        "context": "dept=a=b\n\n project = x \n", "retiring": root, "name": "console-grant",
    })
    assert answer.status == 303, answer.body[:2000]
    assert answer.headers["location"] == f"/console/keys/{key_id}?done=create-grant#grants"
    (grant,) = kms.list_grants(KeyId=key_id)["Grants"]
    assert grant["Name"] == "console-grant" and grant["RetiringPrincipal"] == root
    assert sorted(grant["Operations"]) == ["Decrypt", "Encrypt"]
    assert grant["Constraints"] == {"EncryptionContextSubset": {"dept": "a=b", "project": "x"}}
    page = browser.get(f"/console/keys/{key_id}?done=create-grant")
    assert "The grant was created." in page.body and "console-grant" in page.body
    assert grant["GrantId"] in page.body  # in the retire and revoke forms
    answer = browser.post(f"/console/keys/{key_id}/retire-grant",
                          {"csrf": token, "grant_id": grant["GrantId"]})
    assert answer.status == 303 and not kms.list_grants(KeyId=key_id)["Grants"]
    second = kms.create_grant(KeyId=key_id, GranteePrincipal=root, Operations=["Encrypt"])
    answer = browser.post(f"/console/keys/{key_id}/revoke-grant",
                          {"csrf": token, "grant_id": second["GrantId"]})
    assert answer.status == 303 and not kms.list_grants(KeyId=key_id)["Grants"]
    assert "The grant was revoked." in browser.get(answer.headers["location"]).body


def test_grant_errors_are_aws_words_and_keep_the_form(
    console: ConsoleServer, browser: Browserless
) -> None:
    kms = client(console.server, "kms")
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    token = browser.csrf(f"/console/keys/{key_id}")
    root = f"arn:aws:iam::{_account(console)}:root"
    path = f"/console/keys/{key_id}/create-grant"
    # No operation ticked: AWS's validation error, the form still filled in and open.
    answer = browser.post(path, {"csrf": token, "grantee": root, "name": "kept-name"})
    assert answer.status == 400
    assert re.search(r'id="error">ValidationException: ', answer.body), answer.body[:2000]
    assert 'value="kept-name"' in answer.body and '<details class="form" id="new-grant" open' \
        in answer.body
    # No grantee, then one with characters no principal has.
    answer = browser.post(path, {"csrf": token, "grantee": "", "op-Encrypt": "on"})
    assert answer.status == 400 and re.search(r'id="error">\w+Exception: ', answer.body)
    answer = browser.post(path, {"csrf": token, "grantee": "no body!", "op-Encrypt": "on"})
    assert answer.status == 400 and re.search(r'id="error">\w+Exception: ', answer.body)
    # A constraint the console cannot read is refused before any call.
    answer = browser.post(path, {"csrf": token, "grantee": root, "op-Encrypt": "on",
                                 "constraint": "EncryptionContextEquals", "context": "no pair"})
    assert answer.status == 400 and "is not key=value" in answer.body
    answer = browser.post(path, {"csrf": token, "grantee": root, "op-Encrypt": "on",
                                 "constraint": "EncryptionContextEquals", "context": ""})
    assert answer.status == 400 and "needs at least one key=value pair" in answer.body
    # Sign operations on a symmetric key: AWS's error.
    answer = browser.post(path, {"csrf": token, "grantee": root, "op-Sign": "on"})
    assert answer.status == 400 and re.search(r'id="error">\w+Exception: ', answer.body)
    # Retiring or revoking a grant that does not exist.
    for action in ("retire-grant", "revoke-grant"):
        answer = browser.post(f"/console/keys/{key_id}/{action}",
                              {"csrf": token, "grant_id": "0" * 64})
        assert answer.status == 400 and re.search(r'id="error">\w+Exception: ', answer.body)
    assert not kms.list_grants(KeyId=key_id)["Grants"]
    # Without the CSRF token nothing is created.
    answer = browser.post(path, {"grantee": root, "op-Encrypt": "on"})
    assert answer.status == 403 and not kms.list_grants(KeyId=key_id)["Grants"]


# -- imported key material ------------------------------------------------------------------------
def _parameters(browser: Browserless, key_id: str, token: str,
                algorithm: str = "RSAES_OAEP_SHA_256") -> tuple[bytes, bytes]:
    answer = browser.post(f"/console/keys/{key_id}/import-parameters",
                          {"csrf": token, "algorithm": algorithm, "spec": "RSA_2048"})
    assert answer.status == 200, answer.body[:2000]
    assert answer.headers["content-type"] == "application/zip"
    assert "attachment" in answer.headers["content-disposition"]
    with zipfile.ZipFile(io.BytesIO(answer.raw)) as archive:
        assert sorted(archive.namelist()) == ["ImportToken.bin", "README.txt",
                                              "WrappingPublicKey.bin"]
        assert algorithm in archive.read("README.txt").decode()
        return archive.read("WrappingPublicKey.bin"), archive.read("ImportToken.bin")


def _wrap(public_der: bytes, material: bytes) -> bytes:
    public = serialization.load_der_public_key(public_der)
    assert isinstance(public, rsa.RSAPublicKey)
    return public.encrypt(material, padding.OAEP(padding.MGF1(hashes.SHA256()),
                                                 hashes.SHA256(), None))


def _external_key(console: ConsoleServer) -> str:
    kms = client(console.server, "kms")
    return str(kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"])


FOREVER = {"expiration_model": "KEY_MATERIAL_DOES_NOT_EXPIRE"}


def _bin(data: bytes) -> tuple[str, bytes, str]:
    return ("file.bin", data, "application/octet-stream")


def test_import_key_material_flow(console: ConsoleServer, browser: Browserless) -> None:
    kms = client(console.server, "kms")
    key_id = _external_key(console)
    page = browser.get(f"/console/keys/{key_id}")
    assert f'href="/console/keys/{key_id}/import"' in page.body
    page = browser.get(f"/console/keys/{key_id}/import")
    assert page.status == 200 and 'enctype="multipart/form-data"' in page.body
    token = browser.csrf(f"/console/keys/{key_id}/import")
    public, import_token = _parameters(browser, key_id, token)
    material = b"\x07" * 32
    valid_to = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 40 * 86400))
    answer = browser.upload(f"/console/keys/{key_id}/import", {
        "csrf": token, "expiration_model": "KEY_MATERIAL_EXPIRES", "valid_to": valid_to,
        "material_description": "from the console",
    }, {"material": _bin(_wrap(public, material)), "token": _bin(import_token)})
    assert answer.status == 303, answer.body[:2000]
    assert answer.headers["location"] == f"/console/keys/{key_id}?done=import"
    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert meta["KeyState"] == "Enabled" and meta["ExpirationModel"] == "KEY_MATERIAL_EXPIRES"
    assert time.strftime("%Y-%m-%d", time.gmtime(meta["ValidTo"].timestamp())) == valid_to
    page = browser.get(answer.headers["location"])
    assert "The key material was imported." in page.body and "expires " + valid_to in page.body
    # The token was used up: the same upload again is refused in AWS's words.
    answer = browser.upload(f"/console/keys/{key_id}/import", {"csrf": token, **FOREVER}, {
        "material": _bin(_wrap(public, material)), "token": _bin(import_token)})
    assert answer.status == 400
    assert re.search(r'id="error">InvalidImportTokenException: ', answer.body), answer.body[:2000]
    # Delete the material from the import page's button, then import it again without expiry.
    answer = browser.post(f"/console/keys/{key_id}/delete-material", {"csrf": token})
    assert answer.status == 303
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingImport"
    public, import_token = _parameters(browser, key_id, token, "RSAES_OAEP_SHA_1")
    wrapped = serialization.load_der_public_key(public).encrypt(  # type: ignore[union-attr]
        material, padding.OAEP(padding.MGF1(hashes.SHA1()), hashes.SHA1(), None))
    answer = browser.upload(f"/console/keys/{key_id}/import", {
        "csrf": token, "expiration_model": "KEY_MATERIAL_DOES_NOT_EXPIRE"},
        {"material": _bin(wrapped), "token": _bin(import_token)})
    assert answer.status == 303, answer.body[:2000]
    meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert meta["KeyState"] == "Enabled"
    assert meta["ExpirationModel"] == "KEY_MATERIAL_DOES_NOT_EXPIRE"
    assert "does not expire" in browser.get(f"/console/keys/{key_id}").body


def test_import_errors_are_aws_words(console: ConsoleServer, browser: Browserless) -> None:
    key_id = _external_key(console)
    path = f"/console/keys/{key_id}/import"
    token = browser.csrf(path)
    answer = browser.post(f"/console/keys/{key_id}/import-parameters",
                          {"csrf": token, "algorithm": "NOPE", "spec": "RSA_2048"})
    assert answer.status == 400
    assert re.search(r'id="error">ValidationException: ', answer.body), answer.body[:2000]
    public, import_token = _parameters(browser, key_id, token)
    good = {"material": _bin(_wrap(public, b"\x01" * 32)), "token": _bin(import_token)}
    cases: list[tuple[dict[str, str], dict[str, tuple[str, bytes, str]], str]] = [
        # Material and token swapped, each claiming to be the other.
        ({}, {"material": _bin(import_token), "token": good["material"]},
         r"InvalidImportTokenException"),
        # Material that does not unwrap.
        ({}, {"material": _bin(b"\x00" * 256), "token": _bin(import_token)},
         r"InvalidCiphertextException"),
        # Material of the wrong length (16 bytes for a symmetric key).
        ({}, {"material": _bin(_wrap(public, b"\x01" * 16)), "token": _bin(import_token)},
         r"IncorrectKeyMaterialException"),
        # Beyond AWS's limit for EncryptedKeyMaterial (6,144 bytes), within the console's.
        ({}, {"material": _bin(b"\x00" * 7000), "token": _bin(import_token)},
         r"ValidationException"),
        # An expiring material without a date: AWS's validation error.
        ({"expiration_model": "KEY_MATERIAL_EXPIRES"}, good, r"ValidationException"),
        # A date in the past.
        ({"expiration_model": "KEY_MATERIAL_EXPIRES", "valid_to": "2001-01-01"}, good,
         r"ValidationException"),
    ]
    for fields, files, code in cases:
        answer = browser.upload(path, {"csrf": token, **FOREVER, **fields}, files)
        assert answer.status == 400, (code, answer.body[:2000])
        assert re.search(rf'id="error">{code}: ', answer.body), (code, answer.body[:2000])
    # What the console itself cannot read: no file, a date that is not a date.
    answer = browser.upload(path, {"csrf": token, **FOREVER}, {"token": _bin(import_token)})
    assert answer.status == 400 and "Choose both files" in answer.body
    answer = browser.upload(path, {"csrf": token, "expiration_model": "KEY_MATERIAL_EXPIRES",
                                   "valid_to": "tomorrow"}, good)
    assert answer.status == 400 and "is not a date" in answer.body
    # The token was not used up by the failures: the good upload still works.
    answer = browser.upload(path, {"csrf": token, **FOREVER}, good)
    assert answer.status == 303, answer.body[:2000]
    # Not an EXTERNAL key: the page says so and offers no form.
    other = client(console.server, "kms").create_key()["KeyMetadata"]["KeyId"]
    page = browser.get(f"/console/keys/{other}/import")
    assert page.status == 200 and 'id="not-external"' in page.body
    assert 'id="import-form"' not in page.body


# -- IAM roles and inline policies ----------------------------------------------------------------
def test_create_a_role_and_put_an_inline_policy(
    console: ConsoleServer, browser: Browserless
) -> None:
    iam = client(console.server, "iam")
    account = _account(console)
    token = browser.csrf("/console/iam")
    page = browser.get("/console/iam")
    assert f"arn:aws:iam::{account}:root" in page.body  # the default trust policy
    trust = ('{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": '
             f'{{"AWS": "arn:aws:iam::{account}:root"}}, "Action": "sts:AssumeRole"}}]}}')
    answer = browser.post("/console/iam/create-role",
                          {"csrf": token, "name": "console-role", "trust_policy": trust})
    assert answer.status == 303 and answer.headers["location"] == "/console/iam?done=role-created"
    assert iam.get_role(RoleName="console-role")["Role"]["RoleName"] == "console-role"
    # A malformed trust policy: IAM's error, the form kept.
    answer = browser.post("/console/iam/create-role",
                          {"csrf": token, "name": "broken-role", "trust_policy": "{"})
    assert answer.status == 400
    assert re.search(r'id="error">MalformedPolicyDocument', answer.body), answer.body[:2000]
    assert 'value="broken-role"' in answer.body
    iam.create_user(UserName="inline-user")
    document = ('{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
                '"Action": "kms:DescribeKey", "Resource": "*"}]}')
    answer = browser.post("/console/iam/put-user-policy", {
        "csrf": token, "name": "inline-user", "policy_name": "read", "policy_document": document})
    assert answer.status == 303, answer.body[:2000]
    assert iam.list_user_policies(UserName="inline-user")["PolicyNames"] == ["read"]
    answer = browser.post("/console/iam/put-user-policy", {
        "csrf": token, "name": "inline-user", "policy_name": "bad", "policy_document": "[]"})
    assert answer.status == 400 and re.search(r'id="error">\w+: ', answer.body)
    assert 'id="inline-document" spellcheck="false">[]</textarea>' in answer.body


# -- custom key stores ----------------------------------------------------------------------------
@pytest.fixture
def xks_console(tmp_path: Path) -> Iterator[tuple[ConsoleServer, XksProxy]]:
    """A development server that trusts a test XKS proxy's CA (its own process: the setting is
    read at start-up), and the proxy, on 127.x.y.z:443 as AWS's endpoints have no port."""
    if sys.platform != "linux" or os.geteuid() != 0:
        unavailable("custom-key-store", "binding 127.x.y.z:443 needs root on Linux")
    proxy = XksProxy.start(tmp_path / "certs")
    proxy.add_key("console-ext-key")
    config = tmp_path / "openkms.toml"
    config.write_text(f'xks_proxy_ca_file = "{proxy.ca_file}"\n')
    try:
        cs = start_dev_server(tmp_path / "data", "--config", str(config))
    except BaseException:
        proxy.stop()
        raise
    try:
        yield cs, proxy
    finally:
        cs.process.stop()
        proxy.stop()


def test_custom_key_stores_create_connect_use_delete(
    xks_console: tuple[ConsoleServer, XksProxy]
) -> None:
    console, proxy = xks_console
    browser = Browserless(console.server.endpoint)
    assert browser.sign_in(console.server.access_key_id,
                           console.server.secret_access_key).status == 303
    kms = client(console.server, "kms")
    token = browser.csrf("/console/keystores")
    secret = proxy.credential["RawSecretAccessKey"]
    xks = {"csrf": token, "name": "console-xks", "type": "EXTERNAL_KEY_STORE",
           "xks_endpoint": proxy.endpoint, "xks_path": URI_PATH,
           "xks_connectivity": "PUBLIC_ENDPOINT", "xks_access_key_id": proxy.access_key_id,
           "xks_secret": secret}
    answer = browser.post("/console/keystores/create", xks)
    assert answer.status == 303, answer.body[:2000]
    (store,) = kms.describe_custom_key_stores()["CustomKeyStores"]
    store_id = store["CustomKeyStoreId"]
    page = browser.get("/console/keystores")
    assert store_id in page.body and "DISCONNECTED" in page.body and secret not in page.body
    # The same name again: AWS's error, the form kept but never its secret.
    answer = browser.post("/console/keystores/create", xks)
    assert answer.status == 400
    assert re.search(r'id="error">CustomKeyStoreNameInUseException: ', answer.body)
    assert f'value="{proxy.endpoint}"' in answer.body and secret not in answer.body
    # A CloudHSM store for a cluster the server does not have: AWS's error, no password shown.
    answer = browser.post("/console/keystores/create", {
        "csrf": token, "name": "console-hsm", "type": "AWS_CLOUDHSM",
        "cluster_id": "cluster-1234567890a", "trust_anchor": "x", "kmsuser_password": "pw-123456"})
    assert answer.status == 400 and re.search(r'id="error">\w+Exception: ', answer.body)
    assert "pw-123456" not in answer.body
    # Connect, create a key in the store through the create-key form, use it.
    answer = browser.post("/console/keystores/connect", {"csrf": token, "store_id": store_id})
    assert answer.status == 303, answer.body[:2000]
    assert "CONNECTED" in browser.get("/console/keystores").body
    assert store_id in browser.get("/console/keys/new").body
    answer = browser.post("/console/keys/new", {
        "csrf": token, "origin": "EXTERNAL_KEY_STORE", "custom_key_store_id": store_id,
        "xks_key_id": "console-ext-key", "spec_usage": "SYMMETRIC_DEFAULT:ENCRYPT_DECRYPT"})
    key_id = _key_id(answer.headers["location"])
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"via the console's store")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"via the console's store"
    page = browser.get(f"/console/keys/{key_id}")
    assert store_id in page.body and "EXTERNAL_KEY_STORE" in page.body
    # A store with keys cannot be deleted (once disconnected): AWS's error.
    answer = browser.post("/console/keystores/disconnect", {"csrf": token, "store_id": store_id})
    assert answer.status == 303, answer.body[:2000]
    answer = browser.post("/console/keystores/delete", {"csrf": token, "store_id": store_id})
    assert answer.status == 400
    assert re.search(r'id="error">CustomKeyStoreHasCMKsException: ', answer.body)
    # An unknown store.
    answer = browser.post("/console/keystores/delete",
                          {"csrf": token, "store_id": "cks-0123456789abcdef0"})
    assert answer.status == 400
    assert re.search(r'id="error">CustomKeyStoreNotFoundException: ', answer.body)
