"""In-process caches. Key records and aliases expire after ``ttl_seconds`` (bounded staleness
when other processes share the database); unwrapped material is immutable for its id and is
bounded by size and age. Nothing here is ever logged."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    def __init__(
        self, max_entries: int, ttl_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._max = max_entries
        # Recency only decides which entry goes when the cache is full: below half full a hit
        # leaves the order alone (``move_to_end`` re-links the entry and hashes its key again,
        # which for the decision cache's tuples costs more than the lookup itself).
        self._half = max_entries // 2
        self._ttl = ttl_seconds
        self._clock = clock
        self._data: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __repr__(self) -> str:
        return f"TtlCache(entries={len(self._data)}, max={self._max})"

    def get(self, key: K) -> V | None:
        entry = self._data.get(key)
        if entry is None:
            self.misses += 1
            return None
        stored_at, value = entry
        if self._clock() - stored_at > self._ttl:
            del self._data[key]
            self.misses += 1
            return None
        if len(self._data) > self._half:
            self._data.move_to_end(key)
        self.hits += 1
        return value

    def put(self, key: K, value: V) -> None:
        data = self._data
        renewed = key in data
        data[key] = (self._clock(), value)
        if renewed:
            data.move_to_end(key)  # a new key is inserted last already
        while len(data) > self._max:
            data.popitem(last=False)

    def pop(self, key: K) -> None:
        self._data.pop(key, None)

    def clear(self) -> None:
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)
