#!/usr/bin/env python3
"""Server CPU per Encrypt request of several openkms variants, interleaved, against the trivial app.

    benchmarks/variants.py base=.venv/bin noaudit=.venv/bin,OPENKMS_AUDIT_LOG=
    benchmarks/variants.py --rounds 10 old=../old/.venv/bin new=.venv/bin new_iam=.venv/bin,iam

Each variant is ``name=BIN_DIR[,SETTING=VALUE ...][,iam]``: the installation's bin directory,
environment settings of that server (``OPENKMS_AUDIT_LOG=`` turns the audit log off,
``OPENKMS_METRICS_ENABLED=0`` the metrics), and ``iam`` to call as ``benchmarks/run``'s IAM user
instead of the account root. Every variant and the calibration app (``trivial_server.py``) run
with 2 workers at the same time; each round measures them all in turn for ``--duration``
seconds at 32 connections, in alternating order. On a shared machine a server's CPU per request
moves by 20 % from one minute to the next, so what is printed is, per variant, the median over
the rounds of its CPU per request divided by the trivial app's **in the same round**, with the
range. ``benchmarks/before_after.py`` compares two installations the same way for several
operations; this compares settings of one.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import kmsbench as kb

kb.reexec_in_product_venv(__file__)


def parse_variant(text: str) -> kb.OpenKMSTarget:
    name, equals, spec = text.partition("=")
    if not equals or not name or not spec:
        raise argparse.ArgumentTypeError(f"{text!r}: expected name=BIN_DIR[,SETTING=VALUE][,iam]")
    bin_dir, *options = spec.split(",")
    env: dict[str, str] = {}
    iam = False
    for option in options:
        if option == "iam":
            iam = True
        elif "=" in option:
            key, _, value = option.partition("=")
            env[key] = value
        else:
            raise argparse.ArgumentTypeError(f"{option!r}: expected SETTING=VALUE or iam")
    return kb.OpenKMSTarget(
        workers=2, name=name, bin_dir=Path(bin_dir).resolve(), env=env, iam_user=iam
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("variants", nargs="+", type=parse_variant)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--duration", type=int, default=3, help="seconds per measurement (3)")
    args = parser.parse_args()
    wrk = kb.ensure_wrk()
    trivial = kb.TrivialTarget(2)
    targets: list[kb.Target] = [trivial, *args.variants]
    scenario = next(s for s in kb.SCENARIOS if s.name == "Encrypt")
    cpu: dict[str, list[float]] = {t.name: [] for t in targets}
    with kb.started(targets) as workdir:
        requests = {trivial.name: kb.calibration_request()}
        for target in args.variants:
            requests[target.name] = scenario.build(kb.KeyRing().prep(target, scenario))
        for target in targets:
            kb.run_wrk(wrk, target, requests[target.name], 32, 1, workdir)  # warm-up
        for round_no in range(args.rounds):
            order = targets if round_no % 2 == 0 else targets[::-1]
            for target in order:
                m = kb.run_wrk(wrk, target, requests[target.name], 32, args.duration, workdir)
                if not m.ok:
                    raise SystemExit(f"{target.name}: {m.error}")
                cpu[target.name].append(m.cpu_us_per_request)
                kb.log(
                    f"round {round_no + 1}: {target.name:<16} {m.rps:>8,.0f} req/s "
                    f"{m.cpu_us_per_request:6.1f} us/req"
                )
    base = cpu[trivial.name]
    print(f"\nEncrypt, 32 connections, 2 workers each, {args.rounds} rounds of {args.duration} s")
    print(f"{'variant':<16} {'CPU us/req':>10}  {'x trivial (median, range)':<26}")
    for target in targets:
        ratios = sorted(c / t for c, t in zip(cpu[target.name], base, strict=True))
        print(
            f"{target.name:<16} {statistics.median(cpu[target.name]):>10.1f}  "
            f"{statistics.median(ratios):.2f} ({ratios[0]:.2f}-{ratios[-1]:.2f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
