"""What :class:`openkms.http.metrics.Metrics` gathers from requests between two flushes.

Every request adds to it, so it is compiled by mypyc (``mypyc-modules.txt``) and the app calls
it directly rather than through an interpreted method: request counts per (operation,
outcome), and per operation the latency sum and per-bucket counts that the flush adds to the
Prometheus histogram in one go.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Callable

Counts = dict[tuple[str, str], int]
# operation -> [sum of seconds, n(bucket 0), ..., n(+Inf)]
Latencies = dict[str, list[float]]


class RequestTally:
    def __init__(
        self,
        operations: frozenset[str],
        other: str,
        bounds: tuple[float, ...],
        flush_interval: float,
        clock: Callable[[], float],
    ) -> None:
        self._ops = operations
        self._other = other  # the label of an operation outside ``operations``
        self._bounds = bounds
        self._slots = len(bounds) + 2
        self.flush_interval = flush_interval
        self._clock = clock
        self._lock = threading.Lock()
        self.last_flush = clock()
        self._counts: Counts = {}
        self._latency: Latencies = {}

    def observe(self, operation: str, outcome: str, seconds: float) -> bool:
        """Counts one finished request; True once ``flush_interval`` has passed since the
        last :meth:`take` (the caller then flushes)."""
        if operation not in self._ops:
            operation = self._other
        key = (operation, outcome)
        with self._lock:
            counts = self._counts
            counts[key] = counts.get(key, 0) + 1
            lat = self._latency.get(operation)
            if lat is None:
                lat = [0.0] * self._slots
                self._latency[operation] = lat
            lat[0] += seconds
            lat[bisect_left(self._bounds, seconds) + 1] += 1.0
        return self._clock() - self.last_flush >= self.flush_interval

    def take(self) -> tuple[Counts, Latencies]:
        """What was gathered since the last call, which starts a new interval."""
        with self._lock:
            counts, self._counts = self._counts, {}
            latency, self._latency = self._latency, {}
            self.last_flush = self._clock()
        return counts, latency
