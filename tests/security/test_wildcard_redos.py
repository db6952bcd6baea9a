"""Attacks that make policy wildcard matching expensive (ReDoS) from an account with no
permission on the key.

Rules: wildcards in policies are matched in time linear in the value (openkms: never a
backtracking regex; benchmarks/wildcard_redos.py shows the worst cases); an encryption context
holds at most ``max_encryption_context_chars`` (8192) characters of keys and values; a grant
constraint holds at most 8 pairs of at most 384 characters each (AWS's GrantConstraints
documentation). Too large is ``ValidationException``, answered before any policy is evaluated.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import Server, make_client
from tests.security import healthz_seconds

PATTERN = "*/*/*/*.json"  # Python's re: 26-56 s on 1,000 slashes


def _policy(owner: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "owner",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{owner}:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                },
                {
                    "Sid": "json files, from anyone",
                    "Effect": "Allow",
                    "Principal": {"AWS": "*"},
                    "Action": "kms:Encrypt",
                    "Resource": "*",
                    "Condition": {"StringLike": {"kms:EncryptionContext:path": PATTERN}},
                },
            ],
        }
    )


@pytest.fixture(scope="module")
def victim_key(server: Server, kms: Any) -> str:
    key = kms.create_key(Description="wildcard victim", Policy=_policy(server.account_id))
    return str(key["KeyMetadata"]["Arn"])


def _health_during(server: Server, call: Any) -> tuple[Any, float, float]:
    """Runs ``call`` in a thread while probing /healthz; (outcome, its seconds, worst probe)."""
    outcome: list[Any] = []

    def run() -> None:
        started = time.perf_counter()
        try:
            outcome.append(call())
        except ClientError as exc:
            outcome.append(exc.response["Error"]["Code"])
        except Exception as exc:  # a timeout of the attack request itself
            outcome.append(type(exc).__name__)
        outcome.append(time.perf_counter() - started)

    thread = threading.Thread(target=run)
    thread.start()
    worst = 0.0
    while thread.is_alive():
        worst = max(worst, healthz_seconds(server.endpoint, timeout=3.0))
        time.sleep(0.02)
    thread.join()
    return outcome[0], outcome[1], worst


def test_pathological_stringlike_pattern_does_not_freeze_the_server(
    server: Server, second_account: Server, victim_key: str
) -> None:
    """Another account's caller (no permission) sends Encrypt with a 2,000-character context
    value of slashes against ``StringLike "*/*/*/*.json"``: the backtracking regex took minutes
    of the event loop; the linear matcher answers AccessDenied at once and /healthz stays
    responsive."""
    attacker = make_client(second_account, read_timeout=20, connect_timeout=5)
    outcome, seconds, worst = _health_during(
        server,
        lambda: attacker.encrypt(
            KeyId=victim_key, Plaintext=b"x", EncryptionContext={"path": "/" * 2000}
        ),
    )
    assert outcome == "AccessDeniedException"
    assert seconds < 2.0, seconds
    assert worst < 0.5, worst


def test_100k_character_encryption_context_is_refused_before_any_policy(
    server: Server, second_account: Server, victim_key: str
) -> None:
    """The issue's request: a 100,000-character context value. Refused as too large, quickly,
    whoever sends it."""
    attacker = make_client(second_account, read_timeout=20, connect_timeout=5)
    outcome, seconds, worst = _health_during(
        server,
        lambda: attacker.encrypt(
            KeyId=victim_key, Plaintext=b"x", EncryptionContext={"path": "a/" * 50_000}
        ),
    )
    assert outcome == "ValidationException"
    assert seconds < 2.0 and worst < 0.5, (seconds, worst)


def test_encryption_context_bound_is_exact(kms: Any, victim_key: str) -> None:
    """8192 characters of keys and values are accepted; 8193 are not."""
    kms.encrypt(KeyId=victim_key, Plaintext=b"x", EncryptionContext={"k": "v" * 8191})
    with pytest.raises(ClientError) as caught:
        kms.encrypt(KeyId=victim_key, Plaintext=b"x", EncryptionContext={"k": "v" * 8192})
    error = caught.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert "encryptionContext" in error["Message"] and "8192" in error["Message"]


def test_oversized_grant_constraints_are_refused(server: Server, kms: Any, victim_key: str) -> None:
    """GrantConstraints: at most 8 pairs, each value at most 384 characters."""
    grantee = f"arn:aws:iam::{server.account_id}:root"
    for constraints in (
        {"EncryptionContextSubset": {f"k{i}": "v" for i in range(9)}},
        {"EncryptionContextEquals": {"k": "v" * 385}},
    ):
        with pytest.raises(ClientError) as caught:
            kms.create_grant(
                KeyId=victim_key,
                GranteePrincipal=grantee,
                Operations=["Encrypt"],
                Constraints=constraints,
            )
        assert caught.value.response["Error"]["Code"] == "ValidationException"
    kms.create_grant(
        KeyId=victim_key,
        GranteePrincipal=grantee,
        Operations=["Encrypt"],
        Constraints={"EncryptionContextEquals": {f"k{i}": "v" * 384 for i in range(8)}},
    )
