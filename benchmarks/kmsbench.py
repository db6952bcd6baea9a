"""Machinery shared by ``benchmarks/run``, ``server_choice.py`` and ``profile_encrypt.py``.

The pieces, each replaceable on its own:

* **Scenario** — one benchmarked operation: a name, the ``CreateKey`` parameters of the key it
  needs, and a request builder that may call the server first (Decrypt encrypts something).
  ``SCENARIOS`` is the one list of them; adding Sign, GenerateMac, … is adding a row there.
* **Target** — one server variant that is started, measured and stopped: openkms with N workers
  (``OpenKMSTarget``), moto (``MotoTarget``), or anything started by a command line
  (``CommandTarget``, used for granian). A PostgreSQL or HSM variant is another Target.
* **wrk driver** — ``run_wrk`` signs the request once with botocore's SigV4 (the server accepts
  a signed request for 15 minutes and does not reject replays), writes it into a Lua script that
  wrk replays, and reads back one JSON line printed by the script's ``done()`` hook: request
  count, latency percentiles, and the number of responses whose status was not 200 (counted by
  a ``response()`` hook). A run with any non-200 answer or socket error is an error, never a speed.

All traffic goes to 127.0.0.1, bounded by wrk's ``-d``.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import json
import os
import platform
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BENCH_DIR = REPO / "benchmarks"
BENCH_VENV = BENCH_DIR / ".venv-bench"
RESULTS_DIR = BENCH_DIR / "results"
PRODUCT_VENV = REPO / ".venv"
REGION = "us-east-1"
JSON_TYPE = "application/x-amz-json-1.1"
MARKER = "KMSBENCH_JSON "


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def reexec_in_product_venv(script: str) -> None:
    """Run under the repository's .venv python (botocore and openkms live there)."""
    venv = PRODUCT_VENV.resolve()
    if Path(sys.prefix).resolve() == venv:
        return
    python = venv / "bin" / "python"
    if not python.exists():
        sys.exit(f"{script}: {python} is missing; run `make install` first")
    if os.environ.get("KMSBENCH_REEXEC"):
        sys.exit(f"{script}: re-exec under {python} did not take effect")
    os.environ["KMSBENCH_REEXEC"] = "1"
    os.execv(str(python), [str(python), script, *sys.argv[1:]])


# -- tools ------------------------------------------------------------------------------------


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    log("wrk not found; installing it with apt-get (Debian/Ubuntu)…")
    apt = shutil.which("apt-get")
    prefix: list[str] = []
    if os.geteuid() != 0:
        if shutil.which("sudo") is None:
            apt = None
        prefix = ["sudo", "-n"]
    if apt is not None:
        for step in (["update", "-q"], ["install", "-y", "-q", "wrk"]):
            subprocess.run(
                [*prefix, apt, *step],
                check=False,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
            )
    found = shutil.which("wrk")
    if found:
        return found
    sys.exit(
        "benchmarks: wrk is required and could not be installed automatically.\n"
        "  Debian/Ubuntu: sudo apt-get update && sudo apt-get install -y wrk\n"
        "  macOS:         brew install wrk\n"
        "then run this again."
    )


# What each tool needs in the bench venv: (file that shows it is there, pip arguments). Every
# version comes from a lock (requirements/bench.txt, requirements/runtime.txt), hashes checked,
# so a fresh install compares with the same moto as the recorded runs.
_BENCH_LOCK = ["--require-hashes", "--no-deps", "-r", str(REPO / "requirements" / "bench.txt")]
BENCH_TOOLS: dict[str, tuple[str, list[str]]] = {
    "moto": ("bin/moto_server", _BENCH_LOCK),
    "granian": ("bin/granian", _BENCH_LOCK),
    "openkms": (
        "bin/openkms",
        ["--require-hashes", "--no-deps", "-r", str(REPO / "requirements" / "runtime.txt")],
    ),
    "py-spy": ("bin/py-spy", _BENCH_LOCK),
}


def ensure_bench_venv(*tools: str) -> Path:
    """Create benchmarks/.venv-bench (kept apart from the product's venv) with ``tools``."""
    python = BENCH_VENV / "bin" / "python"
    if not python.exists():
        log(f"creating {BENCH_VENV.relative_to(REPO)} …")
        subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
    missing = [t for t in tools if not (BENCH_VENV / BENCH_TOOLS[t][0]).exists()]
    # The editable openkms follows the repository, but its dependencies only follow
    # pyproject.toml when pip runs again: reinstall whenever pyproject.toml changes.
    stamp = BENCH_VENV / ".openkms-pyproject.sha256"
    pyproject = hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()
    stale = "openkms" in tools and (not stamp.exists() or stamp.read_text() != pyproject)
    if stale and "openkms" not in missing:
        missing.append("openkms")
    for args in {tuple(BENCH_TOOLS[t][1]) for t in missing}:
        log(f"installing {' '.join(args)} into {BENCH_VENV.relative_to(REPO)} …")
        subprocess.run([str(python), "-m", "pip", "install", "-q", *args], check=True)
    if "openkms" in missing:
        # openkms itself on the locked runtime dependencies installed above (not
        # OPENKMS_PURE_PYTHON=1: an editable install with it would delete the tree's compiled
        # build, which the product's .venv uses; setup.py leaves the tree alone otherwise).
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--no-deps", "-e", str(REPO)], check=True
        )
    if "openkms" in missing:
        stamp.write_text(pyproject)
    return BENCH_VENV


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- signing and plain calls ------------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    account_id: str


