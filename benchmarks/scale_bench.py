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


def measure(count: int, requests: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        started = time.perf_counter()
        creds, key_id = populate(data_dir, count)
        populate_s = time.perf_counter() - started
        port = free_port()
        started = time.perf_counter()
        proc = subprocess.Popen(
            [*OPENKMS, "serve", "--data-dir", str(data_dir), "--port", str(port),
             "--no-rate-limits"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={k: v for k, v in os.environ.items() if not k.startswith("OPENKMS_")},
        )  # fmt: skip
        try:
            while True:
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                    conn.request("GET", "/healthz")
                    conn.getresponse().read()
                    break
                except OSError:
                    time.sleep(0.01)
            ready_s = time.perf_counter() - started
            body, headers = signed(port, creds, key_id)
            latencies = []
            for i in range(requests):
                t = time.perf_counter()
                conn.request("POST", "/", body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                assert response.status == 200, response.status
                if i >= requests // 10:  # the first tenth warms the caches
                    latencies.append(time.perf_counter() - t)
            rss_kib = int(
                Path(f"/proc/{proc.pid}/status").read_text().split("VmRSS:")[1].split()[0]
            )
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    latencies.sort()
    return {
        "keys": count,
        "populate_s": populate_s,
        "ready_s": ready_s,
        "rss_mib": rss_kib / 1024,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "mean_ms": statistics.fmean(latencies) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keys", default="10,100000", help="key counts to compare")
    parser.add_argument("--requests", type=int, default=4000, help="Encrypt requests per count")
    args = parser.parse_args()
    rows = [measure(int(n), args.requests) for n in args.keys.split(",")]
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
