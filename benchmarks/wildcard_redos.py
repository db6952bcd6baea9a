#!/usr/bin/env python3
"""The worst case of wildcard matching, with pathological key policies (issue #15, item 10).

A key policy statement with ``"Principal": "*"`` and a ``StringLike`` condition on
``kms:EncryptionContext:path`` is evaluated for every caller, with or without permission on the
key, against the encryption context the caller chose. The regex translation openkms used
before (``*`` -> ``.*``) backtracks: its cost grows with the value's length to the power of the
number of stars. ``policy.matching.Glob`` is linear in the value.

For each pattern this prints, for growing value lengths, the time of one full policy
evaluation (``evaluate_kms``, the real evaluator, parsed policy) and of the former regex on the
same value (not run when its projection passes ``--regex-budget`` seconds). Values are the
regex's worst case for the pattern: slashes for ``*/*`` patterns, ``a`` for ``*a*a*b``. The
glob turns some of them down by their last piece at once; the ``*?*?*?*b`` rows, which go
through its automaton, show a full scan of the value (linear: 100,000 characters in about a
millisecond).

    .venv/bin/python benchmarks/wildcard_redos.py [--max-length 100000] [--regex-budget 2]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

if sys.prefix == sys.base_prefix:  # re-run inside the repository's virtualenv
    venv = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "python"
    if venv.exists():
        os.execv(str(venv), [str(venv), *sys.argv])

from openkms.policy.document import parse_policy
from openkms.policy.evaluate import RequestFacts, evaluate_kms

ACCOUNT = "111122223333"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
CASES = [
    ("*/*.json", "/"),
    ("*/*/*/*.json", "/"),
    ("*a*a*a*a*b", "a"),
    ("*?*?*?*b", "a"),  # '?' goes through the automaton
]


def _policy(pattern: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                },
                {
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "kms:Encrypt",
                    "Resource": "*",
                    "Condition": {"StringLike": {"kms:EncryptionContext:path": pattern}},
                },
            ],
        }
    )


def _regex(pattern: str) -> re.Pattern[str]:
    source = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(source, re.DOTALL)


def _facts(value: str) -> RequestFacts:
    return RequestFacts(
        principal_arn="arn:aws:iam::444455556666:user/stranger",
        principal_account="444455556666",
        principal_type="User",
        principal_role_arn=None,
        action="kms:Encrypt",
        resource=KEY,
        resource_account=ACCOUNT,
        context={"kms:encryptioncontext:path": (value,)},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-length", type=int, default=100_000)
    parser.add_argument("--regex-budget", type=float, default=2.0)
    args = parser.parse_args()
    lengths = [n for n in (100, 1_000, 8_192, 20_000, 100_000) if n <= args.max_length]
    print(f"{'pattern':<14} {'length':>8} {'evaluate_kms (Glob)':>20} {'former regex':>24}")
    for pattern, char in CASES:
        policy = parse_policy(_policy(pattern), "key")
        regex = _regex(pattern)
        stars = pattern.count("*")
        last: tuple[int, float] | None = None  # (length, seconds) of the last regex run
        for length in lengths:
            value = char * length
            started = time.perf_counter()
            decision = evaluate_kms(policy, [], [], _facts(value))
            glob_seconds = time.perf_counter() - started
            assert not decision.allowed
            # The regex's work grows at least as length ** (stars - 1): run it only when the
            # projection from the last run stays within the budget.
            projected = (
                0.0 if last is None else max(last[1], 1e-4) * (length / last[0]) ** (stars - 1)
            )
            if projected > args.regex_budget:
                regex_text = f">= {projected:,.0f} s (projected)"
            else:
                started = time.perf_counter()
                regex.fullmatch(value)
                regex_seconds = time.perf_counter() - started
                regex_text = f"{regex_seconds * 1000:10.1f} ms"
                last = (length, regex_seconds)
            print(f"{pattern:<14} {length:>8} {glob_seconds * 1000:17.2f} ms {regex_text:>24}")
    print(
        "\nThe server also refuses encryption contexts over max_encryption_context_chars "
        "(8192) before any policy is evaluated."
    )


if __name__ == "__main__":
    main()