@dataclass(frozen=True)
class SignedRequest:
    operation: str
    url: str
    headers: dict[str, str]
    body: bytes


# The JSON 1.1 target prefix of each service the benchmark calls, by SigV4 service name.
TARGET_PREFIX = {"kms": "TrentService", "secretsmanager": "secretsmanager"}


def sign(
    url: str, creds: Credentials, operation: str, payload: dict[str, Any], service: str = "kms"
) -> SignedRequest:
    from botocore.auth import SigV4Auth  # type: ignore[import-untyped]
    from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]
    from botocore.credentials import Credentials as BotoCredentials  # type: ignore[import-untyped]

    body = json.dumps(payload, separators=(",", ":")).encode()
    request = AWSRequest(
        method="POST",
        url=url.rstrip("/") + "/",
        data=body,
        headers={
            "Content-Type": JSON_TYPE,
            "X-Amz-Target": f"{TARGET_PREFIX[service]}.{operation}",
        },
    )
    boto_creds = BotoCredentials(creds.access_key_id, creds.secret_access_key)
    SigV4Auth(boto_creds, service, REGION).add_auth(request)
    headers = {k: v for k, v in request.headers.items()}
    # SigV4 signs the Host header botocore derives from the URL; wrk must send exactly that.
    headers["Host"] = url.split("://", 1)[1].rstrip("/")
    return SignedRequest(operation, url, headers, body)


class CallError(RuntimeError):
    pass


def _context(url: str) -> ssl.SSLContext | None:
    """HTTPS targets of the benchmark serve a throwaway development certificate."""
    if not url.startswith("https:"):
        return None
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def send(signed: SignedRequest, timeout: float = 30.0) -> dict[str, Any]:
    request = urllib.request.Request(
        signed.url, data=signed.body, headers=signed.headers, method="POST"
    )
    try:
        with urllib.request.urlopen(
            request, timeout=timeout, context=_context(signed.url)
        ) as response:
            status = response.status
            text = response.read()
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read()
    if status != 200:
        raise CallError(f"{signed.operation}: HTTP {status}: {text[:300]!r}")
    result: dict[str, Any] = json.loads(text or b"{}")
    return result


def call(
    url: str, creds: Credentials, operation: str, payload: dict[str, Any], service: str = "kms"
) -> dict[str, Any]:
    return send(sign(url, creds, operation, payload, service))


def wait_http(url: str, proc: subprocess.Popen[bytes], logfile: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}; log:\n{tail(logfile)}")
        try:
            with urllib.request.urlopen(url, timeout=2, context=_context(url)) as response:
                if response.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer 200 within {timeout:.0f}s; log:\n{tail(logfile)}")


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def group_cpu_seconds(pgid: int) -> float:
    """CPU time (user + system, all threads) used so far by the processes of group ``pgid``.

    Every target is started in its own session, so its workers share its process group.
    On a shared machine this is steadier than req/s: it does not count time spent waiting for
    a CPU that another tenant holds.
    """
    ticks = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # after "pid (comm)": state ppid pgrp session tty tpgid flags minflt cminflt majflt
        # cmajflt utime stime ...
        if int(fields[2]) == pgid:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def child_pids(pid: int) -> list[int]:
    """Direct children of ``pid`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...; comm may hold spaces, so split after the last ')'
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


# -- targets ----------------------------------------------------------------------------------


class Target:
    """A server variant: started once, measured for every scenario, stopped."""

    name: str = "?"
    kind: str = "?"  # "openkms" rows are compared with the "moto" baseline
    url: str = ""
    creds: Credentials = Credentials("", "", "")
    proc: subprocess.Popen[bytes] | None = None
    logfile: Path = Path("/dev/null")

    def start(self, workdir: Path) -> None:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind}

    def prepare(self, request: Request) -> SignedRequest:
        """The bytes wrk replays: ``request`` signed for this target now."""
        return sign(self.url, self.creds, request.operation, request.payload, request.service)

    def covers(self, scenario: str, connections: int) -> bool:
        """Whether this target is measured for (scenario, connections); all by default."""
        return True

    def process_groups(self) -> list[int]:
        """The process groups whose CPU time is the server's (its own session by default)."""
        return [self.proc.pid] if self.proc is not None else []

    def _spawn(self, argv: Sequence[str], workdir: Path, env: dict[str, str] | None = None) -> None:
        self.logfile = workdir / f"{slug(self.name)}.log"
        handle = self.logfile.open("wb")
        self.proc = subprocess.Popen(
            list(argv),
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            start_new_session=True,  # its own process group, so stop() reaches its workers
        )
        handle.close()

    def worker_pids(self) -> list[int]:
        if self.proc is None:
            return []
        return child_pids(self.proc.pid) or [self.proc.pid]

    def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text).strip("-").lower()


