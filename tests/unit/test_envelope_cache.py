"""Data-key caching: limits on age, messages and bytes; bypass rules; decrypt caching."""

from __future__ import annotations

import io

import pytest

from openkms.envelope import SUITES, CacheLimits, CommitmentPolicy, EnvelopeClient
from openkms.envelope.cache import CachingMaterialsManager, LocalCache
from openkms.envelope.keyrings import KmsKeyring
from openkms.envelope.materials import DefaultMaterialsManager, EncryptionRequest
from tests.unit.test_envelope_support import FakeKMS


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _manager(
    kms: FakeKMS, limits: CacheLimits, clock: Clock, capacity: int = 100
) -> tuple[CachingMaterialsManager, str]:
    key = kms.create_key()
    backing = DefaultMaterialsManager(KmsKeyring([key], client=kms))
    return CachingMaterialsManager(backing, limits, cache=LocalCache(capacity), clock=clock), key


def _request(length: int | None, context: dict[str, str] | None = None) -> EncryptionRequest:
    return EncryptionRequest(
        context or {"a": "b"},
        SUITES[0x0578],
        CommitmentPolicy.REQUIRE_ENCRYPT_ALLOW_DECRYPT,
        length,
    )


def test_messages_limit() -> None:
    kms, clock = FakeKMS(), Clock()
    manager, _ = _manager(kms, CacheLimits(max_age=60, max_messages=3), clock)
    first = manager.get_encryption_materials(_request(10))
    assert manager.get_encryption_materials(_request(10)) is first
    assert manager.get_encryption_materials(_request(10)) is first
    fourth = manager.get_encryption_materials(_request(10))
    assert fourth is not first and fourth.data_key != first.data_key
    assert kms.calls["GenerateDataKey"] == 2
    assert manager.stats.encrypt_hits == 2 and manager.stats.encrypt_misses == 2


def test_bytes_limit() -> None:
    kms, clock = FakeKMS(), Clock()
    manager, _ = _manager(kms, CacheLimits(max_age=60, max_bytes=100), clock)
    first = manager.get_encryption_materials(_request(60))
    second = manager.get_encryption_materials(_request(60))  # 120 > 100: a new key
    assert second is not first
    assert manager.get_encryption_materials(_request(40)) is second  # exactly 100
    assert manager.get_encryption_materials(_request(1)) is not second
    big = manager.get_encryption_materials(_request(101))  # alone over the limit: bypass
    assert manager.stats.encrypt_bypassed == 1 and big is not second


def test_age_limit() -> None:
    kms, clock = FakeKMS(), Clock()
    manager, _ = _manager(kms, CacheLimits(max_age=5), clock)
    first = manager.get_encryption_materials(_request(1))
    clock.now += 4.9
    assert manager.get_encryption_materials(_request(1)) is first
    clock.now += 0.2
    assert manager.get_encryption_materials(_request(1)) is not first


def test_unknown_length_and_identity_kdf_bypass() -> None:
    kms, clock = FakeKMS(), Clock()
    manager, _ = _manager(kms, CacheLimits(max_age=60), clock)
    assert manager.get_encryption_materials(_request(None)) is not (
        manager.get_encryption_materials(_request(None))
    )
    no_kdf = EncryptionRequest(
        {}, SUITES[0x0078], CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT, 10
    )
    assert manager.get_encryption_materials(no_kdf) is not manager.get_encryption_materials(no_kdf)
    assert manager.stats.encrypt_bypassed == 4 and len(manager.cache) == 0


def test_contexts_and_partitions_are_separate() -> None:
    kms, clock = FakeKMS(), Clock()
    manager, key = _manager(kms, CacheLimits(max_age=60), clock)
    a = manager.get_encryption_materials(_request(1, {"t": "a"}))
    b = manager.get_encryption_materials(_request(1, {"t": "b"}))
    assert a is not b
    other = CachingMaterialsManager(
        DefaultMaterialsManager(KmsKeyring([key], client=kms)),
        CacheLimits(max_age=60),
        cache=manager.cache,
    )
    assert other.get_encryption_materials(_request(1, {"t": "a"})) is not a


def test_capacity_evicts_least_recently_used() -> None:
    kms, clock = FakeKMS(), Clock()
    manager, _ = _manager(kms, CacheLimits(max_age=60), clock, capacity=2)
    a = manager.get_encryption_materials(_request(1, {"t": "a"}))
    manager.get_encryption_materials(_request(1, {"t": "b"}))
    manager.get_encryption_materials(_request(1, {"t": "c"}))
    assert len(manager.cache) == 2
    assert manager.get_encryption_materials(_request(1, {"t": "a"})) is not a


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError):
        CacheLimits(max_age=0)
    with pytest.raises(ValueError):
        CacheLimits(max_age=1, max_messages=0)
    with pytest.raises(ValueError):
        CacheLimits(max_age=1, max_messages=2**32 + 1)


def test_client_with_cache_cuts_kms_calls_and_messages_still_differ() -> None:
    kms = FakeKMS()
    key = kms.create_key()
    client = EnvelopeClient(kms=kms, cache=CacheLimits(max_age=300, max_messages=50))
    messages = [client.encrypt(f"message {i}".encode(), key, {"app": "x"}) for i in range(120)]
    assert kms.calls["GenerateDataKey"] == 3  # 50 + 50 + 20
    assert len({m[3:35] for m in messages}) == 120  # every message id differs
    decrypts = kms.calls["Decrypt"]
    for i, message in enumerate(messages):
        assert client.decrypt(message) == f"message {i}".encode()
    assert kms.calls["Decrypt"] - decrypts == 3  # one per data key, then cached


def test_streams_bypass_the_cache() -> None:
    kms = FakeKMS()
    key = kms.create_key()
    client = EnvelopeClient(kms=kms, cache=CacheLimits(max_age=300))
    for _ in range(3):
        client.encrypt_stream(io.BytesIO(b"data"), io.BytesIO(), key)
    assert kms.calls["GenerateDataKey"] == 3
    for _ in range(3):
        client.encrypt_stream(io.BytesIO(b"data"), io.BytesIO(), key, plaintext_length=4)
    assert kms.calls["GenerateDataKey"] == 4
