"""The GetSecretValue cache's bounds (secretsmanager/read_cache.py): entries expire with the
TTL and with each invalidation, and memory stays within its byte budget whatever the sizes of
the secrets a tenant stores."""

from __future__ import annotations

from openkms.secretsmanager.read_cache import MAX_BYTES, ReadCache, _Entries


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_entries_expire_with_the_ttl_and_the_generation() -> None:
    clock = Clock()
    entries = _Entries(10, 1.0, clock)
    entries.put("k", 0, "v", 10)
    assert entries.get("k", 0) == "v"
    assert entries.get("k", 1) is None  # invalidated: another generation
    clock.now = 1.5
    assert entries.get("k", 0) is None


def test_entries_stay_within_the_byte_budget() -> None:
    clock = Clock()
    entries = _Entries(1_000, 10.0, clock, max_bytes=100_000)
    for i in range(50):
        entries.put(i, 0, b"x", 65_536)
        assert entries._bytes <= 100_000
        assert len(entries._data) <= 1
    entries.put("huge", 0, b"x", 200_000)  # larger than the whole budget: never kept
    assert entries.get("huge", 0) is None
    assert entries._bytes <= 100_000


def test_entries_stay_within_the_entry_bound() -> None:
    entries = _Entries(3, 10.0, Clock())
    for i in range(10):
        entries.put(i, 0, i, 1)
        assert len(entries._data) <= 3


def test_read_cache_invalidation_bumps_the_generation() -> None:
    cache = ReadCache(1.0, Clock())
    cache.secrets.put("k", cache.generation, "secret", 10)
    assert cache.secrets.get("k", cache.generation) == "secret"
    cache.invalidate()
    assert cache.secrets.get("k", cache.generation) is None
    assert MAX_BYTES >= 1024 * 1024