class OpenKMSTarget(Target):
    """``openkms serve`` (uvicorn + httptools + uvloop) on a fresh data directory.

    ``bin_dir`` chooses the installation (the product's .venv by default); ``extra_args`` and
    ``env`` are where a PostgreSQL or HSM variant would add its settings.
    """

    kind = "openkms"

    def __init__(
        self,
        workers: int = 1,
        name: str | None = None,
        bin_dir: Path | None = None,
        extra_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        iam_user: bool = False,
        tls: bool = False,
        only: Sequence[tuple[str, int]] | None = None,
    ) -> None:
        self.workers = workers
        self.iam_user = iam_user
        self.tls = tls
        self.only = None if only is None else set(only)
        self.name = name or (
            f"openkms w{workers}" + (" iam-user" if iam_user else "") + (" tls" if tls else "")
        )
        self.bin_dir = bin_dir or Path(sys.executable).parent
        self.extra_args = list(extra_args)
        self.env = env or {}

    def describe(self) -> dict[str, Any]:
        principal = "iam-user (identity policy with conditions)" if self.iam_user else "root"
        return {
            **super().describe(),
            "workers": self.workers,
            "server": "uvicorn",
            "principal": principal,
            "tls": self.tls,
        }

    def covers(self, scenario: str, connections: int) -> bool:
        return self.only is None or (scenario, connections) in self.only

    def _prepare(self, workdir: Path) -> Path:
        data = workdir / f"data-{slug(self.name)}"
        out = subprocess.run(
            [str(self.bin_dir / "openkms"), "accounts", "create", "--data-dir", str(data)],
            check=False,
            capture_output=True,
            env={**os.environ, **self.env},
        )
        if out.returncode != 0:
            raise RuntimeError(
                f"{self.name}: `openkms accounts create` failed ({out.returncode}):\n"
                + out.stderr.decode(errors="replace")[-2000:]
            )
        issued = json.loads(out.stdout)
        self.creds = Credentials(
            issued["AccessKeyId"], issued["SecretAccessKey"], issued["AccountId"]
        )
        return data

    def start(self, workdir: Path) -> None:
        data = self._prepare(workdir)
        port = free_port()
        self.url = f"{'https' if self.tls else 'http'}://127.0.0.1:{port}"
        tls_dir = workdir / f"tls-{slug(self.name)}"
        tls_args = dev_cert_args(self.bin_dir, tls_dir) if self.tls else []
        # Throughput is measured without AWS's request quotas (1,000/s for asymmetric keys, 5/s
        # for CreateKey ...), which would otherwise be what the benchmark measures.
        argv = [
            str(self.bin_dir / "openkms"), "serve", "--data-dir", str(data),
            "--port", str(port), "--workers", str(self.workers), "--no-rate-limits",
            *tls_args, *self.extra_args,
        ]  # fmt: skip
        self._spawn(argv, workdir, self.env)
        assert self.proc is not None
        wait_http(self.url + "/healthz", self.proc, self.logfile)
        wait_workers(self, self.workers)
        if self.iam_user:
            self.creds = make_iam_user(self.url, self.creds)


# The realistic caller of the full path: an IAM user whose identity policy has conditions, so
# that the evaluator runs on every request (nothing can be answered from the decision cache).
IAM_USER_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "OnlyFromHere",
            "Effect": "Deny",
            "Action": ["kms:*", "secretsmanager:*"],
            "Resource": "*",
            # Not for calls an AWS service makes on the caller's behalf (Secrets Manager's
            # Decrypt carries no aws:SourceIp), as AWS's documentation advises for such denies.
            "Condition": {
                "NotIpAddress": {"aws:SourceIp": ["127.0.0.0/8", "10.0.0.0/8"]},
                "Bool": {"aws:ViaAWSService": "false"},
            },
        },
        {
            "Sid": "UseKeys",
            "Effect": "Allow",
            "Action": [
                "kms:CreateKey", "kms:DescribeKey", "kms:Encrypt", "kms:Decrypt",
                "kms:GenerateDataKey*", "kms:Sign", "kms:Verify", "kms:GenerateMac",
            ],
            "Resource": "*",
            # The tenant condition makes each distinct context a distinct authorization
            # decision (EncryptDistinctContexts); requests without a context pass it.
            "Condition": {
                "StringEquals": {"aws:RequestedRegion": "us-east-1"},
                "StringLikeIfExists": {"kms:EncryptionContext:tenant": "t-*"},
            },
        },
        {
            # GetSecretValue: the secret's KMS decrypt is authorized on this user's behalf by
            # UseKeys above (kms:ViaService secretsmanager.us-east-1.amazonaws.com).
            "Sid": "UseSecrets",
            "Effect": "Allow",
            "Action": [
                "secretsmanager:CreateSecret", "secretsmanager:GetSecretValue",
                "secretsmanager:PutResourcePolicy",
            ],
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:RequestedRegion": "us-east-1"}},
        },
    ],
}  # fmt: skip


def make_iam_user(url: str, root: Credentials) -> Credentials:
    """An IAM user with IAM_USER_POLICY, created through openkms's IAM API as the root."""
    import boto3  # type: ignore[import-untyped]

    iam = boto3.session.Session().client(
        "iam",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=root.access_key_id,
        aws_secret_access_key=root.secret_access_key,
    )
    iam.create_user(UserName="bench")
    iam.put_user_policy(
        UserName="bench", PolicyName="bench", PolicyDocument=json.dumps(IAM_USER_POLICY)
    )
    key = iam.create_access_key(UserName="bench")["AccessKey"]
    return Credentials(key["AccessKeyId"], key["SecretAccessKey"], root.account_id)


def wait_workers(target: Target, workers: int, timeout: float = 30) -> None:
    """With several workers the supervisor answers /healthz as soon as one of them is up."""
    if workers <= 1 or target.proc is None:
        return
    deadline = time.monotonic() + timeout
    while len(child_pids(target.proc.pid)) < workers and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)  # let the last one finish importing and reach accept()


def dev_cert_args(bin_dir: Path, out: Path) -> list[str]:
    """A throwaway certificate (``openkms tls dev-cert``): the serve arguments that use it."""
    subprocess.run(
        [str(bin_dir / "openkms"), "tls", "dev-cert", "--out", str(out), "--hosts", "127.0.0.1"],
        check=True,
        capture_output=True,
    )
    return ["--tls-cert", str(out / "server.pem"), "--tls-key", str(out / "server-key.pem")]


