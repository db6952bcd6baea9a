"""Several worker processes: each listens on its own socket and the kernel spreads connections.

Linux only (``/proc`` shows which process holds which socket, and ``SO_REUSEPORT`` balances
only there).
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import child_env, create_account, openkms_command

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="SO_REUSEPORT balancing and /proc are Linux's"
)

LISTEN, ESTABLISHED = "0A", "01"


def _tcp_sockets(port: int) -> dict[str, str]:
    """inode -> TCP state of every socket whose local port is ``port``."""
    found: dict[str, str] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port:
                found[fields[9]] = fields[3]
    return found


def _socket_inodes(pid: int) -> set[str]:
    inodes: set[str] = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir() if fd_dir.exists() else ():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = task / "children"
        if children.exists():
            kids.extend(int(p) for p in children.read_text().split())
    return kids


def _workers(pid: int) -> list[int]:
    # uvicorn's supervisor runs the workers, and multiprocessing a resource tracker beside them.
    workers = []
    for kid in _children(pid):
        try:
            cmdline = Path(f"/proc/{kid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"resource_tracker" not in cmdline:
            workers.append(kid)
    return workers


def _listeners(pid: int, port: int) -> dict[int, int]:
    """worker pid -> listening sockets on ``port`` it holds."""
    states = _tcp_sockets(port)
    return {w: sum(1 for i in _socket_inodes(w) if states.get(i) == LISTEN) for w in _workers(pid)}


def _wait_for(predicate, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.1)


@pytest.fixture
def two_workers(server_factory):  # type: ignore[no-untyped-def]
    managed = server_factory.start(extra_args=("--workers", "2"))
    proc = managed.process.process
    assert proc is not None
    port = managed.process.port
    _wait_for(lambda: sorted(_listeners(proc.pid, port).values()) == [1, 1])
    return managed, proc.pid, port


def test_each_worker_listens_on_its_own_socket_and_connections_are_spread(two_workers) -> None:
    managed, pid, port = two_workers
    # The supervisor only reserves the port: it holds no listening socket.
    states = _tcp_sockets(port)
    assert not [i for i in _socket_inodes(pid) if states.get(i) == LISTEN]

    connections = []
    for _ in range(32):  # a client pool opening its keep-alive connections together
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.connect()
        connections.append(conn)
    try:
        for conn in connections:
            conn.request("GET", "/healthz")
            assert conn.getresponse().read()
        states = _tcp_sockets(port)
        held = {
            w: sum(1 for i in _socket_inodes(w) if states.get(i) == ESTABLISHED)
            for w in _workers(pid)
        }
        assert sum(held.values()) == 32, held
        # All 32 on one worker by chance: 2 in 2**32.
        assert min(held.values()) >= 1, held
    finally:
        for conn in connections:
            conn.close()
    assert managed.client().list_keys()["Keys"] is not None


def test_a_killed_worker_is_replaced_with_a_listener_of_its_own(two_workers) -> None:
    managed, pid, port = two_workers
    kms = managed.client()
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    victim = _workers(pid)[0]
    os.kill(victim, signal.SIGKILL)
    _wait_for(
        lambda: victim not in _workers(pid) and sorted(_listeners(pid, port).values()) == [1, 1]
    )
    for _ in range(20):  # new connections each time: both workers answer
        assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"


def test_a_second_server_on_the_same_port_is_refused(two_workers, tmp_path: Path) -> None:
    _, _, port = two_workers
    create_account(tmp_path)
    proc = subprocess.run(
        openkms_command(
            "serve", "--data-dir", str(tmp_path), "--port", str(port), "--workers", "2"
        ),
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
        check=False,
    )
    assert proc.returncode != 0
    assert "address already in use" in (proc.stderr + proc.stdout).lower()


def test_the_default_worker_count_is_one_per_usable_cpu(server_factory) -> None:  # type: ignore[no-untyped-def]
    from openkms.config import MAX_AUTO_WORKERS, usable_cpus

    expected = min(usable_cpus(), MAX_AUTO_WORKERS)
    # 0 is the default (the suite's servers get OPENKMS_WORKERS=1 from child_env).
    managed = server_factory.start(extra_args=("--workers", "0"))
    proc = managed.process.process
    assert proc is not None
    if expected == 1:  # one worker runs in the server process itself
        assert _workers(proc.pid) == []
    else:
        _wait_for(lambda: len(_listeners(proc.pid, managed.process.port)) == expected)
    assert managed.client().list_keys()["Keys"] is not None
