"""Due rotations (RotationRules): a stub of the skeleton that rotates nothing (sm-rotation
replaces this file)."""

from __future__ import annotations

from openkms.secretsmanager.deps import SecretsDeps


def run_due_rotations(deps: SecretsDeps, now: float) -> list[str]:
    """ARNs of the secrets whose scheduled rotation was started."""
    return []
