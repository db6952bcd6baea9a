"""End to end through boto3 against real ``openkms serve`` processes whose root key lives in
SoftHSM2: keys survive restarts, the database holds no unwrapped secret, a root-key rotation
file -> HSM runs while the server keeps serving, and a server on the wrong root is refused."""

from __future__ import annotations

import base64
import os
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import load_der_public_key

from openkms.rootoftrust.file import load_root_key_file
from openkms.rootoftrust.rotate import parse_dual, scan
from openkms.storage.sqlite import SqliteStorage
from tests.conftest import (
    STARTUP_TIMEOUT_SECONDS,
    child_env,
    free_port,
    make_client,
    openkms_command,
    server_from_account,
)
from tests.contract.softhsm import SoftHsm, Token, new_key_label, softhsm_for_process
from tests.unit.test_secrets_at_rest import encodings

pytestmark = pytest.mark.slow


# --- servers with an environment of their own ----------------------------------------------------
@dataclass
class EnvServer:
    """``openkms serve`` on ``data_dir`` with ``env`` added to the clean child environment."""

    data_dir: Path
    env: dict[str, str]
    port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _spawn(self) -> int:
        self.port = free_port()
        log = self.data_dir / "server.stderr.log"
        offset = log.stat().st_size if log.exists() else 0
        with open(log, "ab") as err, open(self.data_dir / "server.stdout.log", "ab") as out:
            self.process = subprocess.Popen(
                openkms_command(
                    "serve", "--data-dir", str(self.data_dir), "--port", str(self.port)
                ),
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env=child_env(self.env),
            )
        return offset

    def _stderr_since(self, offset: int) -> str:
        return (
            (self.data_dir / "server.stderr.log").read_bytes()[offset:].decode("utf-8", "replace")
        )

    def start(self) -> EnvServer:
        offset = self._spawn()
        assert self.process is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while True:
            code = self.process.poll()
            if code is not None:
                raise RuntimeError(
                    f"openkms serve exited with {code}:\n{self._stderr_since(offset)}"
                )
            try:
                with urllib.request.urlopen(f"{self.endpoint}/healthz", timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"not healthy in time:\n{self._stderr_since(offset)}")
            time.sleep(0.05)

    def start_refused(self) -> tuple[int, str]:
        """Starts it expecting a refusal: (exit code, stderr)."""
        offset = self._spawn()
        assert self.process is not None
        try:
            code = self.process.wait(timeout=STARTUP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(
                "the server started although it should have been refused"
            ) from None
        self.process = None
        return code, self._stderr_since(offset)

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        openkms_command(*args),
        capture_output=True,
        text=True,
        env=child_env(env),
        timeout=120,
        check=False,
    )


def create_account(data_dir: Path, env: dict[str, str]) -> dict[str, str]:
    import json

    proc = run_cli(env, "accounts", "create", "--data-dir", str(data_dir))
    assert proc.returncode == 0, proc.stderr
    account: dict[str, str] = json.loads(proc.stdout)
    return account


@pytest.fixture
def started() -> Iterator[list[EnvServer]]:
    servers: list[EnvServer] = []
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()


@dataclass
class Hsm:
    softhsm: SoftHsm
    token: Token
    pin_file: Path

    def env(self, key_label: str, *, create: bool = False) -> dict[str, str]:
        env = {
            **self.softhsm.env(),
            "OPENKMS_ROOT_OF_TRUST": "pkcs11",
            "OPENKMS_PKCS11_MODULE": self.softhsm.module,
            "OPENKMS_PKCS11_TOKEN_LABEL": self.token.label,
            "OPENKMS_PKCS11_KEY_LABEL": key_label,
            "OPENKMS_PKCS11_PIN_FILE": str(self.pin_file),
        }
        if create:
            env["OPENKMS_PKCS11_CREATE_KEY"] = "1"
        return env


@pytest.fixture
def hsm(tmp_path: Path) -> Hsm:
    softhsm = softhsm_for_process()
    token = softhsm.init_token()
    pin_file = tmp_path / "pin"
    pin_file.write_text(token.pin + "\n")
    pin_file.chmod(0o600)
    return Hsm(softhsm, token, pin_file)


