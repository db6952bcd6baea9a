"""Secrets Manager's part of the scheduler run (``openkms.scheduler.run_once``): scheduled
deletions that have come due, and due rotations (``rotation.schedule``)."""

from __future__ import annotations

from typing import Any

from openkms.secretsmanager.deletion import purge_due_secrets
from openkms.secretsmanager.deps import AuditWriter, SecretsDeps
from openkms.secretsmanager.rotation.schedule import run_due_rotations
from openkms.service.runtime import Runtime


def run_due(
    rt: Runtime, now: float, *, audit: AuditWriter | None = None, read_cache: Any = None
) -> tuple[list[str], list[str]]:
    """(ARNs of the secrets deleted, ARNs of the secrets whose rotation was started).
    ``audit`` and ``read_cache`` are the server's, when it is a server that runs this: the
    rotations started here write their service events and invalidate its GetSecretValue
    cache."""
    deps = SecretsDeps(
        storage=rt.storage,
        runtime=rt,
        clock=rt.clock,
        partition=rt.settings.partition,
        audit=audit,
        read_cache=read_cache,
    )
    return purge_due_secrets(deps, now), run_due_rotations(deps, now)
