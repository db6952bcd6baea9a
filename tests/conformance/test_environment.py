"""A server started from a shell that carries the project's build and test switches starts
(`OPENKMS_PURE_PYTHON=1 make run` used to exit 2: "unknown setting")."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from pathlib import Path

from tests.conftest import child_env, create_account, free_port, openkms_command


def test_server_starts_with_build_and_test_switches_in_its_environment(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    create_account(data_dir)
    port = free_port()
    env = child_env(
        {
            "OPENKMS_PURE_PYTHON": "1",
            "OPENKMS_REQUIRE_COMPILED": "1",
            "OPENKMS_TEST_PG_BIN": "/usr/lib/postgresql/15/bin",
            "OPENKMS_TEST_BUILD": "pure",
        }
    )
    proc = subprocess.Popen(
        openkms_command("serve", "--port", str(port), "--data-dir", str(data_dir)),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline, "the server did not answer /healthz"
                time.sleep(0.1)
    finally:
        proc.terminate()
        proc.communicate(timeout=15)
