"""Bounds what requests that fail authentication cost the audit log.

Anyone who can reach the port can send requests that fail authentication, as fast as the
network allows. Recording each one in full would let a stranger fill the disk and spend the
log's fsync time. ``FailedAuthGate`` admits full records at a bounded rate, per source address
(token bucket: ``rate`` per second, bursts of ``burst``) and across all sources (``total_rate``);
every request it turns away is counted, per source and error code, and ``summary()`` returns
one chain notice (``openkmsNotice`` kind ``suppressed``) with those counts, so that nothing goes
unaccounted for. The server calls ``summary()`` every ``audit_summary_seconds`` and at shutdown.

At most ``max_sources`` sources are tracked at once (their buckets and their counts); past that,
the least recently seen bucket is forgotten (a forgotten source starts with a full bucket: it
can gain at most ``burst`` records by it) and counts go to an ``other`` line.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Final

from openkms.audit.chain import NOTICE

__all__ = ["FailedAuthGate"]

SUPPRESSED: Final = "suppressed"


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


@dataclass(slots=True)
class _Count:
    count: int = 0
    first: float = 0.0
    last: float = 0.0
    codes: dict[str, int] = field(default_factory=dict)

    def add(self, now: float, code: str) -> None:
        if self.count == 0:
            self.first = now
        self.count += 1
        self.last = now
        if code in self.codes or len(self.codes) < 16:
            self.codes[code] = self.codes.get(code, 0) + 1
        else:
            self.codes["other"] = self.codes.get("other", 0) + 1

    def as_dict(self, source: str) -> dict[str, Any]:
        return {
            "sourceIPAddress": source,
            "count": self.count,
            "first": _iso(self.first),
            "last": _iso(self.last),
            "errorCodes": dict(sorted(self.codes.items())),
        }


class FailedAuthGate:
    """Thread-safe; ``now`` is passed in (seconds, any monotonic-enough clock)."""

    def __init__(
        self,
        *,
        rate: float = 1.0,
        total_rate: float = 20.0,
        burst_seconds: float = 10.0,
        max_sources: int = 1024,
    ) -> None:
        if rate <= 0 or total_rate <= 0:
            raise ValueError("rates must be positive")
        self._rate = rate
        self._burst = max(1.0, rate * burst_seconds)
        self._total_rate = total_rate
        self._total_burst = max(1.0, total_rate * burst_seconds)
        self._max_sources = max_sources
        self._lock = threading.Lock()
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._total: _Bucket | None = None
        self._counts: dict[str, _Count] = {}
        self._other = _Count()

    def admit(self, source: str, now: float, error_code: str) -> bool:
        """True: record this failure in full. False: it was counted for the next summary."""
        with self._lock:
            bucket = self._buckets.get(source)
            if bucket is None:
                bucket = _Bucket(self._burst, now)
                self._buckets[source] = bucket
                while len(self._buckets) > self._max_sources:
                    self._buckets.popitem(last=False)
            else:
                self._buckets.move_to_end(source)
                bucket.tokens = min(
                    self._burst, bucket.tokens + (now - bucket.updated) * self._rate
                )
                bucket.updated = now
            total = self._total
            if total is None:
                total = self._total = _Bucket(self._total_burst, now)
            else:
                total.tokens = min(
                    self._total_burst, total.tokens + (now - total.updated) * self._total_rate
                )
                total.updated = now
            if bucket.tokens >= 1.0 and total.tokens >= 1.0:
                bucket.tokens -= 1.0
                total.tokens -= 1.0
                return True
            count = self._counts.get(source)
            if count is None:
                if len(self._counts) < self._max_sources:
                    count = self._counts[source] = _Count()
                else:
                    count = self._other
            count.add(now, error_code)
            return False

    def pending(self) -> int:
        with self._lock:
            return sum(c.count for c in self._counts.values()) + self._other.count

    def summary(self) -> dict[str, Any] | None:
        """The notice counting every failure turned away since the last summary (None: none)."""
        with self._lock:
            counts, self._counts = self._counts, {}
            other, self._other = self._other, _Count()
        if not counts and other.count == 0:
            return None
        sources = [c.as_dict(source) for source, c in sorted(counts.items())]
        body: dict[str, Any] = {
            "kind": SUPPRESSED,
            "reason": "requests that failed authentication, beyond the full-record rate",
            "count": sum(c.count for c in counts.values()) + other.count,
            "sources": sources,
        }
        if other.count:
            body["other"] = other.as_dict("other")
        return {NOTICE: body}
