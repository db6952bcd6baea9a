"""A throwaway PostgreSQL cluster for tests: ``initdb`` + ``pg_ctl`` on a free loopback port in a
temporary directory, trust authentication, never anyone's real database.

PostgreSQL refuses to run as root. When the tests run as root (as on CI) every server-side
command (``initdb``, ``pg_ctl``) runs as the ``postgres`` system user through ``runuser``, and
the cluster lives in a directory of its own under the system temp dir that this user owns (the
pytest temp dirs are private to root). Client tools (``pg_dump``, ``pg_restore``) and psycopg
connect over TCP as the cluster's superuser ``openkms``, so they run as anyone.

    cluster = PgCluster.create()          # initdb + start
    url = cluster.create_database()       # postgresql://openkms@127.0.0.1:PORT/t_<random>
    cluster.restart(down_seconds=1.0)     # pg_ctl stop -m fast; sleep; pg_ctl start
    cluster.destroy()

``shared_cluster()`` gives every test of one process (one xdist worker) the same cluster; it is
stopped when the process exits.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from tests.components import hidden, unavailable

SUPERUSER = "openkms"
OS_USER_WHEN_ROOT = "postgres"
START_TIMEOUT_SECONDS = 30


class PostgresMissing(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


def find_bin_dir() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``: the newest /usr/lib/postgresql/*/bin,
    else wherever PATH finds them (or $OPENKMS_TEST_PG_BIN)."""
    if hidden("postgresql"):
        return None
    forced = os.environ.get("OPENKMS_TEST_PG_BIN")
    candidates = [Path(forced)] if forced else []
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += sorted(
        (Path(p) for p in versions),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    for candidate in candidates:
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    return None


def missing_reason() -> str:
    return (
        "PostgreSQL is NOT INSTALLED on this machine: no initdb/pg_ctl in "
        "/usr/lib/postgresql/*/bin or on PATH. The PostgreSQL storage contract and the "
        "multi-node tests did not run. Install it (apt-get install -y postgresql) to run them."
    )


def require_postgres() -> None:
    """Skips loudly (fails under CI) when no PostgreSQL server binaries exist here."""
    if find_bin_dir() is None:
        postgres_missing()


def postgres_missing() -> NoReturn:
    unavailable("postgresql", missing_reason())


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _os_user() -> str | None:
    """The system user to run server commands as, or None to run them as ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(OS_USER_WHEN_ROOT)
    except KeyError as exc:
        raise RuntimeError(
            "running as root, and PostgreSQL refuses root: create a 'postgres' system user "
            "(the Debian package does) so the tests can run initdb and pg_ctl as it"
        ) from exc
    return OS_USER_WHEN_ROOT


@dataclass
class PgCluster:
    bin_dir: Path
    base: Path  # our temp dir: data/ and server.log inside
    port: int
    os_user: str | None
    running: bool = field(default=False)

    @property
    def data_dir(self) -> Path:
        return self.base / "data"

    @property
    def log_file(self) -> Path:
        return self.base / "server.log"

    # -- lifecycle ------------------------------------------------------------------------------
    @classmethod
    def create(cls, *, durable: bool = False) -> PgCluster:
        """initdb and start. Tests run with fsync off (fast; durability across a crash of the
        whole machine is not what they test); ``durable`` keeps PostgreSQL's defaults, for
        benchmarks."""
        bin_dir = find_bin_dir()
        if bin_dir is None:
            raise PostgresMissing(missing_reason())
        os_user = _os_user()
        base = Path(tempfile.mkdtemp(prefix="openkms-pg-"))
        base.chmod(0o700)
        if os_user is not None:
            entry = pwd.getpwnam(os_user)
            os.chown(base, entry.pw_uid, entry.pw_gid)
        cluster = cls(bin_dir, base, 0, os_user)
        try:
            cluster._run(
                "initdb",
                "-D",
                str(cluster.data_dir),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            )
            with open(cluster.data_dir / "postgresql.conf", "a") as conf:
                conf.write(
                    "\n# openkms tests\n"
                    "listen_addresses = '127.0.0.1'\n"
                    f"unix_socket_directories = '{cluster.base}'\n"
                    + ("" if durable else "fsync = off\nfull_page_writes = off\n")
                    + "synchronous_commit = on\n"
                    "max_connections = 200\n"
                    "shared_buffers = 32MB\n"
                    "log_min_messages = warning\n"
                )
            cluster.start()
        except BaseException:
            cluster.destroy()
            raise
        return cluster

    def _command(self, tool: str, *args: str) -> list[str]:
        command = [str(self.bin_dir / tool), *args]
        if self.os_user is not None:
            command = ["runuser", "-u", self.os_user, "--", *command]
        return command

    def _run(self, tool: str, *args: str, timeout: float = 120) -> str:
        proc = subprocess.run(
            self._command(tool, *args),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self.base,
            env={**os.environ, "LC_ALL": "C.UTF-8"},
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"{tool} {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}"
                + self._log_tail()
            )
        return proc.stdout

    def _log_tail(self) -> str:
        if not self.log_file.exists():
            return ""
        return "\nserver log:\n" + self.log_file.read_text("utf-8", "replace")[-4000:]

    def _pg_start(self) -> None:
        self._run(
            "pg_ctl",
            "start",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            "-w",
            "-t",
            str(START_TIMEOUT_SECONDS),
            "-o",
            f"-p {self.port}",
        )
        self.running = True

    def start(self) -> None:
        """pg_ctl start on a free port (a new one if the old one was taken meanwhile)."""
        last: Exception | None = None
        for _ in range(3):
            if not self.port or last is not None:
                self.port = free_port()
            try:
                self._pg_start()
                return
            except RuntimeError as exc:
                last = exc
        assert last is not None
        raise last

    def stop(self, mode: str = "fast") -> None:
        if not self.running:
            return
        self._run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", mode, "-w")
        self.running = False

    def restart(self, down_seconds: float = 0.0) -> None:
        """Stops the server (``fast``: every connection is cut), waits, starts it on the same
        port."""
        self.stop("fast")
        time.sleep(down_seconds)
        self._pg_start()

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)

    # -- databases ------------------------------------------------------------------------------
    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; returns its URL."""
        import psycopg

        name = name or f"t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(self.url(), autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        import psycopg

        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.url(), autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def create_schema(self, database_url: str) -> str:
        """A new empty schema in a database; returns a URL whose connections use it (through
        libpq's ``options``), e.g. one per test of a suite: much cheaper than a database."""
        import psycopg

        name = f"s_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(database_url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'CREATE SCHEMA "{name}"')
        return f"{database_url}?options=-c%20search_path%3D{name}"

    def drop_schema(self, schema_url: str) -> None:
        import psycopg

        database_url, _, options = schema_url.partition("?")
        name = options.rsplit("%3D", 1)[1]
        with psycopg.connect(database_url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')

    def client_tool(self, tool: str) -> str:
        """A client tool of the same version as the server (pg_dump, pg_restore, psql)."""
        return str(self.bin_dir / tool)


_shared: PgCluster | None = None


def shared_cluster() -> PgCluster:
    """This process's cluster, started on first use and destroyed when the process exits.
    Raises PostgresMissing when PostgreSQL is not installed."""
    global _shared
    if _shared is None:
        _shared = PgCluster.create()
        atexit.register(_shared.destroy)
    return _shared
