"""Secrets Manager's part of the scheduler run (``openkms.scheduler.run_once``): scheduled
deletions that have come due, and due rotations (``rotation.schedule``)."""

from __future__ import annotations

from openkms.secretsmanager.deletion import purge_due_secrets
from openkms.secretsmanager.deps import SecretsDeps
from openkms.secretsmanager.rotation.schedule import run_due_rotations
from openkms.service.runtime import Runtime


def run_due(rt: Runtime, now: float) -> tuple[list[str], list[str]]:
    """(ARNs of the secrets deleted, ARNs of the secrets whose rotation was started)."""
    deps = SecretsDeps(
        storage=rt.storage, runtime=rt, clock=rt.clock, partition=rt.settings.partition
    )
    return purge_due_secrets(deps, now), run_due_rotations(deps, now)