NGINX_TLS_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream openkms {{ server 127.0.0.1:{upstream}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        keepalive_requests 1000000;
        location / {{
            proxy_pass http://openkms;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
        }}
    }}
}}
"""


class NginxTLSTarget(OpenKMSTarget):
    """openkms over plain HTTP behind nginx terminating TLS (one nginx worker), as in
    ``deploy/nginx/openkms.conf``; CPU per request counts nginx's processes and openkms's."""

    def __init__(self, workers: int, only: Sequence[tuple[str, int]] | None = None) -> None:
        super().__init__(workers=workers, name=f"openkms w{workers} nginx-tls", only=only)
        self.nginx: subprocess.Popen[bytes] | None = None

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "tls": True, "tls_terminated_by": nginx_version()}

    def start(self, workdir: Path) -> None:
        super().start(workdir)  # plain HTTP, self.url points at it
        upstream = int(self.url.rsplit(":", 1)[1])
        conf_dir = workdir / f"nginx-{slug(self.name)}"
        conf_dir.mkdir()
        tls = dev_cert_args(self.bin_dir, conf_dir / "tls")
        port = free_port()
        (conf_dir / "nginx.conf").write_text(
            NGINX_TLS_CONF.format(
                dir=conf_dir, upstream=upstream, port=port, cert=tls[1], key=tls[3]
            )
        )
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        with (conf_dir / "stderr.log").open("wb") as err:
            self.nginx = subprocess.Popen(
                [nginx, "-p", str(conf_dir), "-c", str(conf_dir / "nginx.conf")],
                stdout=subprocess.DEVNULL,
                stderr=err,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.url = f"https://127.0.0.1:{port}"
        wait_http(self.url + "/healthz", self.nginx, conf_dir / "error.log")

    def process_groups(self) -> list[int]:
        return super().process_groups() + ([self.nginx.pid] if self.nginx is not None else [])

    def stop(self) -> None:
        if self.nginx is not None and self.nginx.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.nginx.pid, signal.SIGTERM)
            try:
                self.nginx.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.nginx.pid, signal.SIGKILL)
        super().stop()


def nginx_available() -> bool:
    return (
        shutil.which("nginx") or (Path("/usr/sbin/nginx").exists() and "/usr/sbin/nginx")
    ) is not None


def nginx_version() -> str:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    try:
        out = subprocess.run([nginx, "-v"], capture_output=True, text=True, check=False)
    except OSError:
        return "?"
    return (out.stderr or out.stdout).strip()


class TrivialTarget(Target):
    """The calibration server: a trivial ASGI app on openkms's server stack
    (``benchmarks/trivial_server.py``), sent the same request bytes as openkms."""

    kind = "trivial"

    def __init__(self, workers: int = 2) -> None:
        self.workers = workers
        self.name = f"trivial w{workers}"

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "workers": self.workers, "server": "uvicorn"}

    def start(self, workdir: Path) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        argv = [sys.executable, str(BENCH_DIR / "trivial_server.py"), "--port", str(port),
                "--workers", str(self.workers)]  # fmt: skip
        self._spawn(argv, workdir)
        assert self.proc is not None
        wait_http(self.url + "/healthz", self.proc, self.logfile)
        wait_workers(self, self.workers)

    def prepare(self, request: Request) -> SignedRequest:
        # The headers and body of a signed Encrypt, so HTTP parsing costs what it costs openkms.
        return sign(self.url, Credentials("AKIDTRIVIAL", "secret", "000000000000"),
                    request.operation, request.payload)  # fmt: skip


CALIBRATION_REQUEST_OPERATION = "Encrypt"


def calibration_request() -> Request:
    return Request(
        "Encrypt",
        {"KeyId": "1234abcd-12ab-34cd-56ef-1234567890ab", "Plaintext": PLAINTEXT,
         "EncryptionContext": CONTEXT},
    )  # fmt: skip


def aes_gcm_ops_per_second(seconds: float = 0.5) -> float:
    """In-process AES-256-GCM seals of 32 bytes with a 40-byte AAD (pyca/cryptography)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    aead = AESGCM(bytes(32))
    nonce, data, aad = bytes(12), bytes(32), bytes(40)
    count = 0
    deadline = time.perf_counter() + seconds
    while True:
        for _ in range(1000):
            aead.encrypt(nonce, data, aad)
        count += 1000
        if time.perf_counter() >= deadline:
            break
    return count / (seconds + (time.perf_counter() - deadline))


