"""Shared fixtures: real openkms server processes, boto3 clients and the AWS CLI.

Under pytest-xdist every worker is its own process, so the session-scoped ``server`` is one
server per worker: its own free loopback port, its own temporary data directory, its own
account. Nothing is started until a test asks for it, so unit tests never pay for a server.

A server's stdout and stderr go to ``server.stdout.log`` and ``server.stderr.log`` in its data
directory (appended to across restarts), so that tests can scan the logs.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.builds import left_to_compiled_run, summary_line

REGION = "us-east-1"
STARTUP_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 15.0
ACCOUNT_VISIBLE_TIMEOUT_SECONDS = 5.0
STDOUT_LOG = "server.stdout.log"
STDERR_LOG = "server.stderr.log"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    # The plain-Python run of `make test` runs the part of the suite that can differ between
    # the builds (tests/builds.py); the compiled run runs everything.
    if left_to_compiled_run(collection_path, Path(__file__).resolve().parent):
        return True
    return None


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    line = summary_line()
    if line:
        terminalreporter.write_line(line, yellow=True)


# --- processes -----------------------------------------------------------------------------------


def openkms_command(*args: str) -> list[str]:
    """The openkms CLI of this interpreter (the venv's), whatever PATH says."""
    return [sys.executable, "-m", "openkms.cli.main", *args]


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for openkms subprocesses: nothing of the caller's openkms or AWS setup
    leaks in (a stray OPENKMS_ROOT_KEY would make the server refuse its own database)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENKMS_", "AWS_")) and k != "PYTEST_XDIST_WORKER"
    }
    # Test servers run without AWS's request quotas (a suite makes bursts of control-plane calls
    # far above them); the throttling tests pass --rate-limits, which wins over this.
    env["OPENKMS_RATE_LIMITS_ENABLED"] = "0"
    # One worker per server (the default is one per CPU): the suite starts dozens of servers at
    # once; tests of several workers pass --workers, which wins over this.
    env["OPENKMS_WORKERS"] = "1"
    env.update(extra or {})
    return env


def create_account(data_dir: Path) -> dict[str, str]:
    """``openkms accounts create``: {AccountId, AccessKeyId, SecretAccessKey, Arn}.

    The output holds a secret, so it is kept in memory only, never written into the data
    directory (the secrets-at-rest test scans that directory)."""
    proc = subprocess.run(
        openkms_command("accounts", "create", "--data-dir", str(data_dir)),
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"openkms accounts create failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}"
        )
    account: dict[str, str] = json.loads(proc.stdout)
    return account


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Server:
    """What a test needs to talk to one openkms server as one account."""

    endpoint: str
    access_key_id: str
    secret_access_key: str
    account_id: str
    data_dir: Path
    region: str = REGION
    principal_arn: str = ""

    def as_account(self, account: dict[str, str]) -> Server:
        return replace(
            self,
            access_key_id=account["AccessKeyId"],
            secret_access_key=account["SecretAccessKey"],
            account_id=account["AccountId"],
            principal_arn=account.get("Arn", ""),
        )

    def key_arn(self, key_id: str, region: str | None = None) -> str:
        return f"arn:aws:kms:{region or self.region}:{self.account_id}:key/{key_id}"

    def alias_arn(self, alias_name: str, region: str | None = None) -> str:
        return f"arn:aws:kms:{region or self.region}:{self.account_id}:{alias_name}"

    def client(self, region: str | None = None, **config: Any) -> BaseClient:
        return make_client(self, region=region, **config)

    @property
    def stdout_log(self) -> Path:
        return self.data_dir / STDOUT_LOG

    @property
    def stderr_log(self) -> Path:
        return self.data_dir / STDERR_LOG


def server_from_account(endpoint: str, data_dir: Path, account: dict[str, str]) -> Server:
    return Server(
        endpoint=endpoint,
        access_key_id=account["AccessKeyId"],
        secret_access_key=account["SecretAccessKey"],
        account_id=account["AccountId"],
        data_dir=data_dir,
        principal_arn=account.get("Arn", ""),
    )


