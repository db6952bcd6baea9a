#!/usr/bin/env python3
"""Where does an openkms worker spend its time on Encrypt? py-spy while wrk drives it.

    benchmarks/profile_encrypt.py            # 10 s of samples, 32 connections, 1 worker

Starts ``openkms serve`` (1 worker, fresh data dir), lets wrk replay a signed Encrypt request at
32 connections, and samples the server process with py-spy (installed into
benchmarks/.venv-bench) twice: once as collapsed stacks, from which the top functions by self
time are printed (benchmarks/results/profile-encrypt.txt keeps the stacks), and once as a flame
graph (benchmarks/results/profile-encrypt.svg). Idle time (waiting in epoll) is not sampled, so
percentages are of the time the worker was busy.
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import kmsbench as kb

kb.reexec_in_product_venv(__file__)


def top_functions(raw: str, limit: int) -> tuple[int, list[tuple[str, int, int]]]:
    """(total samples, [(frame, self samples, total samples)]) from py-spy's raw format."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        # the first frame is the process/thread label py-spy adds
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    return total, [(f, n, inclusive[f]) for f, n in own.most_common(limit)]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=10, help="sampling time per pass (10)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second (250)")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--native", action="store_true", help="include native (C/Rust) frames")
    parser.add_argument("--op", default="Encrypt", help="scenario to profile (Encrypt)")
    parser.add_argument(
        "--iam-user", action="store_true", help="call as an IAM user with a conditional policy"
    )
    args = parser.parse_args()
    if not 1 <= args.seconds <= 30:
        parser.error("--seconds: 1 to 30")

    wrk = kb.ensure_wrk()
    kb.ensure_bench_venv("py-spy")
    py_spy = str(kb.BENCH_VENV / "bin" / "py-spy")
    kb.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stem = "profile-encrypt-native" if args.native else "profile-encrypt"
    raw_path = kb.RESULTS_DIR / f"{stem}.txt"
    svg_path = kb.RESULTS_DIR / f"{stem}.svg"
    target = kb.OpenKMSTarget(workers=1, iam_user=args.iam_user)
    scenario = next(s for s in kb.SCENARIOS if s.name == args.op)
    with kb.started([target]) as workdir:
        assert target.proc is not None
        request = scenario.build(kb.KeyRing().prep(target, scenario))
        kb.run_wrk(wrk, target, request, args.connections, 2, workdir)  # warm-up and check
        load_seconds = 2 * args.seconds + 6
        signed = kb.sign(target.url, target.creds, request.operation, request.payload)
        script = workdir / "profile.lua"
        script.write_text(kb.wrk_script(signed))
        load = subprocess.Popen(
            [wrk, "-t2", f"-c{args.connections}", f"-d{load_seconds}s", "--latency",
             "-s", str(script), target.url + "/"],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            time.sleep(1)
            common = ["--pid", str(target.proc.pid), "--duration", str(args.seconds),
                      "--rate", str(args.rate), "--nolineno"]  # fmt: skip
            # --native needs to pause the process at each sample; otherwise sample it running
            common.append("--native" if args.native else "--nonblocking")
            kb.log(f"py-spy: collapsed stacks for {args.seconds} s …")
            subprocess.run(
                [py_spy, "record", *common, "--format", "raw", "-o", str(raw_path)],
                check=True, capture_output=True,
            )  # fmt: skip
            kb.log(f"py-spy: flame graph for {args.seconds} s …")
            subprocess.run(
                [py_spy, "record", *common, "--format", "flamegraph", "-o", str(svg_path)],
                check=True, capture_output=True,
            )  # fmt: skip
        finally:
            out, _ = load.communicate(timeout=load_seconds + 30)
    line = next((ln for ln in out.splitlines() if ln.startswith(kb.MARKER)), "")
    total, rows = top_functions(raw_path.read_text(), args.top)
    who = "IAM user" if args.iam_user else "root"
    print(f"\nopenkms w1, {args.op} as {who}, {args.connections} connections; {total} samples")
    print(f"wrk during profiling: {line[len(kb.MARKER) :][:200]}")
    print(f"{'#':>2} {'self %':>6} {'total %':>7}  function (file)")
    for i, (frame, own, inclusive) in enumerate(rows, 1):
        print(f"{i:>2} {100 * own / total:>6.1f} {100 * inclusive / total:>7.1f}  {frame}")
    print(
        f"\nstacks: {raw_path.relative_to(kb.REPO)}, flame graph: {svg_path.relative_to(kb.REPO)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