def ping_pong(rounds: int = 4000) -> dict[str, float]:
    """Round trips of one byte over two pipes between two processes, pinned to the same CPU and
    to two different CPUs: µs per round trip and CPU µs per round trip (both processes). Waking
    a process on another, idle vCPU is what a loopback client and server do on every request."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    out: dict[str, float] = {}
    layouts = [("same_cpu", cpus[:1] * 2)] + ([("cross_cpu", cpus[:2])] if len(cpus) > 1 else [])
    for name, (a, b) in layouts:
        r1, w1 = os.pipe()
        r2, w2 = os.pipe()
        pid = os.fork()
        if pid == 0:  # the echoing child
            try:
                os.sched_setaffinity(0, {b})
                for _ in range(rounds + 200):
                    os.read(r1, 1)
                    os.write(w2, b"x")
            finally:
                os._exit(0)
        original = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {a})
        try:
            for _ in range(200):  # warm-up
                os.write(w1, b"x")
                os.read(r2, 1)
            cpu0 = time.process_time()
            t0 = time.perf_counter()
            for _ in range(rounds):
                os.write(w1, b"x")
                os.read(r2, 1)
            elapsed = time.perf_counter() - t0
            own_cpu = time.process_time() - cpu0
        finally:
            os.sched_setaffinity(0, original)
            os.waitpid(pid, 0)
            for fd in (r1, w1, r2, w2):
                os.close(fd)
        out[f"{name}_rtt_us"] = round(elapsed * 1e6 / rounds, 1)
        out[f"{name}_parent_cpu_us"] = round(own_cpu * 1e6 / rounds, 1)
    return out


def dependency_versions() -> dict[str, str]:
    """Every distribution installed in the interpreter that runs the servers."""
    from importlib import metadata

    found = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found[name.lower()] = dist.version
    return dict(sorted(found.items()))


def cpu_description() -> dict[str, Any]:
    info: dict[str, Any] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["model"] = line.split(":", 1)[1].strip()
                break
    for index in range(4):
        base = Path(f"/sys/devices/system/cpu/cpu0/cache/index{index}")
        with contextlib.suppress(OSError):
            level = (base / "level").read_text().strip()
            kind = (base / "type").read_text().strip()
            info[f"L{level} {kind.lower()}"] = (base / "size").read_text().strip()
    return info


class CommandTarget(OpenKMSTarget):
    """The openkms ASGI app behind another server command (granian…), same data layout.

    ``argv_for(port, settings_json)`` returns the command line; the settings travel in
    OPENKMS_SETTINGS_JSON exactly as ``openkms serve`` passes them to uvicorn's workers.
    """

    def __init__(
        self,
        name: str,
        argv_for: Callable[[int], list[str]],
        workers: int,
        server: str,
        bin_dir: Path | None = None,
    ) -> None:
        super().__init__(workers=workers, name=name, bin_dir=bin_dir)
        self.argv_for = argv_for
        self.server = server

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "server": self.server}

    def start(self, workdir: Path) -> None:
        data = self._prepare(workdir)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        settings = {"data_dir": str(data), "host": "127.0.0.1", "port": port,
                    "workers": self.workers}  # fmt: skip
        env = {**self.env, "OPENKMS_SETTINGS_JSON": json.dumps(settings)}
        self._spawn(self.argv_for(port), workdir, env)
        assert self.proc is not None
        wait_http(self.url + "/healthz", self.proc, self.logfile)
        wait_workers(self, self.workers)


class MotoTarget(Target):
    """moto's standalone server (``moto_server``), the in-memory mock most projects use."""

    name = "moto"
    kind = "moto"

    def __init__(self, venv: Path = BENCH_VENV) -> None:
        self.venv = venv
        self.creds = Credentials("testing", "testing", "123456789012")

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "version": moto_version(self.venv)}

    def start(self, workdir: Path) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        argv = [str(self.venv / "bin" / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
        self._spawn(argv, workdir)
        assert self.proc is not None
        wait_http(self.url + "/moto-api/", self.proc, self.logfile)


def moto_version(venv: Path) -> str:
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import moto; print(moto.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip() or "?"


# -- scenarios --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    operation: str
    payload: dict[str, Any]
    # When given, wrk cycles through these (each signed once) instead of replaying ``payload``:
    # for requests that must differ, so that no per-request cache can answer them.
    payloads: tuple[dict[str, Any], ...] = ()
    service: str = "kms"  # the SigV4 service: kms or secretsmanager


@dataclass
class Prep:
    """What a request builder may use: the target's key and a way to call the target."""

    target: Target
    key_id: str
    key_arn: str

    def call(self, operation: str, payload: dict[str, Any], service: str = "kms") -> dict[str, Any]:
        return call(self.target.url, self.target.creds, operation, payload, service)


@dataclass(frozen=True)
class Scenario:
    name: str
    key_params: dict[str, Any]  # CreateKey parameters
    build: Callable[[Prep], Request]
    default: bool = True  # run without --ops
    description: str = ""


SYMMETRIC = {"KeySpec": "SYMMETRIC_DEFAULT", "KeyUsage": "ENCRYPT_DECRYPT"}
CONTEXT = {"tenant": "t-0042", "purpose": "benchmark"}
PLAINTEXT = base64.b64encode(b"a small secret: 32 bytes of data").decode()
MESSAGE = base64.b64encode(b"message to sign or MAC " * 4).decode()


def _encrypt(p: Prep) -> Request:
    return Request(
        "Encrypt", {"KeyId": p.key_id, "Plaintext": PLAINTEXT, "EncryptionContext": CONTEXT}
    )


# Distinct encryption contexts, more than the IAM user's decision cache can see again within its
# 1 s lifetime at ~30k req/s: every request of that caller runs the policy evaluator.
DISTINCT_CONTEXTS = 40_000


def _encrypt_distinct_contexts(p: Prep) -> Request:
    payloads = tuple(
        {"KeyId": p.key_id, "Plaintext": PLAINTEXT,
         "EncryptionContext": {"tenant": f"t-{i:06d}", "purpose": "benchmark"}}
        for i in range(DISTINCT_CONTEXTS)
    )  # fmt: skip
    return Request("Encrypt", payloads[0], payloads)


def _decrypt(p: Prep) -> Request:
    blob = p.call("Encrypt", _encrypt(p).payload)["CiphertextBlob"]
    return Request(
        "Decrypt", {"KeyId": p.key_id, "CiphertextBlob": blob, "EncryptionContext": CONTEXT}
    )


def _generate_data_key(p: Prep) -> Request:
    return Request("GenerateDataKey", {"KeyId": p.key_id, "KeySpec": "AES_256"})


def _describe_key(p: Prep) -> Request:
    return Request("DescribeKey", {"KeyId": p.key_id})


def _sign(p: Prep) -> Request:
    return Request(
        "Sign",
        {"KeyId": p.key_id, "Message": MESSAGE, "MessageType": "RAW",
         "SigningAlgorithm": "ECDSA_SHA_256"},
    )  # fmt: skip


def _signer(algorithm: str) -> Callable[[Prep], Request]:
    def build(p: Prep) -> Request:
        return Request(
            "Sign",
            {"KeyId": p.key_id, "Message": MESSAGE, "MessageType": "RAW",
             "SigningAlgorithm": algorithm},
        )  # fmt: skip

    return build


def _verify(p: Prep) -> Request:
    payload = _sign(p).payload
    signature = p.call("Sign", payload)["Signature"]
    return Request("Verify", {**payload, "Signature": signature})


def _generate_data_key_pair(p: Prep) -> Request:
    return Request("GenerateDataKeyPair", {"KeyId": p.key_id, "KeyPairSpec": "ECC_NIST_P256"})


def _generate_mac(p: Prep) -> Request:
    return Request(
        "GenerateMac", {"KeyId": p.key_id, "Message": MESSAGE, "MacAlgorithm": "HMAC_SHA_256"}
    )


SECRET_VALUE = "a small secret: 32 bytes of data"


def _get_secret_value(p: Prep) -> Request:
    """A secret encrypted under the scenario's customer managed key, with a resource policy that
    names the caller: each GetSecretValue goes through SigV4, the identity and resource
    policies, the KMS authorization of the decrypt on the caller's behalf (kms:ViaService) and
    the audit record, as issue #19 asks."""
    name = f"benchmark/{slug(p.target.name)}"
    created = p.call(
        "CreateSecret",
        {"Name": name, "KmsKeyId": p.key_arn, "SecretString": SECRET_VALUE},
        service="secretsmanager",
    )
    caller = p.call("DescribeKey", {"KeyId": p.key_id})["KeyMetadata"]["AWSAccountId"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "ReadersOfThisAccount", "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{caller}:root"},
            "Action": "secretsmanager:GetSecretValue", "Resource": "*",
        }],
    }  # fmt: skip
    p.call(
        "PutResourcePolicy",
        {"SecretId": created["ARN"], "ResourcePolicy": json.dumps(policy)},
        service="secretsmanager",
    )
    return Request("GetSecretValue", {"SecretId": name}, service="secretsmanager")


