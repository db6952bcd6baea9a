"""Secret values and versions: encrypting a new version under the secret's KMS key, reading
one back, moving staging labels, idempotent retries (``ClientRequestToken``) and the version
limit.

Labels: AWSCURRENT marks the current value; when it moves to another version, AWSPREVIOUS
moves to the version it left. A label belongs to one version at a time. A version without
labels is deprecated: still readable by VersionId; removed once there are more than 100
versions and it is over 24 hours old, as AWS does.
"""

from __future__ import annotations

import dataclasses
import hmac
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from openkms.context import RequestContext
from openkms.secretsmanager import envelope, kms_client
from openkms.secretsmanager.deps import SecretsDeps
from openkms.secretsmanager.envelope import SecretValue
from openkms.secretsmanager.errors import (
    DecryptionFailure,
    InvalidParameterException,
    LimitExceededException,
    ResourceExistsException,
    ResourceNotFoundException,
)
from openkms.service.managed_keys import ensure_managed_key
from openkms.storage.secrets import SecretRecord, SecretVersionRecord

CURRENT = "AWSCURRENT"
PREVIOUS = "AWSPREVIOUS"
PENDING = "AWSPENDING"
MAX_VERSIONS = 100
PRUNE_AFTER_SECONDS = 86_400
BOTH_VALUES = (
    "You can't specify both a binary secret value and a string secret value in the same secret."
)
VERSION_EXISTS = "You can't modify an existing version, you can only create a new version."
TOO_MANY_VERSIONS = (
    f"You can't create more than {MAX_VERSIONS} versions of a secret. Secrets Manager removes "
    "versions without staging labels once they are more than 24 hours old."
)


def value_of(req: Mapping[str, Any]) -> SecretValue | None:
    """The SecretString or SecretBinary of a request (None if it has neither)."""
    string, binary = req.get("SecretString"), req.get("SecretBinary")
    if string is not None and binary is not None:
        raise InvalidParameterException(BOTH_VALUES)
    if string is not None:
        return SecretValue(string=str(string))
    if binary is not None:
        return SecretValue(binary=bytes(binary))
    return None


def same_value(a: SecretValue, b: SecretValue) -> bool:
    """Constant-time comparison of two values (and of their kind)."""
    left = b"s" + a.string.encode() if a.string is not None else b"b" + (a.binary or b"")
    right = b"s" + b.string.encode() if b.string is not None else b"b" + (b.binary or b"")
    return hmac.compare_digest(left, right)


def new_version_id(req: Mapping[str, Any]) -> str:
    token = req.get("ClientRequestToken")
    return str(token) if token else str(uuid.uuid4())


def key_ref(deps: SecretsDeps, secret: SecretRecord, now: float) -> str:
    """The KMS key the secret's new versions are encrypted under: the one it names, or the
    account's AWS managed key ``alias/aws/secretsmanager`` (created on first use)."""
    if secret.kms_key_id:
        return secret.kms_key_id
    return ensure_managed_key(deps.runtime, "secretsmanager", secret.account_id, secret.region, now)


def encrypt(
    deps: SecretsDeps,
    ctx: RequestContext,
    secret: SecretRecord,
    version_id: str,
    value: SecretValue,
    created_at: float,
) -> SecretVersionRecord:
    context = envelope.context_for(secret.arn, version_id)
    data_key = kms_client.generate_data_key(deps, ctx, key_ref(deps, secret, ctx.now), context)
    stored = envelope.seal(value, data_key.plaintext, data_key.blob, secret.arn, version_id)
    return SecretVersionRecord(
        secret_arn=secret.arn,
        version_id=version_id,
        created_at=created_at,
        ciphertext=stored,
        kms_key_arn=data_key.key_arn,
    )


def decrypt(
    deps: SecretsDeps, ctx: RequestContext, secret: SecretRecord, version: SecretVersionRecord
) -> SecretValue:
    context = envelope.context_for(secret.arn, version.version_id)
    try:
        blob = envelope.key_blob_of(version.ciphertext)
    except Exception as exc:
        raise DecryptionFailure(kms_client.DECRYPT_FAILED) from exc
    data_key, _ = kms_client.decrypt(deps, ctx, blob, context)
    try:
        return envelope.open_value(version.ciphertext, data_key, secret.arn, version.version_id)
    except Exception as exc:
        raise DecryptionFailure(kms_client.DECRYPT_FAILED) from exc


