"""Interoperability with the AWS Encryption SDK, against a real openkms server.

``aws-encryption-sdk-cli`` and the ``aws-encryption-sdk`` Python library are development
dependencies (pyproject's ``dev`` extra), used from this environment. Where they are not
installed, they get a virtual environment of their own, created once under
``~/.cache/openkms-tests`` (``$XDG_CACHE_HOME`` if set), keyed by the Python version and the
pinned versions, and reused by later runs (and by ``benchmarks/envelope_bench.py``). Without
network access to PyPI the interop tests are then skipped with that reason; the openkms-only
tests here still run.

Proven here: files from ``aws-encryption-cli`` (signed and unsigned committing suites, and the
version 1 suites 0x0378 and 0x0178) decrypt with ``openkms decrypt``; files from ``openkms
encrypt`` decrypt with ``aws-encryption-cli``; messages from the SDK's Python library decrypt
with ``openkms.envelope`` and the other way round; always with two wrapping keys, decrypting
with only the second one. And at every frame boundary (plaintexts of 0, 1, frame - 1, frame,
frame + 1 and 2 x frame bytes), both ways, through both CLIs and both libraries, for each suite
openkms writes: the SDK requires a final frame shorter than the frame length.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from botocore.client import BaseClient

from openkms.envelope import EnvelopeClient
from tests.components import unavailable
from tests.conftest import Server, child_env, make_client, openkms_command

REPO = Path(__file__).resolve().parents[2]
# The SDK's own lock: versions and hashes (requirements/esdk.in says why it is separate).
ESDK_LOCK = REPO / "requirements" / "esdk.txt"
NETWORK_HINTS = (
    "Could not find a version",
    "No matching distribution",
    "NewConnectionError",
    "Connection refused",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "Max retries exceeded",
    "ConnectTimeout",
)

ESDK_LIBRARY_SCRIPT = r"""
import json, sys
import aws_encryption_sdk
from aws_encryption_sdk import CommitmentPolicy
from aws_encryption_sdk.identifiers import Algorithm

for job in json.loads(sys.argv[1]):
    provider = aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(key_ids=job["keys"])
    client = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy[job.get("policy", "REQUIRE_ENCRYPT_ALLOW_DECRYPT")]
    )
    data = open(job["in"], "rb").read()
    if job["op"] == "encrypt":
        out, _ = client.encrypt(
            source=data, key_provider=provider, algorithm=Algorithm[job["algorithm"]],
            encryption_context=job["context"], frame_length=job["frame_length"],
        )
    else:
        out, header = client.decrypt(source=data, key_provider=provider)
        context = dict(header.encryption_context)
        assert all(context.get(k) == v for k, v in job["context"].items()), context
    open(job["out"], "wb").write(out)
