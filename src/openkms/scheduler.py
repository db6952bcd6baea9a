"""The scheduler: due deletions, due automatic rotations and expired imported material,
expired STS sessions, and Secrets Manager's due deletions and rotations, driven by an injectable
time. It sits above ``service``, ``iam`` and ``secretsmanager`` (it runs jobs of all three), so
none of them imports a package built on it.

Every job re-checks its key inside its own transaction, so several processes may run the
scheduler against one database: a due job is done once, and a repeat finds nothing to do."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from openkms.iam.sessions import purge_expired
from openkms.secretsmanager.schedule import run_due
from openkms.service.imports import expire_material
from openkms.service.keys import purge_due_keys
from openkms.service.rotation import run_due_rotations
from openkms.service.runtime import Runtime


@dataclass(frozen=True, slots=True)
class SchedulerReport:
    deleted: list[str]
    rotated: list[str]
    expired: list[str]
    sessions_purged: int = 0
    secrets_deleted: list[str] = field(default_factory=list)
    secrets_rotated: list[str] = field(default_factory=list)


def run_once(
    rt: Runtime,
    now: float,
    *,
    secrets_audit: Callable[[dict[str, Any]], None] | None = None,
    secrets_read_cache: Any = None,
) -> SchedulerReport:
    """One run. A server passes its audit writer and Secrets Manager read cache: the rotations
    started here write their service events and invalidate that cache."""
    secrets_deleted, secrets_rotated = run_due(
        rt, now, audit=secrets_audit, read_cache=secrets_read_cache
    )
    return SchedulerReport(
        deleted=purge_due_keys(rt, now),
        rotated=run_due_rotations(rt, now),
        expired=expire_material(rt, now),
        sessions_purged=purge_expired(rt.storage, now),
        secrets_deleted=secrets_deleted,
        secrets_rotated=secrets_rotated,
    )