def move_labels(
    stages: Mapping[str, str], version_id: str, labels: Iterable[str]
) -> dict[str, str]:
    """The secret's labels once ``labels`` are attached to ``version_id`` (moved from wherever
    they were), AWSPREVIOUS following AWSCURRENT's old version."""
    moved = dict(stages)
    for label in labels:
        old = moved.get(label)
        moved[label] = version_id
        if label == CURRENT and old is not None and old != version_id:
            moved[PREVIOUS] = old
    return moved


def abandons_rotation(
    stages: Mapping[str, str], version_id: str, labels: Iterable[str]
) -> bool:
    """Whether a new version ``version_id`` with ``labels`` abandons a rotation in progress:
    it becomes AWSCURRENT by hand (not as AWSPENDING) while AWSPENDING is on a version that is
    neither it nor the current one."""
    wanted = set(labels)
    pending = stages.get(PENDING)
    return (
        CURRENT in wanted
        and PENDING not in wanted
        and pending is not None
        and pending != version_id
        and pending != stages.get(CURRENT)
    )


def abandoned(before: SecretRecord, after: SecretRecord) -> bool:
    """Whether a write took away the AWSPENDING label of a rotation in progress (for the
    RotationAbandoned event, written once the write is committed)."""
    pending = before.stages.get(PENDING)
    return (
        pending is not None
        and pending != before.stages.get(CURRENT)
        and PENDING not in after.stages
    )


def find_version(
    deps: SecretsDeps,
    secret: SecretRecord,
    version_id: str | None,
    stage: str | None,
) -> SecretVersionRecord:
    """The version a VersionId and/or VersionStage names (AWSCURRENT if neither)."""
    if version_id is None:
        label = stage or CURRENT
        found = secret.stages.get(label)
        if found is None:
            raise ResourceNotFoundException(
                f"Secrets Manager can't find the specified secret value for staging label: {label}"
            )
        version_id = found
    elif stage is not None and secret.stages.get(stage) != version_id:
        raise ResourceNotFoundException(
            "Secrets Manager can't find the specified secret value for VersionId: "
            f"{version_id} and staging label: {stage}"
        )
    version = deps.storage.get_secret_version(secret.arn, version_id)
    if version is None:
        raise ResourceNotFoundException(
            f"Secrets Manager can't find the specified secret value for VersionId: {version_id}"
        )
    return version


def existing_same(
    deps: SecretsDeps,
    ctx: RequestContext,
    secret: SecretRecord,
    version_id: str,
    value: SecretValue,
) -> SecretVersionRecord | None:
    """A retry with a ClientRequestToken that names an existing version: that version when it
    holds the same value (the request then does nothing); ResourceExistsException when it
    holds another; None when there is no such version."""
    version = deps.storage.get_secret_version(secret.arn, version_id)
    if version is None:
        return None
    if not same_value(decrypt(deps, ctx, secret, version), value):
        raise ResourceExistsException(VERSION_EXISTS)
    return version


def add_version(
    deps: SecretsDeps,
    secret: SecretRecord,
    version: SecretVersionRecord,
    labels: Iterable[str],
    now: float,
) -> SecretRecord:
    """Stores ``version`` with ``labels`` (inside the caller's transaction), removes the
    deprecated versions beyond the limit, and returns the updated secret (saved)."""
    storage = deps.storage
    stages = move_labels(secret.stages, version.version_id, labels)
    if abandons_rotation(secret.stages, version.version_id, labels):
        # A new AWSCURRENT stored by hand wins over the rotation in progress: AWS removes its
        # AWSPENDING label (and logs RotationAbandoned, see ``abandoned``), so that the next
        # rotation can start.
        del stages[PENDING]
    versions = storage.list_secret_versions(secret.arn)
    labelled = set(stages.values())
    removable = [
        v.version_id
        for v in versions
        if v.version_id not in labelled and now - v.created_at > PRUNE_AFTER_SECONDS
    ]
    excess = len(versions) + 1 - MAX_VERSIONS
    if excess > 0:
        doomed = removable[:excess]
        if len(doomed) < excess:
            raise LimitExceededException(TOO_MANY_VERSIONS)
        storage.delete_secret_versions(secret.arn, doomed)
    storage.insert_secret_version(version)
    updated = dataclasses.replace(secret, stages=stages, last_changed_at=now)
    storage.update_secret(updated)
    return updated