print("ok")
"""


# --- the SDK's virtual environment -------------------------------------------------------------
def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "openkms-tests"


def _esdk_venv() -> Path:
    """Creates (once, under a lock shared by xdist workers) or reuses the SDK's venv."""
    cache = _cache_dir()
    tag = hashlib.sha256(
        json.dumps([sys.version_info[:2], ESDK_LOCK.read_text()]).encode()
    ).hexdigest()[:12]
    venv = cache / f"esdk-venv-{tag}"
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / f"esdk-venv-{tag}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (venv / ".complete").exists():
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
        # uv (from the project's own lock, beside this interpreter) when there, else pip.
        uv = Path(sys.executable).parent / "uv"
        install = (
            [str(uv), "pip", "sync", "-q", "--python", str(venv / "bin" / "python")]
            if uv.exists()
            else [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", "-r"]
        )
        proc = subprocess.run(
            [*install, "--require-hashes", str(ESDK_LOCK)],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if proc.returncode != 0:
            output = proc.stdout + proc.stderr
            shutil.rmtree(venv, ignore_errors=True)
            if any(hint in output for hint in NETWORK_HINTS):
                reason = (
                    f"the AWS Encryption SDK ({ESDK_LOCK.name}) cannot be installed from "
                    f"PyPI here (no network?): {output.strip().splitlines()[-1]}"
                )
                unavailable("aws-encryption-sdk", reason)
            raise RuntimeError(f"installing {ESDK_LOCK} failed:\n{output}")
        (venv / ".complete").write_text("ok\n")
        return venv


@pytest.fixture(scope="module")
def esdk() -> Path:
    """The bin directory holding ``aws-encryption-cli`` and a ``python`` with the SDK."""
    return _esdk_venv() / "bin"


# --- helpers ---------------------------------------------------------------------------------
def _aws_env(server: Server) -> dict[str, str]:
    nowhere = str(server.data_dir / "no-such-aws-config")
    return child_env(
        {
            "AWS_ACCESS_KEY_ID": server.access_key_id,
            "AWS_SECRET_ACCESS_KEY": server.secret_access_key,
            "AWS_DEFAULT_REGION": server.region,
            "AWS_ENDPOINT_URL_KMS": server.endpoint,
            "AWS_CONFIG_FILE": nowhere,
            "AWS_SHARED_CREDENTIALS_FILE": nowhere,
            "AWS_MAX_ATTEMPTS": "1",
        }
    )


def _run(argv: list[str], server: Server, *, input_: bytes | None = None) -> Any:
    return subprocess.run(
        argv, env=_aws_env(server), input=input_, capture_output=True, timeout=120, check=False
    )


def openkms(server: Server, *args: str, input_: bytes | None = None) -> Any:
    return _run(openkms_command(*args), server, input_=input_)


def esdk_cli(esdk: Path, server: Server, *args: str) -> Any:
    proc = _run([str(esdk / "aws-encryption-cli"), "-S", *args], server)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc


@pytest.fixture(scope="module")
def keys(kms: BaseClient) -> tuple[str, str]:
    first = kms.create_key(Description="envelope interop 1")["KeyMetadata"]["Arn"]
    second = kms.create_key(Description="envelope interop 2")["KeyMetadata"]["Arn"]
    return first, second


@pytest.fixture(scope="module")
def plaintext() -> bytes:
    return os.urandom(3 * 4096 + 1234)


# --- aws-encryption-cli -> openkms decrypt -----------------------------------------------------
ESDK_SUITES = [
    ("AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384", "require-encrypt-require-decrypt"),
    ("AES_256_GCM_HKDF_SHA512_COMMIT_KEY", "require-encrypt-require-decrypt"),
    ("AES_256_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384", "forbid-encrypt-allow-decrypt"),
    ("AES_256_GCM_IV12_TAG16_HKDF_SHA256", "forbid-encrypt-allow-decrypt"),
]


@pytest.mark.parametrize(("algorithm", "policy"), ESDK_SUITES)
def test_esdk_cli_files_decrypt_with_openkms(
    esdk: Path,
    server: Server,
    keys: tuple[str, str],
    plaintext: bytes,
    tmp_path: Path,
    algorithm: str,
    policy: str,
) -> None:
    source = tmp_path / "plain.bin"
    source.write_bytes(plaintext)
    encrypted = tmp_path / "by-esdk.bin"
    esdk_cli(
        esdk, server, "-e", "-i", str(source), "-o", str(encrypted),
        "-w", f"key={keys[0]}", f"key={keys[1]}",
        "-c", "purpose=interop", "team=kms",
        "--algorithm", algorithm, "--commitment-policy", policy,
    )  # fmt: skip
    decrypted = tmp_path / "out.bin"
    proc = openkms(
        server, "decrypt", "--key", keys[1], "--require-context", "purpose=interop",
        "--require-context", "team", "-o", str(decrypted), str(encrypted),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()
    assert decrypted.read_bytes() == plaintext


# --- openkms encrypt -> aws-encryption-cli -----------------------------------------------------
@pytest.mark.parametrize("flags", [[], ["--unsigned"], ["--frame-length", "4096"]])
def test_openkms_files_decrypt_with_esdk_cli(
    esdk: Path,
    server: Server,
    keys: tuple[str, str],
    plaintext: bytes,
    tmp_path: Path,
    flags: list[str],
) -> None:
    source = tmp_path / "plain.bin"
    source.write_bytes(plaintext)
    encrypted = tmp_path / "by-openkms.bin"
    proc = openkms(
        server, "encrypt", "--key", keys[0], "--key", keys[1], "--context", "purpose=interop",
        *flags, "-o", str(encrypted), str(source),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()
    decrypted = tmp_path / "out.bin"
    esdk_cli(
        esdk, server, "-d", "-i", str(encrypted), "-o", str(decrypted),
        "-w", f"key={keys[1]}", "--commitment-policy", "require-encrypt-require-decrypt",
    )  # fmt: skip
    assert decrypted.read_bytes() == plaintext


# --- the SDK's Python library <-> openkms.envelope -----------------------------------------------
def test_esdk_library_both_directions(
    esdk: Path, server: Server, keys: tuple[str, str], plaintext: bytes, tmp_path: Path
) -> None:
    ours = EnvelopeClient(kms=make_client(server), frame_length=4096)
    jobs: list[dict[str, Any]] = []
    for suite in ("AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384",
                  "AES_256_GCM_HKDF_SHA512_COMMIT_KEY"):  # fmt: skip
        made_here = tmp_path / f"ours-{suite}.bin"
        made_here.write_bytes(ours.encrypt(plaintext, list(keys), {"dir": "to-esdk"}, suite=suite))
        jobs.append(
            {"op": "decrypt", "in": str(made_here), "out": str(made_here) + ".out",
             "keys": [keys[1]], "context": {"dir": "to-esdk"}}
        )  # fmt: skip
    source = tmp_path / "plain.bin"
    source.write_bytes(plaintext)
    for algorithm, policy in [
        ("AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384", "REQUIRE_ENCRYPT_REQUIRE_DECRYPT"),
        ("AES_256_GCM_HKDF_SHA512_COMMIT_KEY", "REQUIRE_ENCRYPT_REQUIRE_DECRYPT"),
        ("AES_256_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384", "FORBID_ENCRYPT_ALLOW_DECRYPT"),
        ("AES_128_GCM_IV12_TAG16_HKDF_SHA256_ECDSA_P256", "FORBID_ENCRYPT_ALLOW_DECRYPT"),
        ("AES_256_GCM_IV12_TAG16_HKDF_SHA256", "FORBID_ENCRYPT_ALLOW_DECRYPT"),
    ]:
        jobs.append(
            {"op": "encrypt", "in": str(source), "out": str(tmp_path / f"esdk-{algorithm}.bin"),
             "keys": list(keys), "algorithm": algorithm, "policy": policy,
             "context": {"dir": "from-esdk"}, "frame_length": 4096}
        )  # fmt: skip
    proc = _run([str(esdk / "python"), "-c", ESDK_LIBRARY_SCRIPT, json.dumps(jobs)], server)
    assert proc.returncode == 0, proc.stderr.decode()
    for job in jobs:
        if job["op"] == "decrypt":
            assert Path(job["out"]).read_bytes() == plaintext
        else:
            message = Path(job["out"]).read_bytes()
            result = ours.decrypt_message(
                message, key_ids=[keys[1]], required_context={"dir": "from-esdk"}
            )
            assert result.plaintext == plaintext
            assert result.header.suite.name == job["algorithm"]


# --- frame boundaries, both ways ----------------------------------------------------------------
BOUNDARY_FRAME = 256
BOUNDARY_SIZES = (
    0, 1, BOUNDARY_FRAME - 1, BOUNDARY_FRAME, BOUNDARY_FRAME + 1, 2 * BOUNDARY_FRAME,
)  # fmt: skip
# The suites openkms writes, with the flag that selects each in ``openkms encrypt``.
OPENKMS_SUITES = [
    ("AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384", []),
    ("AES_256_GCM_HKDF_SHA512_COMMIT_KEY", ["--unsigned"]),
]


@pytest.mark.parametrize(("suite", "flags"), OPENKMS_SUITES, ids=["signed", "unsigned"])
def test_frame_boundaries_with_the_sdk(
    esdk: Path,
    server: Server,
    keys: tuple[str, str],
    tmp_path: Path,
    suite: str,
    flags: list[str],
) -> None:
    """A plaintext that is a whole number of frames: the AWS Encryption SDK writes an empty final
    frame and refuses a final frame as long as the frame length ("Invalid final frame length:
    1048576 >= 1048576"), which openkms used to write. Each size at and around the boundaries,
    both directions, CLI and library."""
    files = {f"size-{n}.bin": os.urandom(n) for n in BOUNDARY_SIZES}
    plain = tmp_path / "plain"
    plain.mkdir()
    for name, data in files.items():
        (plain / name).write_bytes(data)

    def same(directory: Path, suffix: str) -> None:
        for name, data in files.items():
            assert (directory / f"{name}{suffix}").read_bytes() == data, (suite, name)

    # openkms encrypt -> aws-encryption-cli
    ours = tmp_path / "by-openkms"
    proc = openkms(
        server, "encrypt", "--key", keys[0], "--frame-length", str(BOUNDARY_FRAME), *flags,
        "-o", str(ours), str(plain),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()
    sdk_plain = tmp_path / "decrypted-by-sdk"
    sdk_plain.mkdir()
    esdk_cli(
        esdk, server, "-d", "-r", "-i", str(ours), "-o", str(sdk_plain), "--suffix", ".out",
        "-w", f"key={keys[0]}", "--commitment-policy", "require-encrypt-require-decrypt",
    )  # fmt: skip
    same(sdk_plain, ".encrypted.out")

    # aws-encryption-cli -> openkms decrypt
    theirs = tmp_path / "by-sdk"
    theirs.mkdir()
    esdk_cli(
        esdk, server, "-e", "-r", "-i", str(plain), "-o", str(theirs), "--suffix", ".encrypted",
        "-w", f"key={keys[0]}", "--algorithm", suite, "--frame-length", str(BOUNDARY_FRAME),
        "--commitment-policy", "require-encrypt-require-decrypt",
    )  # fmt: skip
    our_plain = tmp_path / "decrypted-by-openkms"
    proc = openkms(server, "decrypt", "-o", str(our_plain), str(theirs))
    assert proc.returncode == 0, proc.stderr.decode()
    same(our_plain, "")

    # openkms.envelope <-> the SDK's Python library
    ours_lib = EnvelopeClient(kms=make_client(server), frame_length=BOUNDARY_FRAME)
    jobs: list[dict[str, Any]] = []
    for name, data in files.items():
        made_here = tmp_path / f"lib-ours-{name}"
        made_here.write_bytes(ours_lib.encrypt(data, [keys[0]], {"n": name}, suite=suite))
        jobs.append(
            {"op": "decrypt", "in": str(made_here), "out": f"{made_here}.out",
             "keys": [keys[0]], "context": {"n": name}}
        )  # fmt: skip
        jobs.append(
            {"op": "encrypt", "in": str(plain / name), "out": str(tmp_path / f"lib-sdk-{name}"),
             "keys": [keys[0]], "algorithm": suite, "policy": "REQUIRE_ENCRYPT_REQUIRE_DECRYPT",
             "context": {"n": name}, "frame_length": BOUNDARY_FRAME}
        )  # fmt: skip
    proc = _run([str(esdk / "python"), "-c", ESDK_LIBRARY_SCRIPT, json.dumps(jobs)], server)
    assert proc.returncode == 0, proc.stderr.decode()
    for name, data in files.items():
        assert Path(f"{tmp_path / f'lib-ours-{name}'}.out").read_bytes() == data, name
        message = (tmp_path / f"lib-sdk-{name}").read_bytes()
        result = ours_lib.decrypt_message(message, key_ids=[keys[0]], required_context={"n": name})
        assert result.plaintext == data, name
        assert result.header.suite.name == suite


# --- openkms alone, against the real server ----------------------------------------------------
def test_library_round_trip_with_aliases(kms: BaseClient, keys: tuple[str, str]) -> None:
    alias = f"alias/envelope-{os.urandom(4).hex()}"
    kms.create_alias(AliasName=alias, TargetKeyId=keys[0])
    client = EnvelopeClient(kms=kms)
    message = client.encrypt(b"secret", [alias, keys[1]], {"a": "b"})
    assert client.decrypt(message) == b"secret"
    assert client.decrypt(message, key_ids=[alias]) == b"secret"  # resolved to its key ARN


def test_cli_stdin_stdout_and_directories(
    server: Server, keys: tuple[str, str], tmp_path: Path
) -> None:
    data = os.urandom(10_000)
    enc = openkms(server, "encrypt", "--key", keys[0], "-", input_=data)
    assert enc.returncode == 0, enc.stderr.decode()
    dec = openkms(server, "decrypt", "-", input_=enc.stdout)
    assert dec.returncode == 0 and dec.stdout == data

    tree = tmp_path / "tree"
    (tree / "sub" / "deeper").mkdir(parents=True)
    files = {"a.txt": b"alpha", "sub/b.bin": os.urandom(5000), "sub/deeper/c": b""}
    for name, content in files.items():
        (tree / name).write_bytes(content)
    proc = openkms(
        server, "encrypt", "--key", keys[0], "--cache-max-age", "60", "-o", str(tmp_path / "enc"),
        str(tree),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()
    assert sorted(p.relative_to(tmp_path / "enc").as_posix()
                  for p in (tmp_path / "enc").rglob("*") if p.is_file()) == sorted(
        f"{n}.encrypted" for n in files
    )  # fmt: skip
    proc = openkms(server, "decrypt", "-o", str(tmp_path / "dec"), str(tmp_path / "enc"))
    assert proc.returncode == 0, proc.stderr.decode()
    for name, content in files.items():
        assert (tmp_path / "dec" / name).read_bytes() == content


def test_cli_failures_exit_non_zero_and_leave_no_plaintext(
    server: Server,
    second_account: Server,
    kms: BaseClient,
    keys: tuple[str, str],
    tmp_path: Path,
) -> None:
    source = tmp_path / "plain.bin"
    source.write_bytes(os.urandom(3 * 1024 * 1024 + 7))
    encrypted = tmp_path / "plain.bin.encrypted"
    proc = openkms(server, "encrypt", "--key", keys[0], "--frame-length", "1M", str(source))
    assert proc.returncode == 0, proc.stderr.decode()
    message = encrypted.read_bytes()
    target = tmp_path / "out.bin"

    def decrypt(blob: bytes, *extra: str, as_server: Server = server) -> Any:
        path = tmp_path / "input.encrypted"
        path.write_bytes(blob)
        proc = openkms(as_server, "decrypt", *extra, "-o", str(target), str(path))
        assert not target.exists(), "a failed decryption left a plaintext file"
        assert not list(tmp_path.glob(".out.bin.*")), "a temporary file was left behind"
        return proc

    tampered = bytearray(message)
    tampered[len(message) - 2 * 1024 * 1024] ^= 1
    proc = decrypt(bytes(tampered))
    assert proc.returncode == 5 and b"failed authentication" in proc.stderr

    proc = decrypt(message[: len(message) - 1000])
    assert proc.returncode == 5 and b"truncated" in proc.stderr

    other = kms.create_key()["KeyMetadata"]["Arn"]
    proc = decrypt(message, "--key", other)
    assert proc.returncode == 3 and b"not encrypted under any of the given keys" in proc.stderr

    proc = decrypt(message, "--require-context", "purpose=x")
    assert proc.returncode == 5 and b"encryption context" in proc.stderr

    proc = decrypt(message, as_server=second_account)
    assert proc.returncode == 4 and b"permission denied" in proc.stderr, proc.stderr

    proc = openkms(server, "decrypt", "-o", str(target), str(encrypted))
    assert proc.returncode == 0 and target.read_bytes() == source.read_bytes()
