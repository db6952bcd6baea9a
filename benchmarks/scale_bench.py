#!/usr/bin/env python3
"""Does openkms slow down or grow with the number of keys it stores?

For 10 and for 100,000 stored keys (made through the real CreateKey code path, in process, in one
transaction so that populating takes seconds): start to ready, resident memory of the worker, and
the latency of Encrypt on one key over one connection (SigV4-signed requests replayed on a
keep-alive connection). Prints one table; compare the rows of one run."""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if sys.prefix == sys.base_prefix:  # re-run inside the repository's virtualenv
    venv = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "python"
    if venv.exists():
        os.execv(str(venv), [str(venv), *sys.argv])

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from openkms.clock import SystemClock
from openkms.config import Settings
from openkms.http.wiring import build_runtime
from openkms.service import keys
from openkms.service.accounts import create_account
from openkms.service.context import Principal, RequestContext

ROOT = Path(__file__).resolve().parents[1]
OPENKMS = [sys.executable, "-m", "openkms.cli.main"]


def populate(data_dir: Path, count: int) -> tuple[dict[str, str], str]:
    wired = build_runtime(Settings(data_dir=str(data_dir)).validate())
    rt = wired.runtime
    issued = create_account(rt.storage, wired.root, SystemClock())
    principal = Principal(
        issued.account_id, issued.principal_arn, "root", issued.access_key_id, issued.account_id
    )
    ctx = RequestContext(principal, "us-east-1", "populate", time.time(), "CreateKey")
    key_id = ""
    with rt.storage.transaction():
        for _ in range(count):
            key_id = keys.create_key(rt, ctx, {})["KeyMetadata"]["KeyId"]
    wired.storage.close()
    creds = {"AccessKeyId": issued.access_key_id, "SecretAccessKey": issued.secret_access_key}
    return creds, key_id


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def signed(port: int, creds: dict[str, str], key_id: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"KeyId": key_id, "Plaintext": "aGVsbG8gd29ybGQ="}).encode()
    request = AWSRequest(
        method="POST",
        url=f"http://127.0.0.1:{port}/",
        data=body,
        headers={
            "X-Amz-Target": "TrentService.Encrypt",
            "Content-Type": "application/x-amz-json-1.1",
        },
    )
    SigV4Auth(
        Credentials(creds["AccessKeyId"], creds["SecretAccessKey"]), "kms", "us-east-1"
    ).add_auth(request)
    return body, dict(request.headers.items())


class Running:
    """One server on its own data directory, with a keep-alive connection and a signed Encrypt."""

    def __init__(self, count: int, tmp: Path) -> None:
        self.count = count
        data_dir = tmp / f"data-{count}"
        started = time.perf_counter()
        creds, key_id = populate(data_dir, count)
        self.populate_s = time.perf_counter() - started
        port = free_port()
        started = time.perf_counter()
        self.proc = subprocess.Popen(
            [*OPENKMS, "serve", "--data-dir", str(data_dir), "--port", str(port),
             "--no-rate-limits"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={k: v for k, v in os.environ.items() if not k.startswith("OPENKMS_")},
        )  # fmt: skip
        self.port = port
        while True:
            try:
                self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                self.conn.request("GET", "/healthz")
                self.conn.getresponse().read()
                break
            except OSError:
                time.sleep(0.01)
        self.ready_s = time.perf_counter() - started
        self.conn.close()
        self.body, self.headers = signed(port, creds, key_id)
        self.latencies: list[float] = []

    def encrypt(self, n: int, keep: bool = True) -> None:
        for _ in range(n):
            t = time.perf_counter()
            self.conn.request("POST", "/", body=self.body, headers=self.headers)
            response = self.conn.getresponse()
            response.read()
            assert response.status == 200, response.status
            if keep:
                self.latencies.append(time.perf_counter() - t)

    def result(self) -> dict[str, float]:
        rss_kib = int(
            Path(f"/proc/{self.proc.pid}/status").read_text().split("VmRSS:")[1].split()[0]
        )
        latencies = sorted(self.latencies)
        return {
            "keys": self.count,
            "populate_s": self.populate_s,
            "ready_s": self.ready_s,
            "rss_mib": rss_kib / 1024,
            "p50_ms": statistics.median(latencies) * 1000,
            "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
            "mean_ms": statistics.fmean(latencies) * 1000,
        }

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def measure_all(counts: list[int], requests: int, rounds: int = 10) -> list[dict[str, float]]:
    """Both servers run at once and are measured in alternating batches, so that the machine's
    noise (it is shared) falls on both alike rather than on whichever ran second."""
    with tempfile.TemporaryDirectory() as tmp:
        servers: list[Running] = []
        try:
            for count in counts:
                servers.append(Running(count, Path(tmp)))
            for server in servers:
                # A new connection: the first server's would have idled out while the others
                # were populated.
                server.conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
                server.encrypt(requests // 10, keep=False)  # warms the caches
            per_round = max(1, requests // rounds)
            for index in range(rounds):
                order = servers if index % 2 == 0 else list(reversed(servers))
                for server in order:
                    server.encrypt(per_round)
            return [server.result() for server in servers]
        finally:
            for server in servers:
                server.stop()


def measure(count: int, requests: int) -> dict[str, float]:
    return measure_all([count], requests)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keys", default="10,100000", help="key counts to compare")
    parser.add_argument("--requests", type=int, default=4000, help="Encrypt requests per count")
    args = parser.parse_args()
    rows = measure_all([int(n) for n in args.keys.split(",")], args.requests)
    print(f"{'keys':>8} {'populate s':>10} {'ready s':>8} {'RSS MiB':>8} {'p50 ms':>7} "
          f"{'p99 ms':>7} {'mean ms':>8}")  # fmt: skip
    for r in rows:
        print(
            f"{r['keys']:>8,.0f} {r['populate_s']:>10.1f} {r['ready_s']:>8.2f} "
            f"{r['rss_mib']:>8.1f} {r['p50_ms']:>7.3f} {r['p99_ms']:>7.3f} {r['mean_ms']:>8.3f}"
        )
    if len(rows) == 2:
        print(f"mean latency ratio: {rows[1]['mean_ms'] / rows[0]['mean_ms']:.3f}")


if __name__ == "__main__":
    main()
