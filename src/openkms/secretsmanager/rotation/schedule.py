"""Automatic rotation, run by the scheduler (``secretsmanager.schedule.run_due``).

A secret is due when rotation is enabled, its RotationRules' window has opened
(``next_rotation_at``) and no rotation of it is in progress. The claim is the AWSPENDING label,
attached in the secret's own transaction after re-reading it: several processes may run the
scheduler on one database and only one starts the rotation. The steps run on the rotation
threads, never on the scheduler's (which runs on a worker's event loop).

A failed rotation keeps its AWSPENDING label, so the scheduler does not start another until
RotateSecret reattempts it (or an UpdateSecretVersionStage removes the label), as in AWS.
"""

from __future__ import annotations

import dataclasses
import uuid

from openkms.secretsmanager.deps import SecretsDeps
from openkms.secretsmanager.rotation.operations import (
    AWSPENDING,
    in_progress,
    invalidate_reads,
    start_rotation,
)
from openkms.secretsmanager.rotation.setup import setup_for


def run_due_rotations(deps: SecretsDeps, now: float) -> list[str]:
    """ARNs of the secrets whose scheduled rotation was started."""
    setup = setup_for(deps)
    storage = deps.storage
    started: list[str] = []
    for arn in storage.secrets_due_for_rotation(now):
        token = str(uuid.uuid4())
        with storage.transaction():
            secret = storage.get_secret(arn, lock=True)
            if (
                secret is None
                or not secret.rotation_enabled
                or secret.deleted_at is not None
                or secret.next_rotation_at is None
                or secret.next_rotation_at > now
                or in_progress(secret) is not None
                or setup.executor.running(arn)
                or secret.rotation_lambda_arn is None
                or setup.function_for(secret.rotation_lambda_arn, secret.account_id) is None
            ):
                continue
            claimed = dataclasses.replace(secret, stages={**secret.stages, AWSPENDING: token})
            storage.update_secret(claimed)
        invalidate_reads(deps)
        if start_rotation(deps, setup, claimed, token):
            started.append(arn)
    return started