@dataclass
class ServerProcess:
    """One ``openkms serve`` subprocess on a data directory."""

    data_dir: Path
    extra_args: Sequence[str] = ()
    port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        last_error: Exception | None = None
        for _ in range(3):  # another process may grab the free port between probe and bind
            self.port = free_port()
            try:
                self._start_once()
                return
            except RuntimeError as exc:
                last_error = exc
                if "address already in use" not in str(exc).lower():
                    raise
        assert last_error is not None
        raise last_error

    def _start_once(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        stderr_offset = self._log_size(STDERR_LOG)
        with (
            open(self.data_dir / STDOUT_LOG, "ab") as out,
            open(self.data_dir / STDERR_LOG, "ab") as err,
        ):
            self.process = subprocess.Popen(
                openkms_command(
                    "serve",
                    "--data-dir",
                    str(self.data_dir),
                    "--port",
                    str(self.port),
                    *self.extra_args,
                ),
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env=child_env(),
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while True:
            code = self.process.poll()
            if code is not None:
                raise RuntimeError(
                    f"openkms serve exited with {code} before it was healthy; stderr:\n"
                    + self._log_tail(STDERR_LOG, stderr_offset)
                )
            if self._healthy():
                return
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"openkms serve on port {self.port} not healthy after "
                    f"{STARTUP_TIMEOUT_SECONDS:.0f}s; stderr:\n"
                    + self._log_tail(STDERR_LOG, stderr_offset)
                )
            time.sleep(0.05)

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.endpoint}/healthz", timeout=2) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            return False

    def _log_size(self, name: str) -> int:
        path = self.data_dir / name
        return path.stat().st_size if path.exists() else 0

    def _log_tail(self, name: str, offset: int) -> str:
        path = self.data_dir / name
        if not path.exists():
            return "<no log>"
        return path.read_bytes()[offset:].decode("utf-8", "replace")[-8000:]

    def stop(self) -> int | None:
        """SIGTERM, then wait for the graceful shutdown; SIGKILL only if it hangs."""
        proc = self.process
        if proc is None:
            return None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=STOP_TIMEOUT_SECONDS)
        self.process = None
        return proc.returncode

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


# --- clients ---------------------------------------------------------------------------------
def make_client(
    server: Server,
    *,
    region: str | None = None,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    **config: Any,
) -> BaseClient:
    """A boto3 KMS client for ``server`` (one attempt, no retries, unless ``config`` says)."""
    options: dict[str, Any] = {"retries": {"max_attempts": 1}}
    options.update(config)
    session = boto3.session.Session()
    return session.client(
        "kms",
        endpoint_url=server.endpoint,
        region_name=region or server.region,
        aws_access_key_id=access_key_id or server.access_key_id,
        aws_secret_access_key=secret_access_key or server.secret_access_key,
        config=Config(**options),
    )


def wait_until_recognized(
    server: Server, timeout: float = ACCOUNT_VISIBLE_TIMEOUT_SECONDS
) -> float:
    """Polls until the server accepts ``server``'s credentials; returns the seconds it took."""
    client = make_client(server)
    started = time.monotonic()
    while True:
        try:
            client.list_keys(Limit=1)
            return time.monotonic() - started
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "UnrecognizedClientException":
                raise
        if time.monotonic() - started > timeout:
            raise AssertionError(
                f"the server did not recognize account {server.account_id} within {timeout}s"
            )
        time.sleep(0.05)


# --- session server --------------------------------------------------------------------------
@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One openkms server for this xdist worker (or for the whole run without xdist)."""
    data_dir = tmp_path_factory.mktemp("openkms-server")
    account = create_account(data_dir)
    proc = ServerProcess(data_dir)
    proc.start()
    try:
        yield server_from_account(proc.endpoint, data_dir, account)
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def kms(server: Server) -> BaseClient:
    """boto3 KMS client of the session server's first account, in us-east-1."""
    return make_client(server)


@pytest.fixture(scope="session")
def kms_unvalidated(server: Server) -> BaseClient:
    """Like ``kms`` but with botocore's client-side validation off, so the server's own
    validation answers."""
    return make_client(server, parameter_validation=False)


