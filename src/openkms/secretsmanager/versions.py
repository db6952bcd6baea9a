"""PutSecretValue, ListSecretVersionIds and UpdateSecretVersionStage."""

from __future__ import annotations

import dataclasses
from typing import Any

from openkms.context import RequestContext
from openkms.secretsmanager import service_events, values
from openkms.secretsmanager.deps import Params, Result, SecretsDeps
from openkms.secretsmanager.describe import when
from openkms.secretsmanager.errors import (
    InvalidParameterException,
    InvalidRequestException,
    LimitExceededException,
    ResourceNotFoundException,
)
from openkms.secretsmanager.listing import _offset, _token
from openkms.secretsmanager.lookup import resolve

MAX_LABELS_PER_VERSION = 20


def put_secret_value(deps: SecretsDeps, ctx: RequestContext, req: Params) -> Result:
    value = values.value_of(req)
    if value is None:
        raise InvalidRequestException("You must provide either SecretString or SecretBinary.")
    labels = list(dict.fromkeys(req.get("VersionStages") or [values.CURRENT]))
    secret = resolve(deps, ctx, req["SecretId"], "secretsmanager:PutSecretValue", req)
    version_id = values.new_version_id(req)
    same = values.existing_same(deps, ctx, secret, version_id, value)
    if same is not None:
        return {
            "ARN": secret.arn,
            "Name": secret.name,
            "VersionId": same.version_id,
            "VersionStages": secret.version_stages(same.version_id),
        }
    version = values.encrypt(deps, ctx, secret, version_id, value, ctx.now)
    storage = deps.storage
    with storage.transaction():
        current = resolve(
            deps, ctx, req["SecretId"], "secretsmanager:PutSecretValue", req, lock=True
        )
        if storage.get_secret_version(current.arn, version_id) is not None:
            # A concurrent retry stored it first: answered as a retry (or refused).
            values.existing_same(deps, ctx, current, version_id, value)
            return {
                "ARN": current.arn,
                "Name": current.name,
                "VersionId": version_id,
                "VersionStages": current.version_stages(version_id),
            }
        if not current.stages:
            # The first version of a secret is AWSCURRENT whatever labels were asked for.
            labels = list(dict.fromkeys([*labels, values.CURRENT]))
        updated = values.add_version(deps, current, version, labels, ctx.now)
    if values.abandoned(current, updated):
        service_events.record(deps, service_events.ROTATION_ABANDONED, updated.arn)
    return {
        "ARN": updated.arn,
        "Name": updated.name,
        "VersionId": version_id,
        "VersionStages": updated.version_stages(version_id),
    }


def list_secret_version_ids(deps: SecretsDeps, ctx: RequestContext, req: Params) -> Result:
    secret = resolve(
        deps,
        ctx,
        req["SecretId"],
        "secretsmanager:ListSecretVersionIds",
        req,
        allow_deleted=True,
    )
    include_deprecated = bool(req.get("IncludeDeprecated"))
    entries: list[dict[str, Any]] = []
    for version in reversed(deps.storage.list_secret_versions(secret.arn)):
        labels = secret.version_stages(version.version_id)
        if not labels and not include_deprecated:
            continue
        entry: dict[str, Any] = {"VersionId": version.version_id}
        if labels:
            entry["VersionStages"] = labels
        if version.last_accessed_at is not None:
            entry["LastAccessedDate"] = when(version.last_accessed_at)
        entry["CreatedDate"] = when(version.created_at)
        if version.kms_key_arn:
            entry["KmsKeyIds"] = [version.kms_key_arn]
        entries.append(entry)
    start = _offset(req.get("NextToken"))
    size = int(req.get("MaxResults") or 100)
    result: dict[str, Any] = {
        "Versions": entries[start : start + size],
        "ARN": secret.arn,
        "Name": secret.name,
    }
    if start + size < len(entries):
        result["NextToken"] = _token(start + size)
    return result


def update_secret_version_stage(deps: SecretsDeps, ctx: RequestContext, req: Params) -> Result:
    label = req["VersionStage"]
    move_to = req.get("MoveToVersionId")
    remove_from = req.get("RemoveFromVersionId")
    storage = deps.storage
    with storage.transaction():
        secret = resolve(
            deps,
            ctx,
            req["SecretId"],
            "secretsmanager:UpdateSecretVersionStage",
            req,
            lock=True,
        )
        attached = secret.stages.get(label)
        if remove_from is not None and attached != remove_from:
            raise InvalidParameterException(
                f"The staging label {label} is not attached to the version {remove_from}."
            )
        if (
            move_to is not None
            and attached is not None
            and attached != move_to
            and (remove_from is None)
        ):
            raise InvalidParameterException(
                f"The staging label {label} is currently attached to version {attached}, "
                "so you must explicitly reference that version in RemoveFromVersionId."
            )
        if move_to is None and label == values.CURRENT and remove_from is not None:
            raise InvalidParameterException(
                "You can only move staging label AWSCURRENT to a different secret version. "
                "It can't be completely removed."
            )
        stages = dict(secret.stages)
        if move_to is not None:
            if storage.get_secret_version(secret.arn, move_to) is None:
                raise ResourceNotFoundException(
                    "Secrets Manager can't find the specified secret value for VersionId: "
                    f"{move_to}"
                )
            stages = values.move_labels(stages, move_to, [label])
            if len(secret.version_stages(move_to)) >= MAX_LABELS_PER_VERSION and (
                attached != move_to
            ):
                raise LimitExceededException(
                    f"A version can't have more than {MAX_LABELS_PER_VERSION} staging labels."
                )
        elif remove_from is not None:
            stages.pop(label, None)
        if stages != secret.stages:
            storage.update_secret(
                dataclasses.replace(secret, stages=stages, last_changed_at=ctx.now)
            )
    return {"ARN": secret.arn, "Name": secret.name}
