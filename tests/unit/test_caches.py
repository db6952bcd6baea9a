"""TtlCache: entries expire after their time to live; when full, the least recently used goes."""

from __future__ import annotations

from openkms.service.caches import TtlCache


def test_entries_expire() -> None:
    now = [0.0]
    cache: TtlCache[str, int] = TtlCache(10, 1.0, clock=lambda: now[0])
    cache.put("a", 1)
    assert cache.get("a") == 1
    now[0] = 1.5
    assert cache.get("a") is None
    assert (cache.hits, cache.misses) == (1, 1)


def test_when_full_the_least_recently_used_goes() -> None:
    cache: TtlCache[str, int] = TtlCache(4, 60.0)
    for n, key in enumerate("abcd"):
        cache.put(key, n)
    assert cache.get("a") == 0  # over half full: a is now the most recently used
    cache.put("e", 4)
    assert cache.get("b") is None  # the least recently used went
    assert [cache.get(k) for k in "acde"] == [0, 2, 3, 4]
    cache.put("c", 20)  # renewed: most recent again
    cache.put("f", 5)
    cache.put("g", 6)
    assert cache.get("c") == 20
    assert len(cache) == 4


def test_recency_below_half_full_does_not_matter_for_what_is_kept() -> None:
    cache: TtlCache[int, int] = TtlCache(100, 60.0)
    for n in range(40):
        cache.put(n, n)
        assert cache.get(0) == 0
    assert all(cache.get(n) == n for n in range(40))  # nothing evicted below the bound