@pytest.fixture(scope="session")
def second_account(server: Server) -> Server:
    """Another account on the session server, created while it runs (``accounts create`` on the
    same data directory); returned once the server recognizes it."""
    other = server.as_account(create_account(server.data_dir))
    wait_until_recognized(other)
    return other


@pytest.fixture(scope="session")
def kms_second(second_account: Server) -> BaseClient:
    return make_client(second_account)


# --- the AWS CLI -----------------------------------------------------------------------------
@dataclass(frozen=True)
class CliResult:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)


def aws_cli_command() -> list[str]:
    beside = Path(sys.executable).with_name("aws")
    if beside.exists():
        return [sys.executable, str(beside)]
    return [sys.executable, "-m", "awscli"]


AwsCli = Callable[..., CliResult]


def run_aws_cli(
    server: Server,
    *args: str,
    region: str | None = None,
    output: str = "json",
    check: bool = True,
    cwd: Path | None = None,
    timeout: float = 60.0,
) -> CliResult:
    """``aws kms <args> --output <output>`` against ``server`` with its credentials in the
    environment (no config file, no profile)."""
    nowhere = str(server.data_dir / "no-such-aws-config")
    env = child_env(
        {
            "AWS_ACCESS_KEY_ID": server.access_key_id,
            "AWS_SECRET_ACCESS_KEY": server.secret_access_key,
            "AWS_DEFAULT_REGION": region or server.region,
            "AWS_ENDPOINT_URL_KMS": server.endpoint,
            "AWS_CONFIG_FILE": nowhere,
            "AWS_SHARED_CREDENTIALS_FILE": nowhere,
            "AWS_MAX_ATTEMPTS": "1",
            "AWS_PAGER": "",
        }
    )
    full = (*aws_cli_command(), "kms", *args, "--output", output)
    proc = subprocess.run(
        full, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout, check=False
    )
    result = CliResult(tuple(full), proc.returncode, proc.stdout, proc.stderr)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(full)} failed ({proc.returncode}):\n{proc.stderr}")
    return result


@pytest.fixture(scope="session")
def aws_cli(server: Server) -> AwsCli:
    """``aws_cli("create-key", "--description", "x").json`` runs the AWS CLI against the session
    server; ``server=`` picks another server or account, ``check=False`` allows failure."""

    def run(*args: str, server: Server = server, **kwargs: Any) -> CliResult:
        return run_aws_cli(server, *args, **kwargs)

    return run


# --- extra, short-lived servers --------------------------------------------------------------
@dataclass
class ManagedServer:
    """A server the factory started: ``server`` to talk to it, ``stop()`` to end it."""

    process: ServerProcess
    server: Server
    account: dict[str, str]

    def stop(self) -> int | None:
        return self.process.stop()

    def client(self, **kwargs: Any) -> BaseClient:
        return make_client(self.server, **kwargs)


class ServerFactory:
    """Starts servers on data directories of the test's choosing (for restart tests); every
    server still running at the end of the test is stopped."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._tmp = tmp_path_factory
        self._started: list[ServerProcess] = []

    def new_data_dir(self, name: str = "openkms-extra") -> Path:
        return self._tmp.mktemp(name)

    def create_account(self, data_dir: Path) -> dict[str, str]:
        return create_account(data_dir)

    def start(
        self,
        data_dir: Path | None = None,
        *,
        account: dict[str, str] | None = None,
        extra_args: Sequence[str] = (),
    ) -> ManagedServer:
        """A server on ``data_dir`` (a fresh one if None), talking as ``account`` (a new account
        is created if None)."""
        data_dir = data_dir or self.new_data_dir()
        account = account or create_account(data_dir)
        proc = ServerProcess(data_dir, extra_args=extra_args)
        self._started.append(proc)
        proc.start()
        return ManagedServer(proc, server_from_account(proc.endpoint, data_dir, account), account)

    def stop_all(self) -> None:
        for proc in self._started:
            with contextlib.suppress(Exception):
                proc.stop()
        self._started.clear()


@pytest.fixture
def server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFactory]:
    factory = ServerFactory(tmp_path_factory)
    try:
        yield factory
    finally:
        factory.stop_all()
