"""The end of a scheduled deletion: the scheduler removes each secret whose recovery window
has passed, with all its versions. Each secret is re-checked inside its own transaction, so
several processes may run the scheduler on one database and a secret restored meanwhile
stays."""

from __future__ import annotations

import logging

from openkms.secretsmanager.deps import SecretsDeps

log = logging.getLogger("openkms.secretsmanager")


def purge_due_secrets(deps: SecretsDeps, now: float) -> list[str]:
    deleted: list[str] = []
    storage = deps.storage
    for arn in storage.secrets_due_for_deletion(now):
        with storage.transaction():
            secret = storage.get_secret(arn, lock=True)
            if secret is None or secret.deleted_at is None or secret.deleted_at > now:
                continue
            storage.delete_secret(arn)
        deleted.append(arn)
    return deleted
