"""Time as a dependency: the service never calls ``time.time()`` itself."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch (UTC)."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()


class FixedClock:
    """A clock for tests: it moves only when told to."""

    def __init__(self, at: float = 1_700_000_000.0) -> None:
        self._at = at

    def now(self) -> float:
        return self._at

    def set(self, at: float) -> None:
        self._at = at

    def advance(self, seconds: float) -> None:
        self._at += seconds