# --- helpers ------------------------------------------------------------------------------------
def client(server: Any) -> BaseClient:
    """boto3 with the SDK's standard retries: the server enforces AWS's request quotas
    (GetParametersForImport is one per second)."""
    return make_client(server, retries={"max_attempts": 8, "mode": "standard"})


def import_material(kms: BaseClient, key_id: str, material: bytes) -> None:
    params = kms.get_parameters_for_import(
        KeyId=key_id, WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048"
    )
    wrapped = wrap_for_import(params["PublicKey"], material)
    kms.import_key_material(
        KeyId=key_id,
        ImportToken=params["ImportToken"],
        EncryptedKeyMaterial=wrapped,
        ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
    )


def wrap_for_import(public_key: bytes, material: bytes) -> bytes:
    public = load_der_public_key(public_key)
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    return public.encrypt(material, oaep)  # type: ignore[union-attr]


def wrapped_blobs(data_dir: Path) -> dict[str, bytes]:
    storage = SqliteStorage(data_dir / "openkms.db")
    try:
        return dict(storage.iter_wrapped_secrets())
    finally:
        storage.close()


def database_files(data_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in data_dir.glob("openkms.db*") if p.is_file()}


def leaks(secrets: dict[str, bytes], files: dict[str, bytes]) -> list[str]:
    found = []
    for name, secret in secrets.items():
        for form, needle in encodings(secret).items():
            found += [
                f"{name} ({form}) in {where}" for where, data in files.items() if needle in data
            ]
    return found


