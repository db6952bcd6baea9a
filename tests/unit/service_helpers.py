"""Build a Runtime on the in-memory fakes, with a fixed clock, for service-level unit tests."""

from __future__ import annotations

from typing import Any

from openkms.clock import FixedClock
from openkms.rootoftrust.memory import MemoryRoot
from openkms.service.context import Principal, RequestContext
from openkms.service.runtime import Runtime
from openkms.storage.memory import MemoryStorage
from openkms.storage.records import AccountRecord

ACCOUNT = "111122223333"


class Harness:
    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.clock = FixedClock(start)
        self.storage = MemoryStorage()
        self.storage.put_account(AccountRecord(ACCOUNT, start))
        # Caches keyed to the fixed clock, so moving time also expires them.
        self.rt = Runtime(self.storage, MemoryRoot(), self.clock, monotonic=self.clock.now)
        self.principal = Principal(ACCOUNT, f"arn:aws:iam::{ACCOUNT}:root", "root", "AKIA", ACCOUNT)

    def ctx(self, operation: str = "Test", region: str = "us-east-1") -> RequestContext:
        return RequestContext(self.principal, region, "req-1", self.clock.now(), operation)

    def call(self, handler: Any, req: dict[str, Any], operation: str = "Test") -> dict[str, Any]:
        result: dict[str, Any] = handler(self.rt, self.ctx(operation), req)
        return result
