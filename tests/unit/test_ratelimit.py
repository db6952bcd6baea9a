"""Request-rate quotas: classification, token buckets, overrides, and sharing across processes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from openkms.config import Settings
from openkms.http.ratelimit import (
    DEFAULT_QUOTAS,
    LocalBuckets,
    RateLimiter,
    SharedBuckets,
    check_overrides,
    limiter_from_settings,
    merge_quotas,
    reset_shared_buckets,
)

ACCOUNT = "111122223333"
OTHER_ACCOUNT = "444455556666"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


MakeLimiter = Callable[..., tuple[RateLimiter, "FakeClock"]]


@pytest.fixture(params=["local", "shared"])
def make_limiter(request: pytest.FixtureRequest, tmp_path: Path) -> MakeLimiter:
    clock = FakeClock()

    def make(overrides: dict[str, float | None] | None = None) -> tuple[RateLimiter, FakeClock]:
        backend: LocalBuckets | SharedBuckets
        if request.param == "local":
            backend = LocalBuckets(clock=clock)
        else:
            backend = SharedBuckets(tmp_path / "rl.bin", clock=clock)
        return RateLimiter(merge_quotas(overrides or {}), backend), clock

    return make


# --- Classification and AWS's defaults ---------------------------------------------------------
@pytest.mark.parametrize(
    ("operation", "key_spec", "key_pair_spec", "quota"),
    [
        ("Encrypt", None, None, "symmetric"),
        ("Encrypt", "SYMMETRIC_DEFAULT", None, "symmetric"),
        ("GenerateDataKey", "SYMMETRIC_DEFAULT", None, "symmetric"),
        ("GenerateRandom", None, None, "symmetric"),
        ("GenerateMac", "HMAC_256", None, "symmetric"),
        ("VerifyMac", "HMAC_512", None, "symmetric"),
        ("Decrypt", "RSA_2048", None, "rsa"),
        ("Sign", "RSA_4096", None, "rsa"),
        ("Sign", "ECC_NIST_P256", None, "ecc"),
        ("Verify", "ECC_SECG_P256K1", None, "ecc"),
        ("Sign", "ECC_NIST_EDWARDS25519", None, "ecc"),
        ("Sign", "SM2", None, "ecc"),
        ("DeriveSharedSecret", "ECC_NIST_P384", None, "ecc"),
        ("Sign", "ML_DSA_65", None, "ml_dsa"),
        ("Decapsulate", "ML_KEM_768", None, "ml_kem"),
        ("GenerateDataKeyPair", "SYMMETRIC_DEFAULT", "RSA_4096", "GenerateDataKeyPair:RSA_4096"),
        (
            "GenerateDataKeyPairWithoutPlaintext",
            None,
            "ECC_NIST_P256",
            "GenerateDataKeyPair:ECC_NIST_P256",
        ),
        ("GenerateDataKeyPair", None, None, None),
        ("CreateKey", None, None, "CreateKey"),
        ("DescribeKey", "RSA_2048", None, "DescribeKey"),
        ("CreateUser", None, None, None),  # IAM: not limited
    ],
)
def test_classification(
    operation: str, key_spec: str | None, key_pair_spec: str | None, quota: str | None
) -> None:
    assert RateLimiter().classify(operation, key_spec, key_pair_spec) == quota


def test_defaults_are_aws_request_quotas() -> None:
    expected = {
        "symmetric": 10_000,
        "rsa": 1_000,
        "ecc": 1_000,
        "ml_dsa": 1_000,
        "GenerateDataKeyPair:ECC_NIST_P256": 100,
        "GenerateDataKeyPair:ECC_NIST_EDWARDS25519": 100,
        "GenerateDataKeyPair:RSA_2048": 20,
        "GenerateDataKeyPair:RSA_3072": 4,
        "GenerateDataKeyPair:RSA_4096": 1,
        "GenerateDataKeyPair:SM2": 25,
        "DescribeKey": 2000,
        "GetPublicKey": 2000,
        "ListResourceTags": 2000,
        "GetKeyPolicy": 1000,
        "GetKeyRotationStatus": 1000,
        "ListAliases": 500,
        "ListKeys": 500,
        "ListGrants": 100,
        "ListRetirableGrants": 100,
        "CreateGrant": 50,
        "RevokeGrant": 50,
        "ScheduleKeyDeletion": 15,
        "ImportKeyMaterial": 15,
        "PutKeyPolicy": 15,
        "TagResource": 10,
        "CreateKey": 5,
        "CreateAlias": 5,
        "UntagResource": 5,
        "GetKeyLastUsage": 5,
        "ReplicateKey": 5,
        "UpdatePrimaryRegion": 5,
        "GetParametersForImport": 1,
    }
    for quota, rate in expected.items():
        assert DEFAULT_QUOTAS[quota] == rate, quota


def test_every_kms_operation_has_a_quota() -> None:
    from openkms.protocol.operations import OPERATIONS

    limiter = RateLimiter()
    for operation in OPERATIONS:
        pair_spec = "RSA_2048" if operation.startswith("GenerateDataKeyPair") else None
        assert limiter.classify(operation, None, pair_spec) is not None, operation


# --- Buckets -------------------------------------------------------------------------------------
def test_burst_over_the_limit_is_refused_and_recovers(make_limiter: MakeLimiter) -> None:
    limiter, clock = make_limiter()
    results = [limiter.check(ACCOUNT, "CreateKey") for _ in range(8)]
    assert results == [True] * 5 + [False] * 3  # 5 per second
    clock.now += 0.1
    assert not limiter.check(ACCOUNT, "CreateKey")  # half a token
    clock.now += 0.1
    assert limiter.check(ACCOUNT, "CreateKey")  # one token after 0.2 s
    assert not limiter.check(ACCOUNT, "CreateKey")
    clock.now += 60
    # Refilled to one second's worth, not more.
    assert [limiter.check(ACCOUNT, "CreateKey") for _ in range(6)] == [True] * 5 + [False]


def test_quotas_are_per_account_region_and_quota(make_limiter: MakeLimiter) -> None:
    limiter, _ = make_limiter()
    for _ in range(5):
        assert limiter.check(ACCOUNT, "CreateKey")
    assert not limiter.check(ACCOUNT, "CreateKey")
    assert limiter.check(OTHER_ACCOUNT, "CreateKey")
    assert limiter.check(ACCOUNT, "CreateKey", region="eu-west-1")
    assert limiter.check(ACCOUNT, "CreateAlias")  # each quota is counted separately
    assert limiter.check(ACCOUNT, "Encrypt")


def test_crypto_operations_share_their_quota(make_limiter: MakeLimiter) -> None:
    limiter, _ = make_limiter({"rsa": 4})
    assert limiter.check(ACCOUNT, "Encrypt", "RSA_2048")
    assert limiter.check(ACCOUNT, "Decrypt", "RSA_3072")
    assert limiter.check(ACCOUNT, "Sign", "RSA_4096")
    assert limiter.check(ACCOUNT, "Verify", "RSA_2048")
    assert not limiter.check(ACCOUNT, "ReEncrypt", "RSA_2048")
    # Symmetric and ECC keys have their own quotas.
    assert limiter.check(ACCOUNT, "Encrypt", "SYMMETRIC_DEFAULT")
    assert limiter.check(ACCOUNT, "Sign", "ECC_NIST_P256")


def test_data_key_pairs_have_a_quota_per_spec(make_limiter: MakeLimiter) -> None:
    limiter, clock = make_limiter()
    assert limiter.check(ACCOUNT, "GenerateDataKeyPair", "SYMMETRIC_DEFAULT", "RSA_4096")
    assert not limiter.check(ACCOUNT, "GenerateDataKeyPairWithoutPlaintext", None, "RSA_4096")
    assert limiter.check(ACCOUNT, "GenerateDataKeyPair", None, "RSA_3072")
    clock.now += 1.0
    assert limiter.check(ACCOUNT, "GenerateDataKeyPair", None, "RSA_4096")


def test_high_rate_quota_admits_exactly_its_rate(make_limiter: MakeLimiter) -> None:
    # The shared backend leases tokens in batches; none may be admitted twice.
    limiter, clock = make_limiter({"symmetric": 1000})
    allowed = sum(limiter.check(ACCOUNT, "Encrypt") for _ in range(1500))
    assert allowed == 1000
    clock.now += 0.5
    allowed = sum(limiter.check(ACCOUNT, "Encrypt") for _ in range(1500))
    assert allowed == 500


def test_overrides(make_limiter: MakeLimiter) -> None:
    limiter, _ = make_limiter({"CreateKey": 1, "DescribeKey": None, "symmetric": float("inf")})
    assert limiter.check(ACCOUNT, "CreateKey")
    assert not limiter.check(ACCOUNT, "CreateKey")
    assert all(limiter.check(ACCOUNT, "DescribeKey") for _ in range(5000))
    assert all(limiter.check(ACCOUNT, "Encrypt") for _ in range(20_000))
    assert limiter.rate_of("DescribeKey") is None
    assert limiter.rate_of("CreateKey") == 1


def test_fractional_rates(make_limiter: MakeLimiter) -> None:
    limiter, clock = make_limiter({"GenerateDataKeyPair:RSA_4096": 0.1})  # China Regions
    assert limiter.check(ACCOUNT, "GenerateDataKeyPair", None, "RSA_4096")
    clock.now += 9.0
    assert not limiter.check(ACCOUNT, "GenerateDataKeyPair", None, "RSA_4096")
    clock.now += 1.0
    assert limiter.check(ACCOUNT, "GenerateDataKeyPair", None, "RSA_4096")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"CreateKeys": 5}, "unknown quota 'CreateKeys'"),
        ({"CreateKey": 0}, "CreateKey: the rate must be greater than 0"),
        ({"CreateKey": -1}, "CreateKey: the rate must be greater than 0"),
        ({"CreateKey": "fast"}, "CreateKey: the rate must be a number"),
        ({"CreateKey": True}, "CreateKey: the rate must be a number"),
        ({"GenerateDataKeyPair:RSA_1024": 1}, "unknown quota"),
    ],
)
def test_invalid_overrides_are_named(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_overrides(overrides.items())


def test_a_full_table_fails_open_and_recovers(tmp_path: Path) -> None:
    clock = FakeClock()
    buckets = SharedBuckets(tmp_path / "rl.bin", slots=32, clock=clock)
    limiter = RateLimiter(merge_quotas(), buckets)
    # 32 accounts with a CreateKey bucket each, all still refilling, fill every slot.
    accounts = [f"{n:012d}" for n in range(32)]
    for account in accounts:
        assert limiter.check(account, "CreateKey")
    assert buckets.overflows == 0
    newcomer = "999999999999"
    assert limiter.check(newcomer, "CreateKey")  # no slot: allowed, and counted
    assert buckets.overflows == 1
    clock.now += 1.0  # every bucket is full again: slots can be reused
    assert all(limiter.check(newcomer, "CreateKey") for _ in range(5))
    assert not limiter.check(newcomer, "CreateKey")
    assert buckets.overflows == 1


def test_a_shared_file_from_another_version_is_reinitialised(tmp_path: Path) -> None:
    path = tmp_path / "rl.bin"
    path.write_bytes(b"garbage" * 10)
    limiter = RateLimiter(merge_quotas(), SharedBuckets(path, slots=64))
    assert limiter.check(ACCOUNT, "CreateKey")
    assert path.stat().st_size == 64 + 64 * 32
    assert path.stat().st_mode & 0o777 == 0o600


def test_limiter_from_settings(tmp_path: Path) -> None:
    settings = Settings(data_dir=str(tmp_path))
    assert limiter_from_settings(settings.replace(rate_limits_enabled=False)) is None
    local = limiter_from_settings(settings)
    assert local is not None and isinstance(local.backend, LocalBuckets)
    shared = limiter_from_settings(
        settings.replace(workers=2, rate_limit_overrides=(("CreateKey", 2.0),))
    )
    assert shared is not None and isinstance(shared.backend, SharedBuckets)
    assert shared.backend.path == settings.ratelimit_path
    assert shared.rate_of("CreateKey") == 2.0
    assert settings.ratelimit_path.exists()
    reset_shared_buckets(settings.ratelimit_path)
    reset_shared_buckets(settings.ratelimit_path)  # already gone: no error
    assert not settings.ratelimit_path.exists()


def test_check_takes_the_file_lock_once_per_lease(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Why a check is cheap (its cost is measured in benchmarks/, never timed here): local
    buckets touch no file, and shared ones take the file's lock once per lease of tokens, not
    once per request."""
    import fcntl

    locks: list[int] = []
    real_flock = fcntl.flock

    def counting_flock(fd: int, operation: int) -> None:
        if operation == fcntl.LOCK_EX:
            locks.append(fd)
        real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", counting_flock)
    n = 20_000
    local = RateLimiter(merge_quotas({"symmetric": 1e9}), LocalBuckets())
    assert all(local.check(ACCOUNT, "Encrypt", "SYMMETRIC_DEFAULT") for _ in range(n))
    assert locks == []
    shared = RateLimiter(merge_quotas({"symmetric": 1e9}), SharedBuckets(tmp_path / "rl.bin"))
    locks.clear()
    assert all(shared.check(ACCOUNT, "Encrypt", "SYMMETRIC_DEFAULT") for _ in range(n))
    assert 1 <= len(locks) <= n // 100, f"{len(locks)} locks for {n} checks"