# --- the tests ------------------------------------------------------------------------------------
def test_keys_live_in_the_hsm_across_restarts(
    hsm: Hsm, tmp_path: Path, started: list[EnvServer]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    label = new_key_label()
    account = create_account(data, hsm.env(label, create=True))
    server = EnvServer(data, hsm.env(label))
    started.append(server)
    server.start()
    kms = client(server_from_account(server.endpoint, data, account))

    key_id = kms.create_key(Description="in the HSM")["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"hello hsm")["CiphertextBlob"]
    data_key = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")
    material = os.urandom(32)
    external = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    import_material(kms, external, material)
    imported_blob = kms.encrypt(KeyId=external, Plaintext=b"byok")["CiphertextBlob"]
    with urllib.request.urlopen(f"{server.endpoint}/readyz", timeout=5) as resp:
        assert resp.status == 200

    server.stop()
    server.start()
    kms = client(server_from_account(server.endpoint, data, account))
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"hello hsm"
    assert (
        kms.decrypt(CiphertextBlob=data_key["CiphertextBlob"])["Plaintext"]
        == (data_key["Plaintext"])
    )
    assert kms.decrypt(CiphertextBlob=imported_blob)["Plaintext"] == b"byok"

    # The HSM goes away: what needs it answers 503 (retryable); when it is back, all works.
    once = make_client(server_from_account(server.endpoint, data, account))
    with hsm.softhsm.token_away(hsm.token):
        with pytest.raises(ClientError) as caught:
            once.create_key(Description="while the HSM is away")
        assert caught.value.response["Error"]["Code"] == "ServiceUnavailableException"
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        # Material already unwrapped stays usable from the cache.
        assert once.decrypt(CiphertextBlob=blob)["Plaintext"] == b"hello hsm"
    time.sleep(1.1)  # the root tries the token again at most once a second
    later = kms.create_key(Description="HSM back")["KeyMetadata"]["KeyId"]
    assert kms.decrypt(CiphertextBlob=kms.encrypt(KeyId=later, Plaintext=b"k")["CiphertextBlob"])
    server.stop()

    # Every secret in the database is a PKCS#11 blob; none is there in clear.
    blobs = wrapped_blobs(data)
    assert blobs and all(b[:1] == b"\x02" for b in blobs.values())
    secrets = {
        "imported material": material,
        "secret access key": account["SecretAccessKey"].encode(),
        "secret access key bytes": base64.b64decode(account["SecretAccessKey"]),
        "data key": data_key["Plaintext"],
    }
    assert leaks(secrets, database_files(data)) == []
    assert not (data / "root.key").exists()

    # The wrong root key is refused: a file root, or another key of the same token.
    code, stderr = EnvServer(data, {}).start_refused()
    assert code != 0 and "does not match" in stderr
    code, stderr = EnvServer(data, hsm.env(new_key_label(), create=True)).start_refused()
    assert code != 0 and "does not match" in stderr
    # A PIN the token refuses stops the start with a message that does not show any PIN.
    bad_pin = tmp_path / "bad-pin"
    bad_pin.write_text("999999\n")
    env = {**hsm.env(label), "OPENKMS_PKCS11_PIN_FILE": str(bad_pin)}
    code, stderr = EnvServer(data, env).start_refused()
    assert code != 0 and "refused the PIN" in stderr
    assert hsm.token.pin not in stderr and "999999" not in stderr


def test_rotation_from_file_to_hsm_while_serving(
    hsm: Hsm, tmp_path: Path, started: list[EnvServer]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    account = create_account(data, {})
    old = EnvServer(data, {})
    started.append(old)
    old.start()
    view = server_from_account(old.endpoint, data, account)
    kms = client(view)
    key_ids = [kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(3)]
    ciphertexts = {
        f"p{i}".encode(): kms.encrypt(KeyId=k, Plaintext=f"p{i}".encode())["CiphertextBlob"]
        for i, k in enumerate(key_ids)
    }
    material = os.urandom(32)
    external = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    import_material(kms, external, material)
    ciphertexts[b"byok"] = kms.encrypt(KeyId=external, Plaintext=b"byok")["CiphertextBlob"]
    # An import token issued before the rotation, used after it.
    pending = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    params = kms.get_parameters_for_import(
        KeyId=pending, WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048"
    )

    # Traffic against the old server all through pass 1.
    stop = threading.Event()
    failures: list[str] = []
    calls = [0]

    def traffic() -> None:
        traffic_client = client(view)
        while not stop.is_set():
            try:
                for plaintext, blob in ciphertexts.items():
                    assert traffic_client.decrypt(CiphertextBlob=blob)["Plaintext"] == plaintext
                traffic_client.encrypt(KeyId=key_ids[0], Plaintext=b"during")
                calls[0] += 1
            except Exception as exc:
                failures.append(repr(exc))
                return

    worker = threading.Thread(target=traffic)
    worker.start()
    time.sleep(0.3)
    label = new_key_label()
    rotate_env = {**hsm.softhsm.env(), "OPENKMS_PKCS11_PIN": hsm.token.pin}
    proc = run_cli(
        rotate_env,
        "rootkey", "rotate", "--data-dir", str(data), "--to-pkcs11",
        "--pkcs11-module", hsm.softhsm.module,
        "--pkcs11-token-label", hsm.token.label,
        "--pkcs11-key-label", label,
        "--create-key", "--batch-size", "2",
    )  # fmt: skip
    time.sleep(0.3)
    stop.set()
    worker.join(timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert '"Phase": "restart"' in proc.stdout and "--finish" in proc.stderr
    assert failures == [] and calls[0] > 0
    assert hsm.token.pin not in proc.stdout + proc.stderr
    # Every secret is a dual blob; the old server still serves, and writes a straggler.
    assert all(parse_dual(b) is not None for b in wrapped_blobs(data).values())
    for plaintext, blob in ciphertexts.items():
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == plaintext
    late = kms.create_key()["KeyMetadata"]["KeyId"]
    ciphertexts[b"late"] = kms.encrypt(KeyId=late, Plaintext=b"late")["CiphertextBlob"]
    old.stop()

    # The old root can no longer start this database.
    code, stderr = EnvServer(data, {}).start_refused()
    assert code != 0 and "does not match" in stderr

    # The server on the HSM reads everything, the straggler through the previous root.
    new = EnvServer(data, hsm.env(label))
    started.append(new)
    new.start()
    kms = client(server_from_account(new.endpoint, data, account))
    for plaintext, blob in ciphertexts.items():
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == plaintext

    proc = run_cli(rotate_env, "rootkey", "rotate", "--data-dir", str(data), "--finish")
    assert proc.returncode == 0, proc.stderr
    assert '"Phase": "done"' in proc.stdout and '"Unreadable": 0' in proc.stdout
    kms.import_key_material(
        KeyId=pending,
        ImportToken=params["ImportToken"],
        EncryptedKeyMaterial=wrap_for_import(params["PublicKey"], os.urandom(32)),
        ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
    )
    new.stop()

    # Nothing is the old root's any more: it can be destroyed.
    blobs = wrapped_blobs(data)
    assert blobs and all(b[:1] == b"\x02" for b in blobs.values())
    storage = SqliteStorage(data / "openkms.db")
    try:
        counts = scan(storage, load_root_key_file(data / "root.key"))
    finally:
        storage.close()
    assert counts["secrets"] > 0 and counts["unreadable"] == counts["secrets"]
    (data / "root.key").rename(data / "root.key.destroyed")
    new.start()
    kms = client(server_from_account(new.endpoint, data, account))
    for plaintext, blob in ciphertexts.items():
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == plaintext
    new.stop()
    assert leaks({"imported material": material}, database_files(data)) == []


def _status(data: Path, env: dict[str, str]) -> dict[str, Any]:
    import json

    proc = run_cli(env, "rootkey", "status", "--data-dir", str(data), "--scan")
    assert proc.returncode == 0, proc.stderr
    status: dict[str, Any] = json.loads(proc.stdout)
    return status


def test_status_of_an_hsm_database(hsm: Hsm, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    label = new_key_label()
    create_account(data, hsm.env(label, create=True))
    status = _status(data, hsm.env(label))
    assert status["CheckValue"].startswith("pkcs11:")
    facts = status["ConfiguredRoot"]
    assert facts["sensitive"] and not facts["extractable"] and facts["never_extractable"]
    assert facts["check_value"] == status["CheckValue"]
    assert status["Scan"] == {"secrets": 1, "dual": 0, "unreadable": 0}


def test_a_sealed_server_answers_503(tmp_path: Path) -> None:
    """The real app on a sealed root (started through uvicorn with ``sealed`` in its settings,
    as ``openkms serve --sealed`` will): every API request answers 503 until unsealed."""
    import json
    import sys

    from openkms.config import Settings

    data = tmp_path / "data"
    data.mkdir()
    account = create_account(data, {})
    proc = run_cli(
        {}, "rootkey", "split", "--data-dir", str(data), "-k", "2", "-n", "3", "--delete-key-file"
    )
    assert proc.returncode == 0 and not (data / "root.key").exists()
    port = free_port()
    settings = Settings(data_dir=str(data), port=port, sealed=True).validate()
    env = child_env({"OPENKMS_SETTINGS_JSON": settings.to_json()})
    command = [sys.executable, "-m", "uvicorn", "--factory", "openkms.http.app:app_from_env"]
    log = data / "uvicorn.stderr.log"
    with open(log, "wb") as err:
        server = subprocess.Popen(
            [*command, "--port", str(port), "--log-level", "warning"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        endpoint = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while True:
            assert server.poll() is None, log.read_text()
            try:
                with urllib.request.urlopen(f"{endpoint}/healthz", timeout=2):
                    break
            except (urllib.error.URLError, OSError):
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
        kms = make_client(server_from_account(endpoint, data, account))
        for call in (kms.list_keys, lambda: kms.create_key(Description="sealed")):
            with pytest.raises(ClientError) as caught:
                call()
            error = caught.value.response
            assert error["Error"]["Code"] == "ServiceUnavailableException"
            assert error["ResponseMetadata"]["HTTPStatusCode"] == 503
            assert "sealed" in json.dumps(error["Error"]).lower()
    finally:
        server.terminate()
        server.wait(timeout=15)
