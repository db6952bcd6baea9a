#!/usr/bin/env python3
"""Two installations of openkms side by side in one run: the same scenarios, interleaved, so that
the machine's noise falls on both alike.

    benchmarks/before_after.py --before /path/to/old/.venv/bin [--rounds 3] [--ops Encrypt,...]

``--before`` is the ``bin`` directory of another installation (for instance a ``git worktree``
of an older commit with its own venv); the current one is this repository's ``.venv``. Each
installation runs with 2 workers, the caller being the IAM user of ``benchmarks/run``'s
``iam-user`` row (and, with ``--root``, also the account root). Prints req/s and server CPU per
request for each round and the median, and writes the figures under benchmarks/results/.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import kmsbench as kb

kb.reexec_in_product_venv(__file__)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--before", required=True, help="bin directory of the other installation")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=6)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--ops", default="Encrypt,Decrypt,GenerateDataKey")
    parser.add_argument("--root", action="store_true", help="also measure as the account root")
    args = parser.parse_args()
    wrk = kb.ensure_wrk()
    scenarios = kb.select_scenarios(args.ops)
    callers = [True, False] if args.root else [True]
    targets: list[kb.OpenKMSTarget] = []
    for iam_user in callers:
        who = "iam-user" if iam_user else "root"
        targets.append(
            kb.OpenKMSTarget(
                workers=2, name=f"before {who}", bin_dir=Path(args.before), iam_user=iam_user
            )
        )
        targets.append(kb.OpenKMSTarget(workers=2, name=f"after {who}", iam_user=iam_user))
    rows: dict[tuple[str, str], list[kb.Measurement]] = {}
    with kb.started(targets) as workdir:
        keys = kb.KeyRing()
        requests = {(s.name, t.name): s.build(keys.prep(t, s)) for s in scenarios for t in targets}
        for index in range(args.rounds):
            for scenario in scenarios:
                order = targets if index % 2 == 0 else list(reversed(targets))
                for target in order:
                    request = requests[scenario.name, target.name]
                    kb.run_wrk(wrk, target, request, args.connections, 1, workdir)
                    m = kb.run_wrk(wrk, target, request, args.connections, args.duration, workdir)
                    rows.setdefault((scenario.name, target.name), []).append(m)
                    kb.log(
                        f"round {index + 1} {scenario.name:<16} {target.name:<16} "
                        + (
                            f"{m.rps:>8,.0f} req/s  CPU {m.cpu_us_per_request:5.0f} us/req"
                            if m.ok
                            else f"ERROR {m.error}"
                        )
                    )
    print(f"\nmedian of {args.rounds} rounds, {args.connections} connections, 2 workers each")
    print(f"{'operation':<16} {'server':<16} {'req/s':>8} {'CPU us/req':>10}  rounds (req/s)")
    table = []
    for (scenario, target), ms in rows.items():
        good = [m for m in ms if m.ok]
        rps = statistics.median(m.rps for m in good) if good else 0.0
        cpu = statistics.median(m.cpu_us_per_request for m in good) if good else 0.0
        each = " ".join(f"{m.rps:,.0f}" for m in ms)
        print(f"{scenario:<16} {target:<16} {rps:>8,.0f} {cpu:>10.0f}  {each}")
        table.append(
            {"operation": scenario, "server": target, "rps": rps, "cpu_us_per_req": cpu,
             "rounds_rps": [m.rps for m in ms]}
        )  # fmt: skip
    path = kb.write_results(
        {"benchmark": "before-after", "before": args.before, "source": kb.source_state(),
         "machine": kb.machine(), "table": table},
        kb.utc_stamp() + "-before-after",
    )  # fmt: skip
    print(f"results: {path.relative_to(kb.REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