# --- Across processes -----------------------------------------------------------------------------
HAMMER = textwrap.dedent(
    """
    import json, sys, time
    from openkms.http.ratelimit import RateLimiter, SharedBuckets, merge_quotas
    path, go, quota, operation, attempts = sys.argv[1:6]
    limiter = RateLimiter(merge_quotas({quota: float(sys.argv[6])}), SharedBuckets(path))
    print("ready", flush=True)
    sys.stdin.readline()  # both processes start together
    start = time.monotonic()
    allowed = sum(limiter.check("111122223333", operation) for _ in range(int(attempts)))
    print(json.dumps({"allowed": allowed, "start": start, "end": time.monotonic()}), flush=True)
    """
)


def _hammer_together(
    path: Path, quota: str, operation: str, attempts: int, rate: float
) -> list[dict[str, float]]:
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                HAMMER,
                str(path),
                "go",
                quota,
                operation,
                str(attempts),
                str(rate),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = []
        for proc in procs:
            out, _ = proc.communicate(timeout=60)
            assert proc.returncode == 0
            results.append(json.loads(out.strip().splitlines()[-1]))
        return results
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()


@pytest.mark.parametrize(
    ("quota", "operation", "rate"),
    [("CreateKey", "CreateKey", 5.0), ("symmetric", "Encrypt", 1000.0)],
)
def test_two_processes_share_one_bucket(
    tmp_path: Path, quota: str, operation: str, rate: float
) -> None:
    path = tmp_path / "run" / "ratelimit.bin"
    attempts = int(rate * 3)
    results = _hammer_together(path, quota, operation, attempts, rate)
    total = sum(r["allowed"] for r in results)
    elapsed = max(r["end"] for r in results) - min(r["start"] for r in results)
    # One bucket for both: one second's worth plus what refilled meanwhile, never twice that.
    assert total <= rate + rate * elapsed + 1, (total, elapsed)
    assert total >= rate * 0.98, (total, elapsed)

    # Recovery after the refill, seen from a third process.
    limiter = RateLimiter(merge_quotas({quota: rate}), SharedBuckets(path))
    while limiter.check(ACCOUNT, operation):
        pass
    time.sleep(2.0 / rate + 0.05)
    assert limiter.check(ACCOUNT, operation)
