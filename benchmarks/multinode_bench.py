#!/usr/bin/env python3
"""Encrypt throughput: one node on SQLite, one node on PostgreSQL, two nodes on PostgreSQL.

    .venv/bin/python benchmarks/multinode_bench.py                  # 8 s each, 32 connections
    .venv/bin/python benchmarks/multinode_bench.py --duration 3     # a quick run
    .venv/bin/python benchmarks/multinode_bench.py --client python  # boto3 threads, not wrk
    .venv/bin/python benchmarks/multinode_bench.py --database postgresql://user@host/db

Every node is a real ``openkms serve`` process (one worker, rate limits off) on its own port.
PostgreSQL is a throwaway cluster started for the run (initdb + pg_ctl on a free port, fsync on,
as tests/integration/pg.py makes it), unless --database names one (its data is left there).

The load is wrk replaying one SigV4-signed Encrypt request (the signature stays valid for the
server's clock-skew window), or, with --client python or when wrk is not installed, a pool of
threads each with its own boto3 client. Two nodes get half the connections each (one wrk per
node, or threads alternating between the two endpoints); their figures are added up.

Prints one table; the figures depend on the machine: on a 2-core machine the nodes, the load
generator and PostgreSQL share the same two cores.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # tests.integration.pg: the throwaway cluster

REGION = "us-east-1"
JSON_TYPE = "application/x-amz-json-1.1"
PLAINTEXT = base64.b64encode(b"a small secret: 32 bytes of data").decode()


def log(message: str) -> None:
    print(f"[multinode-bench] {message}", file=sys.stderr, flush=True)


# -- servers ------------------------------------------------------------------------------------
def openkms(*args: str) -> list[str]:
    return [sys.executable, "-m", "openkms.cli.main", *args]


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("OPENKMS_", "AWS_"))}


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Node:
    data_dir: Path
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def create_account(data_dir: Path, database: str | None) -> dict[str, str]:
    args = ["accounts", "create", "--data-dir", str(data_dir)]
    if database:
        args += ["--database", database]
    proc = subprocess.run(
        openkms(*args), capture_output=True, text=True, env=clean_env(), check=False
    )
    if proc.returncode != 0:
        sys.exit(f"openkms accounts create failed:\n{proc.stderr}")
    account: dict[str, str] = json.loads(proc.stdout)
    return account


def start_node(data_dir: Path, database: str | None) -> Node:
    port = free_port()
    args = ["serve", "--data-dir", str(data_dir), "--port", str(port), "--no-rate-limits"]
    if database:
        args += ["--database", database]
    logfile = open(data_dir / "server.log", "ab")  # noqa: SIM115 - lives as long as the node
    process = subprocess.Popen(
        openkms(*args), stdout=logfile, stderr=subprocess.STDOUT, env=clean_env()
    )
    node = Node(data_dir, port, process)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"openkms serve exited:\n{(data_dir / 'server.log').read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{node.url}/healthz", timeout=2) as resp:
                if resp.status == 200:
                    return node
        except OSError:
            pass
        time.sleep(0.1)
    process.kill()
    sys.exit(f"openkms serve on {port} not healthy after 60 s")


def stop(nodes: list[Node]) -> None:
    for node in nodes:
        node.process.terminate()
    for node in nodes:
        try:
            node.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            node.process.kill()


def start_deployment(
    base: Path,
    name: str,
    count: int,
    database: str | None,
    same_as: tuple[Path, dict[str, str]] | None = None,
) -> tuple[list[Node], dict[str, str]]:
    """``count`` nodes on one database with one root key (node 0's, copied 0600 to the
    others). ``same_as``: (a data dir, its account) of an earlier deployment on this database,
    whose root key and account to reuse (the database refuses another root key)."""
    dirs = [base / f"{name}-{i}" for i in range(count)]
    for d in dirs:
        d.mkdir(parents=True)
    if same_as is None:
        account = create_account(dirs[0], database)
        source = dirs[0]
    else:
        source, account = same_as
    for d in dirs:
        if d != source:
            shutil.copyfile(source / "root.key", d / "root.key")
            (d / "root.key").chmod(0o600)
    nodes = [start_node(d, database) for d in dirs]
    return nodes, account


# -- requests -----------------------------------------------------------------------------------
def signed(url: str, account: dict[str, str], operation: str, payload: dict[str, Any]) -> Any:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    body = json.dumps(payload, separators=(",", ":")).encode()
    request = AWSRequest(
        method="POST",
        url=url + "/",
        data=body,
        headers={"Content-Type": JSON_TYPE, "X-Amz-Target": f"TrentService.{operation}"},
    )
    creds = Credentials(account["AccessKeyId"], account["SecretAccessKey"])
    SigV4Auth(creds, "kms", REGION).add_auth(request)
    headers = dict(request.headers.items())
    headers["Host"] = url.split("://", 1)[1]
    return headers, body


def call(url: str, account: dict[str, str], operation: str, payload: dict[str, Any]) -> Any:
    headers, body = signed(url, account, operation, payload)
    request = urllib.request.Request(url + "/", data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


# -- load: wrk ----------------------------------------------------------------------------------
LUA_DONE = r"""
done = function(summary, latency, requests)
  io.write(string.format(
    "BENCH_JSON {\"requests\":%d,\"duration_us\":%d,\"non2xx\":%d,\"socket_errors\":%d," ..
    "\"p50_us\":%d,\"p99_us\":%d}\n",
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def lua_string(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return '"' + "".join(f"\\{b:03d}" for b in raw) + '"'


def wrk_script(headers: dict[str, str], body: bytes) -> str:
    lines = ['wrk.method = "POST"', f"wrk.body = {lua_string(body)}"]
    lines += [f"wrk.headers[{lua_string(k)}] = {lua_string(v)}" for k, v in headers.items()]
    return "\n".join(lines) + "\n" + LUA_DONE


@dataclass
class Result:
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def run_wrk(
    wrk: str, targets: list[tuple[str, str]], connections: int, duration: int, workdir: Path
) -> Result:
    """One wrk per target (url, script), all at once, connections split between them."""
    per = max(1, connections // len(targets))
    procs = []
    for i, (url, script) in enumerate(targets):
        path = workdir / f"encrypt-{i}.lua"
        path.write_text(script)
        threads = max(1, min(per, (os.cpu_count() or 2) // len(targets) or 1))
        procs.append(
            subprocess.Popen(
                [
                    wrk,
                    "-t",
                    str(threads),
                    "-c",
                    str(per),
                    "-d",
                    f"{duration}s",
                    "--latency",
                    "-s",
                    str(path),
                    url + "/",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    parsed = []
    for proc in procs:
        out, err = proc.communicate(timeout=duration + 60)
        found = re.search(r"BENCH_JSON (\{.*\})", out)
        if proc.returncode != 0 or not found:
            sys.exit(f"wrk failed ({proc.returncode}):\n{out}\n{err}")
        parsed.append(json.loads(found.group(1)))
    seconds = max(p["duration_us"] for p in parsed) / 1e6
    return Result(
        requests=sum(p["requests"] for p in parsed) - sum(p["non2xx"] for p in parsed),
        seconds=seconds,
        errors=sum(p["non2xx"] + p["socket_errors"] for p in parsed),
        # Each wrk reports its own percentiles; the table shows the worse of them.
        p50_ms=max(p["p50_us"] for p in parsed) / 1000,
        p99_ms=max(p["p99_us"] for p in parsed) / 1000,
    )


# -- load: Python -------------------------------------------------------------------------------
def run_python(
    urls: list[str], account: dict[str, str], key_id: str, connections: int, duration: int
) -> Result:
    """``connections`` threads, each with its own boto3 client, alternating between the URLs."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session()
    clients = [
        session.client(
            "kms",
            endpoint_url=urls[i % len(urls)],
            region_name=REGION,
            aws_access_key_id=account["AccessKeyId"],
            aws_secret_access_key=account["SecretAccessKey"],
            config=Config(retries={"total_max_attempts": 1}, max_pool_connections=2),
        )
        for i in range(connections)
    ]
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    plaintext = base64.b64decode(PLAINTEXT)
    end = time.monotonic() + duration

    def loop(client: Any) -> None:
        mine: list[float] = []
        failed = 0
        while time.monotonic() < end:
            started = time.perf_counter()
            try:
                client.encrypt(KeyId=key_id, Plaintext=plaintext)
            except Exception:  # counted, not raised
                failed += 1
                continue
            mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)
            errors[0] += failed

    started = time.monotonic()
    with ThreadPoolExecutor(connections) as pool:
        list(pool.map(loop, clients))
    seconds = time.monotonic() - started
    ordered = sorted(latencies) or [0.0]
    return Result(
        requests=len(latencies),
        seconds=seconds,
        errors=errors[0],
        p50_ms=statistics.median(ordered) * 1000,
        p99_ms=ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
    )


# -- the run ------------------------------------------------------------------------------------
def measure(
    args: argparse.Namespace,
    wrk: str | None,
    nodes: list[Node],
    account: dict[str, str],
    workdir: Path,
) -> Result:
    key_id = call(nodes[0].url, account, "CreateKey", {"Description": "bench"})["KeyMetadata"][
        "KeyId"
    ]
    payload = {"KeyId": key_id, "Plaintext": PLAINTEXT}
    for node in nodes:  # every node has the key cached and the request path warm
        for _ in range(20):
            call(node.url, account, "Encrypt", payload)
    if wrk:
        targets = [(n.url, wrk_script(*signed(n.url, account, "Encrypt", payload))) for n in nodes]
        if args.warmup:
            run_wrk(wrk, targets, args.connections, args.warmup, workdir)
        return run_wrk(wrk, targets, args.connections, args.duration, workdir)
    urls = [n.url for n in nodes]
    return run_python(urls, account, key_id, args.connections, args.duration)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=8, help="seconds per measurement (8)")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up seconds (1)")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections (32)")
    parser.add_argument(
        "--client", choices=["auto", "wrk", "python"], default="auto", help="load generator"
    )
    parser.add_argument("--database", help="a PostgreSQL URL to use instead of a throwaway cluster")
    args = parser.parse_args(argv)

    wrk = shutil.which("wrk") if args.client in ("auto", "wrk") else None
    if args.client == "wrk" and not wrk:
        sys.exit("wrk is not installed (apt-get install -y wrk)")
    cluster = None
    database = args.database
    if database is None:
        from tests.integration.pg import PgCluster

        log("starting a throwaway PostgreSQL cluster (fsync on)")
        cluster = PgCluster.create(durable=True)
        database = cluster.create_database("openkms_bench")
    rows: list[tuple[str, int, Result]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="openkms-multinode-bench-") as tmp:
            base = Path(tmp)
            plans = [
                ("one node, SQLite", "sqlite", 1, None),
                ("one node, PostgreSQL", "pg1", 1, database),
                ("two nodes, PostgreSQL", "pg2", 2, database),
            ]
            same_as: tuple[Path, dict[str, str]] | None = None
            for label, name, count, db in plans:
                log(f"{label}: starting {count} node(s)")
                nodes, account = start_deployment(
                    base, name, count, db, same_as if db is not None else None
                )
                if db is not None and same_as is None:
                    same_as = (nodes[0].data_dir, account)
                try:
                    log(f"{label}: {args.duration} s of Encrypt, {args.connections} connections")
                    rows.append((label, count, measure(args, wrk, nodes, account, base)))
                finally:
                    stop(nodes)
    finally:
        if cluster is not None:
            cluster.destroy()

    client = f"wrk ({wrk})" if wrk else "Python: boto3 clients in threads"
    print(f"\nEncrypt throughput, {args.duration} s each, {args.connections} connections, {client}")
    print(f"machine: {os.cpu_count()} CPUs\n")
    header = (
        f"{'deployment':<24} {'nodes':>5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}"
    )
    print(header)
    print("-" * len(header))
    base_rps = rows[0][2].rps or 1.0
    for label, count, result in rows:
        print(
            f"{label:<24} {count:>5} {result.rps:>9.0f} {result.p50_ms:>8.2f} "
            f"{result.p99_ms:>8.2f} {result.errors:>7}   ({result.rps / base_rps:.2f}x)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
