#!/usr/bin/env python3
"""Which HTTP server should run the openkms ASGI app? uvicorn vs granian, same app.

    benchmarks/server_choice.py               # Encrypt, 32 connections, 1 and 2 workers, 3 rounds
    benchmarks/server_choice.py --quick       # 2 s per measurement, 1 round

Both servers load ``openkms.http.app:app_from_env`` (the factory reading OPENKMS_SETTINGS_JSON)
from the same interpreter and packages — benchmarks/.venv-bench, where the repository is
installed in editable mode — so only the server differs:

* uvicorn: ``openkms serve`` itself (uvicorn + httptools + uvloop, what ships);
* granian: ``granian --interface asgi --factory openkms.http.app:app_from_env`` with uvloop,
  HTTP/1 only, no websockets, no access log.

Targets are measured in turn within each round and the round with the median req/s is reported.
Results go to benchmarks/results/<UTC timestamp>-server-choice.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import kmsbench as kb

kb.reexec_in_product_venv(__file__)


def granian_argv(workers: int) -> Callable[[int], list[str]]:
    def argv(port: int) -> list[str]:
        return [
            str(kb.BENCH_VENV / "bin" / "granian"),
            "--interface", "asgi", "--factory",
            "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(workers),
            "--loop", "uvloop", "--http", "1", "--no-ws",
            "--log-level", "warning", "--no-access-log",
            "openkms.http.app:app_from_env",
        ]  # fmt: skip

    return argv


def build_targets(worker_counts: list[int]) -> list[kb.Target]:
    bench_bin = kb.BENCH_VENV / "bin"
    targets: list[kb.Target] = []
    for workers in worker_counts:
        uvicorn = kb.OpenKMSTarget(workers=workers, name=f"uvicorn w{workers}", bin_dir=bench_bin)
        granian = kb.CommandTarget(
            f"granian w{workers}", granian_argv(workers), workers, "granian", bin_dir=bench_bin
        )
        targets += [uvicorn, granian]
    return targets


def measure(
    args: argparse.Namespace, wrk: str, targets: list[kb.Target], every_round: list[kb.Measurement]
) -> list[dict[str, object]]:
    """Start every target, then measure them in turn, round after round."""
    scenario = next(s for s in kb.SCENARIOS if s.name == "Encrypt")
    with kb.started(targets) as workdir:
        keys = kb.KeyRing()
        requests = {t.name: scenario.build(keys.prep(t, scenario)) for t in targets}
        for rnd in range(1, args.rounds + 1):
            for target in targets:
                request = requests[target.name]
                kb.run_wrk(wrk, target, request, args.connections, 1, workdir)  # warm-up
                m = kb.run_wrk(wrk, target, request, args.connections, args.duration, workdir)
                every_round.append(m)
                status = (
                    f"{m.rps:>8,.0f} req/s  p50 {m.p50_ms:6.2f} ms  p99 {m.p99_ms:6.2f} ms"
                    if m.ok
                    else f"ERROR {m.error}"
                )
                kb.log(
                    f"round {rnd} {target.name:<11} {status}  "
                    f"CPU {m.cpu_us_per_request:5.0f} us/req  (load {m.loadavg_1m})"
                )
        return [t.describe() for t in targets]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=8, help="seconds per measurement (8)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; median reported (3)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    parser.add_argument("--workers", default="1,2", help="worker counts (1,2)")
    parser.add_argument("--quick", action="store_true", help="--duration 2 --rounds 1")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.rounds = 2, 1
    if not (1 <= args.duration <= 60 and 1 <= args.rounds <= 5 and 1 <= args.connections <= 256):
        parser.error("--duration 1..60, --rounds 1..5, --connections 1..256")
    worker_counts = [int(w) for w in args.workers.split(",") if w.strip()]

    started = time.monotonic()
    stamp = kb.utc_stamp()
    wrk = kb.ensure_wrk()
    kb.ensure_bench_venv("openkms", "granian")
    targets = build_targets(worker_counts)
    machine = kb.machine()
    source = kb.source_state()  # the code the servers load at start
    every_round: list[kb.Measurement] = []
    try:
        described = measure(args, wrk, targets, every_round)
    except (RuntimeError, kb.CallError) as exc:
        print(f"server_choice: {exc}", file=sys.stderr)
        return 2
    results = kb.median_by_key(every_round)
    elapsed = time.monotonic() - started

    by_name = {m.target: m for m in results}
    print(
        f"\nServer choice — openkms Encrypt, {args.connections} connections (wrk -t2), "
        f"{args.duration} s x {args.rounds} round(s), median round"
    )
    print(
        f"{'server':<12} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'CPU us/req':>10}"
        f"  {'vs uvicorn':>10}  rounds (req/s)"
    )
    for target in targets:
        m = by_name[target.name]
        workers = target.workers if isinstance(target, kb.OpenKMSTarget) else 1
        ref = by_name.get(f"uvicorn w{workers}")
        if not m.ok:
            print(f"{m.target:<12} ERROR {m.error}")
            continue
        rel = f"{m.rps / ref.rps:.2f}x" if ref is not None and ref.ok and ref.rps else "-"
        rounds = " ".join(f"{r:,.0f}" for r in m.rounds_rps)
        print(
            f"{m.target:<12} {m.rps:>8,.0f} {m.p50_ms:>7.2f} {m.p99_ms:>7.2f}"
            f" {m.cpu_us_per_request:>10.0f}  {rel:>10}  {rounds}"
        )
    print(f"\nTotal time {elapsed:.0f} s.")
    path = kb.write_results(
        {
            "benchmark": "server-choice",
            "elapsed_s": round(elapsed, 1),
            "machine": machine,
            "source": source,
            "wrk": kb.wrk_version(wrk),
            "settings": {
                "operation": "Encrypt",
                "connections": args.connections,
                "duration_s": args.duration,
                "rounds": args.rounds,
            },
            "targets": described,
            "results": [dataclasses.asdict(m) for m in results],
            "every_round": [dataclasses.asdict(m) for m in every_round],
        },
        f"{stamp}-server-choice",
    )
    print(f"results: {path.relative_to(kb.REPO)}")
    return 0 if all(m.ok for m in every_round) else 1


if __name__ == "__main__":
    sys.exit(main())