# The one list of scenarios. New operations are new rows; ``default=False`` rows run only when
# named with --ops (e.g. while the operation is still being built).
SCENARIOS: list[Scenario] = [
    Scenario("Encrypt", SYMMETRIC, _encrypt, description="32-byte plaintext, 2-pair context"),
    Scenario("Decrypt", SYMMETRIC, _decrypt, description="ciphertext made beforehand"),
    Scenario("GenerateDataKey", SYMMETRIC, _generate_data_key, description="AES_256"),
    Scenario("DescribeKey", SYMMETRIC, _describe_key),
    Scenario("Sign", {"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"}, _sign),
    Scenario(
        "GenerateMac", {"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"}, _generate_mac
    ),
    Scenario(
        "GetSecretValue",
        SYMMETRIC,
        _get_secret_value,
        description="Secrets Manager: 32-byte secret under a customer managed key, resource policy",
    ),
    Scenario(
        "EncryptDistinctContexts",
        SYMMETRIC,
        _encrypt_distinct_contexts,
        default=False,
        description=f"Encrypt, {DISTINCT_CONTEXTS:,} distinct encryption contexts in turn",
    ),
    Scenario(
        "Verify",
        {"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"},
        _verify,
        default=False,
        description="ECDSA P-256, signature made beforehand",
    ),
    Scenario(
        "SignRSA2048",
        {"KeySpec": "RSA_2048", "KeyUsage": "SIGN_VERIFY"},
        _signer("RSASSA_PSS_SHA_256"),
        default=False,
    ),
    Scenario(
        "SignEd25519",
        {"KeySpec": "ECC_NIST_EDWARDS25519", "KeyUsage": "SIGN_VERIFY"},
        _signer("ED25519_SHA_512"),
        default=False,
    ),
    Scenario(
        "SignMLDSA65",
        {"KeySpec": "ML_DSA_65", "KeyUsage": "SIGN_VERIFY"},
        _signer("ML_DSA_SHAKE_256"),
        default=False,
    ),
    Scenario(
        "GenerateDataKeyPair",
        SYMMETRIC,
        _generate_data_key_pair,
        default=False,
        description="ECC_NIST_P256 pair under a symmetric key",
    ),
]


def select_scenarios(ops: str | None) -> list[Scenario]:
    if not ops:
        return [s for s in SCENARIOS if s.default]
    by_name = {s.name.lower(): s for s in SCENARIOS}
    chosen = []
    for name in (n.strip() for n in ops.split(",") if n.strip()):
        if name.lower() not in by_name:
            sys.exit(f"unknown operation {name!r}; known: {', '.join(s.name for s in SCENARIOS)}")
        chosen.append(by_name[name.lower()])
    return chosen


