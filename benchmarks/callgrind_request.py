#!/usr/bin/env python3
"""Instructions per request, counted by valgrind's callgrind: a repeatable measure of cost.

    benchmarks/callgrind_request.py                          # Encrypt, root, full HTTP path
    benchmarks/callgrind_request.py --op Decrypt --caller iam-user
    benchmarks/callgrind_request.py --path trivial           # the calibration app, same stack
    benchmarks/callgrind_request.py --annotate 30            # and the top functions

On a shared machine wall-clock figures move by 2-3x from one minute to the next; instruction
counts do not. Each measurement runs the request loop twice under callgrind, with ``--requests``
and with twice as many, and divides the difference of the two totals by the difference of the
request counts, so that start-up (imports, the app, the data directory) drops out.

Paths:

* ``http`` (default): the raw bytes of a signed request fed to the server's protocol
  (``CoalescingHttpToolsProtocol``: httptools, uvicorn's request cycle, the ASGI app, the
  coalesced write) on a uvloop event loop, the response collected by a recording transport.
  What a worker does per request, minus the kernel's socket work.
* ``dispatch``: ``OpenKMSApp._dispatch`` alone (authentication to the encoded response).
* ``trivial``: the calibration app of ``benchmarks/run`` (``trivial_server.py``) on the
  ``http`` path: the server stack's own cost, the denominator of "CPU x trivial".
* ``no-asgi``: the sketch that measured, before ``direct_api`` was built, what uvicorn's
  request cycle and the ASGI messages cost openkms per request: the request answered from the
  protocol's own callbacks (``OpenKMSApp._dispatch`` when the body is complete, the response
  written as bytes). The ``http`` path now runs the server's own direct answers
  (``direct_api``, on by default); docs/benchmarks.md, "Ninth session".

The audit log is on (as shipped) with a flush interval longer than the run, and is flushed at
the end inside the measurement, so writing the lines is counted without timer noise. Valgrind
hides the CPU's SHA extensions: SHA-256 is counted at its generic software cost (see
docs/benchmarks.md, "Fifth session").
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import kmsbench as kb  # noqa: E402

kb.reexec_in_product_venv(__file__)

ACCOUNT = "111122223333"
OPS = ("Encrypt", "Decrypt", "GenerateDataKey", "DescribeKey", "GetSecretValue")
HOST = "127.0.0.1:4566"


# --- preparation (outside valgrind) -----------------------------------------------------------
def _settings_json(data_dir: Path) -> str:
    from openkms.config import Settings

    settings = Settings(
        data_dir=str(data_dir),
        rate_limits_enabled=False,
        workers=1,
        audit_flush_seconds=10.0,  # the longest allowed; flushed at the end, inside the count
    ).validate()
    return settings.to_json()


def prepare(workdir: Path, op: str, caller: str) -> dict[str, Any]:
    """A data directory with an account (and an IAM user), a key, and the signed request."""
    from openkms.config import Settings
    from openkms.http.app import create_app
    from openkms.iam.dispatch import HANDLERS, IamDeps
    from openkms.service import keys
    from openkms.service.accounts import create_account
    from openkms.service.context import Principal, RequestContext

    data = workdir / "data"
    settings_json = _settings_json(data)
    app = create_app(Settings.from_json(settings_json))
    rt = app.runtime
    clock = rt.clock
    issued = create_account(rt.storage, app.wired.root, clock, account_id=ACCOUNT)
    root = Principal(ACCOUNT, issued.principal_arn, "root", issued.access_key_id, ACCOUNT)
    ctx = RequestContext(root, "us-east-1", "prepare", clock.now(), "Prepare")
    creds = kb.Credentials(issued.access_key_id, issued.secret_access_key, ACCOUNT)
    if caller == "iam-user":
        deps = IamDeps(rt.storage, app.wired.root, clock)
        iam = HANDLERS["iam"]
        iam["CreateUser"](deps, ctx, {"UserName": "bench"})
        iam["PutUserPolicy"](
            deps,
            ctx,
            {
                "UserName": "bench",
                "PolicyName": "bench",
                "PolicyDocument": json.dumps(kb.IAM_USER_POLICY),
            },
        )
        made = iam["CreateAccessKey"](deps, ctx, {"UserName": "bench"})
        assert made is not None
        creds = kb.Credentials(
            made["AccessKey"]["AccessKeyId"], made["AccessKey"]["SecretAccessKey"], ACCOUNT
        )
    key_id = keys.create_key(rt, ctx, {})["KeyMetadata"]["KeyId"]
    url = f"http://{HOST}"

    def call(operation: str, payload: dict[str, Any], service: str = "kms") -> dict[str, Any]:
        signed = kb.sign(url, creds, operation, payload, service)
        status, body, _, _ = app._dispatch(_scope(signed.headers), signed.body, "prepare")
        if status != 200:
            raise RuntimeError(f"{operation}: {status} {body!r}")
        result: dict[str, Any] = json.loads(body)
        return result

    payload: dict[str, Any]
    service = "kms"
    if op == "Encrypt":
        payload = {"KeyId": key_id, "Plaintext": kb.PLAINTEXT, "EncryptionContext": kb.CONTEXT}
    elif op == "Decrypt":
        blob = call(
            "Encrypt",
            {"KeyId": key_id, "Plaintext": kb.PLAINTEXT, "EncryptionContext": kb.CONTEXT},
        )["CiphertextBlob"]
        payload = {"KeyId": key_id, "CiphertextBlob": blob, "EncryptionContext": kb.CONTEXT}
    elif op == "GenerateDataKey":
        payload = {"KeyId": key_id, "KeySpec": "AES_256"}
    elif op == "GetSecretValue":
        # As benchmarks/run's scenario (kmsbench._get_secret_value): a 32-byte secret under the
        # customer managed key, a resource policy naming the caller's account.
        service = "secretsmanager"
        key_arn = f"arn:aws:kms:{kb.REGION}:{ACCOUNT}:key/{key_id}"
        created = call(
            "CreateSecret",
            {"Name": "benchmark/callgrind", "KmsKeyId": key_arn, "SecretString": kb.SECRET_VALUE},
            service,
        )
        policy = {
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "ReadersOfThisAccount", "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": "secretsmanager:GetSecretValue", "Resource": "*",
            }],
        }  # fmt: skip
        call(
            "PutResourcePolicy",
            {"SecretId": created["ARN"], "ResourcePolicy": json.dumps(policy)},
            service,
        )
        payload = {"SecretId": "benchmark/callgrind"}
    else:
        payload = {"KeyId": key_id}
    signed = kb.sign(url, creds, op, payload, service)
    call(op, payload, service)  # the exact request succeeds
    if app.audit is not None:
        app.audit.close()
    head = ["POST / HTTP/1.1\r\n"] + [f"{k}: {v}\r\n" for k, v in signed.headers.items()]
    head.append(f"Content-Length: {len(signed.body)}\r\n\r\n")
    raw = "".join(head).encode("latin-1") + signed.body
    return {
        "signed_at": rt.clock.now(),
        "settings": settings_json,
        "data": str(data),
        "headers": list(signed.headers.items()),
        "body": base64.b64encode(signed.body).decode(),
        "raw": base64.b64encode(raw).decode(),
        "secrets": service == "secretsmanager",
    }


def _scope(headers: dict[str, str] | list[tuple[str, str]]) -> dict[str, Any]:
    items = headers.items() if isinstance(headers, dict) else headers
    return {
        "type": "http",
        "method": "POST",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in items],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 4566),
        "scheme": "http",
    }


# --- the measured loop (inside valgrind) --------------------------------------------------------
class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.last = b""

    def write(self, data: Any) -> None:
        self.writes += 1
        self.last = bytes(data)

    def close(self) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 4566)}.get(
            name, default
        )

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0


def _no_asgi_protocol() -> type[Any]:
    """The ``no-asgi`` path's protocol: a POST to ``/`` is dispatched from
    ``on_message_complete`` and answered with bytes written to the transport; anything else goes
    the ASGI way. A sketch for measuring: no off-loop operations, 100-continue or pipelining."""
    import time

    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    from openkms.audit.events import event_id
    from openkms.http.protocol import CoalescingHttpToolsProtocol
    from openkms.logsetup import request_id_var

    class NoAsgiProtocol(CoalescingHttpToolsProtocol):
        direct = False
        body = b""

        def on_headers_complete(self) -> None:
            if self.parser.get_method() != b"POST" or self.url != b"/":
                super().on_headers_complete()
                return
            scope: dict[str, Any] = self.scope  # type: ignore[assignment]
            scope.update(method="POST", path="/", raw_path=b"/", query_string=b"")
            self.direct, self.body = True, b""
            self._in_head, self._head_bytes = False, 0
            self._arm(self._limits.body_timeout)

        def on_body(self, body: bytes) -> None:
            if self.direct:
                self.body += body
            else:
                super().on_body(body)

        def on_message_complete(self) -> None:
            if not self.direct:
                super().on_message_complete()
                return
            self.direct = False
            self._disarm()
            app = self.app
            started = time.perf_counter()
            request_id = event_id()
            token = request_id_var.set(request_id)
            try:
                status, payload, error, kind = app._dispatch(self.scope, self.body, request_id)
            finally:
                request_id_var.reset(token)
            head = b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n" % (
                status,
                b"OK" if status == 200 else b"Error",
                kind,
                len(payload),
            )
            head += b"x-amzn-requestid: %s\r\n" % request_id.encode()
            if error is not None:
                head += b"x-amzn-errortype: %s\r\n" % error.encode()
            self.transport.write(head + b"\r\n" + payload)
            if app.metrics is not None:
                app.metrics.tally.observe("Encrypt", error or "ok", time.perf_counter() - started)
            self.server_state.total_requests += 1
            # uvicorn's bookkeeping, without CoalescingHttpToolsProtocol's immediate flush (no
            # task is ever in progress here): the write goes out at the end of the loop step.
            HttpToolsProtocol.on_response_complete(self)

    return NoAsgiProtocol


async def _drive_http(app: Any, raw: bytes, count: int, no_asgi: bool = False) -> None:
    from uvicorn.config import Config
    from uvicorn.server import ServerState

    from openkms.http.protocol import CoalescingHttpToolsProtocol

    protocol_class = _no_asgi_protocol() if no_asgi else CoalescingHttpToolsProtocol

    # As `openkms serve` and trivial_server.py configure uvicorn: without proxy_headers (on by
    # default in Config) every request would pass through uvicorn's ProxyHeadersMiddleware, an
    # interpreted ASGI layer the servers do not have.
    config = Config(
        app=app,
        http=protocol_class,
        lifespan="off",
        access_log=False,
        proxy_headers=False,
        server_header=False,
    )
    config.load()
    protocol = protocol_class(config, ServerState(), {})
    transport = _Transport()
    protocol.connection_made(transport)
    for i in range(count):
        protocol.data_received(raw)
        while transport.writes <= i:
            await asyncio.sleep(0)
    if not transport.last.startswith(b"HTTP/1.1 200 "):
        raise RuntimeError(f"not answered 200: {transport.last[:300]!r}")


def _freeze_ttl_caches() -> None:
    """Stop the clock of every TtlCache (key records, identities, grants, decisions ...).

    Their entries live one second. Under valgrind a request takes ~50 times as long as on the
    CPU, so a one-second cache would miss every few dozen requests and the count would include
    storage reads that, at the thousands of requests per second this measures, happen once in
    ten thousand. With the clock stopped every cache behaves as it does under load."""
    import gc

    from openkms.service.caches import TtlCache

    stopped = itertools.repeat(0.0).__next__  # a C function, as cheap as time.monotonic
    for obj in gc.get_objects():
        if isinstance(obj, TtlCache):
            obj._clock = stopped


def inner(spec_path: Path, path: str, count: int) -> None:
    spec = json.loads(spec_path.read_text())
    raw = base64.b64decode(spec["raw"])
    if path == "trivial":
        import trivial_server
        import uvloop

        uvloop.run(_drive_http(trivial_server.app, raw, count))
        return
    from openkms.config import ENV_SETTINGS, Settings
    from openkms.http.app import create_app

    os.environ[ENV_SETTINGS] = spec["settings"]
    app = create_app(Settings.from_json(spec["settings"]))
    if app.metrics is not None:
        # Its file is rewritten once a second, not per request: kept out of the count (timed).
        app.metrics.tally.flush_interval = 1e9
    _freeze_ttl_caches()
    if spec.get("secrets"):
        # Secrets Manager's read cache (records for one second, as the TtlCaches) likewise,
        # made here as the app would make it on the first Secrets Manager request.
        from openkms.secretsmanager.read_cache import ReadCache

        app._secrets_read_cache = ReadCache(
            app.settings.cache_ttl_seconds, clock=itertools.repeat(0.0).__next__
        )
    # The request was signed before the runs began; on a busy machine the second run can end
    # more than the allowed 15 minutes of skew later. The signature is still checked in full.
    from openkms.clock import FixedClock

    app.verifier._clock = FixedClock(spec["signed_at"])
    if path == "dispatch":
        scope = _scope([tuple(h) for h in spec["headers"]])
        body = base64.b64decode(spec["body"])
        for _ in range(count):
            status = app._dispatch(scope, body, "00000000-0000-4000-8000-000000000000")[0]
        if status != 200:
            raise RuntimeError(f"not answered 200: {status}")
    else:
        import uvloop

        uvloop.run(_drive_http(app, raw, count, no_asgi=path == "no-asgi"))
    if app.audit is not None:
        app.audit.close()  # the batch written and fsync'ed: part of the cost


# --- running valgrind ---------------------------------------------------------------------------
def _callgrind(
    spec: Path, path: str, count: int, out: Path | None, cache_sim: bool = False
) -> dict[str, int]:
    """The run's totals by callgrind event (``Ir``, and with ``cache_sim`` the simulated cache
    misses: ``I1mr``, ``D1mr``, ``D1mw``, ``ILmr``, ``DLmr``, ``DLmw`` ...)."""
    data = Path(json.loads(spec.read_text())["data"])
    with tempfile.TemporaryDirectory() as tmp:
        # Each run starts from the same copy of the data directory (and an empty audit log).
        copy = Path(tmp) / "data"
        shutil.copytree(data, copy)
        spec_copy = Path(tmp) / "spec.json"
        doc = json.loads(spec.read_text())
        doc["settings"] = _settings_json(copy)
        doc["data"] = str(copy)
        spec_copy.write_text(json.dumps(doc))
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        cmd = [sys.executable, __file__, "--inner", str(spec_copy), "--path", path,
               "--requests", str(count)]  # fmt: skip
        if out is not None:
            sim = ["--cache-sim=yes"] if cache_sim else []
            cmd = ["valgrind", "--tool=callgrind", *sim, f"--callgrind-out-file={out}", *cmd]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if out is None:  # the warm-up run
        if done.returncode != 0:
            raise RuntimeError(f"the warm-up run failed:\n{done.stderr[-3000:]}")
        return {}
    if done.returncode != 0:
        raise RuntimeError(f"valgrind failed ({done.returncode}):\n{done.stderr[-3000:]}")
    text = out.read_text()
    events = re.search(r"^events: (.+)$", text, re.MULTILINE)
    match = re.search(r"^(?:summary|totals): ([\d ]+)$", text, re.MULTILINE)
    if events is None or match is None:
        raise RuntimeError(f"no total in {out}")
    return dict(zip(events.group(1).split(), map(int, match.group(1).split()), strict=False))


def _per_function(out: Path, inclusive: bool) -> dict[str, int]:
    shown = subprocess.run(
        ["callgrind_annotate", f"--inclusive={'yes' if inclusive else 'no'}", "--threshold=100",
         str(out)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    costs: dict[str, int] = {}
    for line in shown.splitlines():
        match = re.match(r"^\s*([\d,]+) \([^)]*\)\s+(?:\* +)?(\S.*)$", line)
        if match:
            name = match.group(2).strip()
            costs[name] = costs.get(name, 0) + int(match.group(1).replace(",", ""))
    return costs


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--op", default="Encrypt", choices=OPS)
    parser.add_argument("--caller", default="root", choices=("root", "iam-user"))
    parser.add_argument(
        "--path", default="http", choices=("http", "dispatch", "trivial", "no-asgi")
    )
    parser.add_argument("--requests", type=int, default=500, help="requests of the short run")
    parser.add_argument("--annotate", type=int, default=0, help="print the top N functions")
    parser.add_argument("--keep", type=Path, help="directory for the callgrind output files")
    parser.add_argument(
        "--cache-sim",
        action="store_true",
        help="also simulate the caches: misses per request in the first-level instruction and "
        "data caches and the last level (valgrind's model of this CPU's caches, not counters)",
    )
    parser.add_argument("--inner", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner is not None:
        inner(args.inner, args.path, args.requests)
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        spec = work / "spec.json"
        spec.write_text(json.dumps(prepare(work, args.op, args.caller)))
        keep = args.keep or work
        keep.mkdir(parents=True, exist_ok=True)
        stem = f"callgrind.{args.path}.{args.op}.{args.caller}"
        short, long_ = args.requests, 2 * args.requests
        # Once without valgrind first: the first process to import a changed module writes its
        # .pyc, and that compilation (millions of instructions) must not fall in one run only.
        _callgrind(spec, args.path, 1, None)
        sim = args.cache_sim
        counts_short = _callgrind(spec, args.path, short, keep / f"{stem}.{short}.out", sim)
        long_out = keep / f"{stem}.{long_}.out"
        counts_long = _callgrind(spec, args.path, long_, long_out, sim)
        total_short, total_long = counts_short["Ir"], counts_long["Ir"]
        per_request = (total_long - total_short) / (long_ - short)
        what = "trivial app" if args.path == "trivial" else f"{args.op} as {args.caller}"
        print(
            f"{what}, path {args.path}: {per_request:,.0f} instructions per request "
            f"({total_short:,} for {short}, {total_long:,} for {long_})"
        )
        if sim:
            # I1mr: instruction fetches missing the first-level cache; D1mr/D1mw: data reads and
            # writes missing it; ILmr/DLmr/DLmw: the same missing the last level.
            misses = {
                event: (counts_long[event] - counts_short.get(event, 0)) / (long_ - short)
                for event in counts_long
                if event != "Ir" and event.endswith(("mr", "mw"))
            }
            print("  simulated cache misses per request: " + ", ".join(
                f"{event} {value:,.0f}" for event, value in misses.items()
            ))  # fmt: skip
        if args.annotate:
            short_out = keep / f"{stem}.{short}.out"
            for inclusive in (True, False):
                diff = _per_function(long_out, inclusive)
                base = _per_function(short_out, inclusive)
                rows = sorted(((n - base.get(f, 0)) / (long_ - short), f) for f, n in diff.items())
                label = "inclusive" if inclusive else "self"
                print(f"\ntop {args.annotate} functions by {label} instructions per request:")
                for cost, name in reversed(rows[-args.annotate :]):
                    print(f"{cost:>10,.0f}  {name[:140]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