@dataclass
class KeyRing:
    """One key per (target, CreateKey parameters), created on first use."""

    keys: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)

    def prep(self, target: Target, scenario: Scenario) -> Prep:
        marker = (target.name, json.dumps(scenario.key_params, sort_keys=True))
        if marker not in self.keys:
            meta = call(
                target.url,
                target.creds,
                "CreateKey",
                {**scenario.key_params, "Description": f"benchmark key ({scenario.name})"},
            )["KeyMetadata"]
            self.keys[marker] = (meta["KeyId"], meta["Arn"])
        key_id, arn = self.keys[marker]
        return Prep(target, key_id, arn)


# -- wrk --------------------------------------------------------------------------------------


def lua_string(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    safe = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -_.:/=+,;"
    return '"' + "".join(chr(b) if b in safe else f"\\{b:03d}" for b in raw) + '"'


LUA_HOOKS = r"""
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  non200 = 0
  first_bad = ""
end

function response(status, headers, body)
  if status ~= 200 then
    non200 = non200 + 1
    if first_bad == "" then
      first_bad = tostring(status) .. " " .. string.sub(body or "", 1, 300)
    end
  end
end

local function jstr(s)
  s = string.gsub(s, '[%c"\\\128-\255]', function(c)
    return string.format("\\u%04x", string.byte(c))
  end)
  return '"' .. s .. '"'
end

function done(summary, latency, requests)
  local bad, sample = 0, ""
  for _, t in ipairs(threads) do
    bad = bad + (t:get("non200") or 0)
    local s = t:get("first_bad")
    if sample == "" and s ~= nil then sample = s end
  end
  local e = summary.errors
  local p = {}
  for _, q in ipairs({50, 90, 99, 99.9}) do
    table.insert(p, string.format('"%s":%.1f', tostring(q), latency:percentile(q)))
  end
  io.write(string.format(
    '%s{"requests":%d,"duration_us":%d,"bytes":%d,"non200":%d,"first_bad":%s,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"max":%.1f,"stdev":%.1f,"percentiles":{%s}}}\n',
    MARKER, summary.requests, summary.duration, summary.bytes, bad, jstr(sample),
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.max, latency.stdev, table.concat(p, ",")))
end
"""


def wrk_script(signed: SignedRequest) -> str:
    lines = ['wrk.method = "POST"', 'wrk.path = "/"']
    for name, value in signed.headers.items():
        lines.append(f"wrk.headers[{lua_string(name)}] = {lua_string(value)}")
    lines.append(f"wrk.body = {lua_string(signed.body)}")
    lines.append(f"MARKER = {lua_string(MARKER)}")
    return "\n".join(lines) + "\n" + LUA_HOOKS


MANY_HOOKS = r"""
local base_init = init
local formatted = {}
local next_request = 0

function init(args)
  base_init(args)
  local headers = {}
  for name, value in pairs(wrk.headers) do headers[name] = value end
  for i = 1, #AUTHS do
    headers["Authorization"] = AUTHS[i]
    headers["X-Amz-Date"] = DATES[i]
    headers["Content-Length"] = nil
    formatted[i] = wrk.format("POST", "/", headers, BODIES[i])
  end
end

function request()
  next_request = next_request % #formatted + 1
  return formatted[next_request]
end
"""


def wrk_script_many(signed: Sequence[SignedRequest]) -> str:
    """wrk cycles through ``signed`` (same headers but the signature, date and body)."""
    lines = [wrk_script(signed[0])]
    for table, pick in (
        ("AUTHS", lambda r: r.headers["Authorization"]),
        ("DATES", lambda r: r.headers["X-Amz-Date"]),
        ("BODIES", lambda r: r.body),
    ):
        # One function per table: LuaJIT allows 65,536 constants per function.
        lines.append(f"{table} = (function() return {{")
        lines.extend(f"  {lua_string(pick(r))}," for r in signed)
        lines.append("} end)()")
    return "\n".join(lines) + "\n" + MANY_HOOKS


@dataclass
class Measurement:
    target: str
    scenario: str
    connections: int
    threads: int
    duration_s: float
    ok: bool
    error: str | None = None
    requests: int = 0
    rps: float = 0.0
    p50_ms: float = 0.0
    p90_ms: float = 0.0
    p99_ms: float = 0.0
    p999_ms: float = 0.0
    mean_ms: float = 0.0
    max_ms: float = 0.0
    non200: int = 0
    socket_errors: dict[str, int] = field(default_factory=dict)
    first_bad: str = ""
    loadavg_1m: float = 0.0  # the machine's load when the measurement ended (it is shared)
    server_cpu_s: float = 0.0  # CPU seconds the server's processes used during the measurement
    cpu_us_per_request: float = 0.0  # server CPU per answered request
    # benchmarks/run: the trivial app's CPU per request, measured just before this row
    beside_trivial_cpu_us: float = 0.0
    rounds_rps: list[float] = field(default_factory=list)

    def cell_rps(self) -> str:
        return f"{self.rps:,.0f}" if self.ok else "ERROR"


def threads_for(connections: int) -> int:
    # One wrk thread drives 37k req/s of a trivial ASGI app here; a second only takes CPU from
    # the server it shares the two cores with (25k req/s with two threads, same run).
    return 1


def run_wrk(
    wrk: str,
    target: Target,
    request: Request,
    connections: int,
    seconds: int,
    workdir: Path,
    scenario_name: str | None = None,
) -> Measurement:
    """Sign ``request`` for ``target`` now, check it once, then let wrk replay it."""
    name = scenario_name or request.operation
    threads = threads_for(connections)
    base = Measurement(target.name, name, connections, threads, float(seconds), ok=False)
    signed = target.prepare(request)
    try:
        send(signed)  # the very bytes wrk will replay must succeed once
    except (CallError, OSError) as exc:
        base.error = f"preflight: {exc}"
        return base
    script = workdir / f"{slug(target.name)}-{slug(name)}-c{connections}.lua"
    if request.payloads:
        many = [
            sign(target.url, target.creds, request.operation, p, request.service)
            for p in request.payloads
        ]
        script.write_text(wrk_script_many(many))
    else:
        script.write_text(wrk_script(signed))
    argv = [
        wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
        "--latency", "-s", str(script), target.url + "/",
    ]  # fmt: skip
    groups = target.process_groups()
    cpu_before = sum(group_cpu_seconds(g) for g in groups)
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        base.error = "wrk did not finish in time"
        return base
    cpu_used = sum(group_cpu_seconds(g) for g in groups) - cpu_before
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith(MARKER)), None)
    if out.returncode != 0 or line is None:
        base.error = f"wrk exit {out.returncode}: {(out.stderr or out.stdout)[-300:]}"
        return base
    data = json.loads(line[len(MARKER) :])
    pct = data["latency_us"]["percentiles"]
    errors = {k: int(v) for k, v in data["errors"].items() if k != "status"}
    m = base
    m.requests = int(data["requests"])
    m.duration_s = data["duration_us"] / 1e6
    m.rps = m.requests / m.duration_s if m.duration_s else 0.0
    m.p50_ms, m.p90_ms = pct["50"] / 1000, pct["90"] / 1000
    m.p99_ms, m.p999_ms = pct["99"] / 1000, pct["99.9"] / 1000
    m.mean_ms, m.max_ms = data["latency_us"]["mean"] / 1000, data["latency_us"]["max"] / 1000
    m.non200 = int(data["non200"])
    m.first_bad = data["first_bad"]
    m.socket_errors = errors
    m.server_cpu_s = round(cpu_used, 3)
    m.cpu_us_per_request = round(cpu_used * 1e6 / m.requests, 1) if m.requests else 0.0
    with contextlib.suppress(OSError):
        m.loadavg_1m = round(os.getloadavg()[0], 2)
    problems = []
    if m.non200:
        problems.append(f"{m.non200} non-200 responses (first: {m.first_bad[:120]})")
    if any(errors.values()):
        problems.append("socket errors " + ", ".join(f"{k}={v}" for k, v in errors.items() if v))
    if m.requests == 0:
        problems.append("no request completed")
    m.ok = not problems
    m.error = "; ".join(problems) or None
    return m


def wrk_version(wrk: str) -> str:
    out = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).splitlines()[0] if (out.stdout or out.stderr) else "?"


def source_state() -> dict[str, Any]:
    """Which code was measured: HEAD and the paths changed on top of it (read-only git)."""

    def git(*args: str) -> str:
        out = subprocess.run(
            ["git", "--no-optional-locks", "-C", str(REPO), *args],
            capture_output=True,
            text=True,
            check=False,
        )
        return out.stdout.rstrip("\n") if out.returncode == 0 else ""

    status = git("status", "--porcelain", "--", "src").splitlines()
    changed = [ln[3:] for ln in status if len(ln) > 3]
    return {
        "commit": git("rev-parse", "HEAD") or None,
        "uncommitted_src_paths": changed,
        "compiled_modules": compiled_modules(),
    }


def compiled_modules() -> list[str]:
    """The modules of this installation that run compiled with mypyc (see setup.py)."""
    try:
        from openkms._compiled import compiled_modules as compiled
    except ImportError:
        return []
    return compiled()


def machine() -> dict[str, Any]:
    try:
        load = os.getloadavg()
    except OSError:
        load = (0.0, 0.0, 0.0)
    return {
        "cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu": cpu_description(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "loadavg_at_start": [round(x, 2) for x in load],
    }


@contextlib.contextmanager
def started(targets: Sequence[Target], keep: bool = False) -> Iterator[Path]:
    """Start every target on a fresh temp dir; always stop them (and remove the dir)."""
    workdir = Path(tempfile.mkdtemp(prefix="openkms-bench-"))
    try:
        for target in targets:
            log(f"starting {target.name} …")
            target.start(workdir)
            log(f"  {target.name} on {target.url} (pid {target.proc.pid if target.proc else '?'})")
        yield workdir
    finally:
        for target in targets:
            target.stop()
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


def utc_stamp() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


def write_results(data: dict[str, Any], stem: str | None = None) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{stem or utc_stamp()}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def median_by_key(measurements: Sequence[Measurement]) -> list[Measurement]:
    """One measurement per (target, scenario, connections) over repeated rounds.

    The round with the median req/s is kept (its latencies come with it) and ``rounds_rps``
    lists every round. Any failed round makes the result a failure: errors are never averaged
    away.
    """
    groups: dict[tuple[str, str, int], list[Measurement]] = {}
    for m in measurements:
        groups.setdefault((m.target, m.scenario, m.connections), []).append(m)
    out = []
    for group in groups.values():
        failed = [m for m in group if not m.ok]
        if failed:
            chosen = dataclasses.replace(failed[0])
        else:
            ordered = sorted(group, key=lambda m: m.rps)
            chosen = dataclasses.replace(ordered[(len(ordered) - 1) // 2])
        chosen.rounds_rps = [round(m.rps, 1) for m in group]
        out.append(chosen)
    return out
