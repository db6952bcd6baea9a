"""How a secret is shown: DescribeSecret's answer and ListSecrets' entries, with AWS's member
presence (members without a value are left out, never null)."""

from __future__ import annotations

from typing import Any

from openkms.storage.secrets import SecretRecord


def when(moment: float) -> float:
    """A time as AWS answers it: epoch seconds to the millisecond."""
    return round(moment, 3)


def tags_out(secret: SecretRecord) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in secret.tags]


def versions_to_stages(secret: SecretRecord) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for label, version_id in secret.stages.items():
        found.setdefault(version_id, []).append(label)
    return found


def _common(secret: SecretRecord) -> dict[str, Any]:
    out: dict[str, Any] = {"ARN": secret.arn, "Name": secret.name}
    if secret.description is not None:
        out["Description"] = secret.description
    if secret.kms_key_id:
        out["KmsKeyId"] = secret.kms_key_id
    if secret.rotation_enabled:
        out["RotationEnabled"] = True
    if secret.rotation_lambda_arn:
        out["RotationLambdaARN"] = secret.rotation_lambda_arn
    if secret.rotation_rules:
        out["RotationRules"] = dict(secret.rotation_rules)
    if secret.last_rotated_at is not None:
        out["LastRotatedDate"] = when(secret.last_rotated_at)
    if secret.next_rotation_at is not None and secret.rotation_enabled:
        out["NextRotationDate"] = when(secret.next_rotation_at)
    out["LastChangedDate"] = when(secret.last_changed_at)
    if secret.last_accessed_at is not None:
        out["LastAccessedDate"] = when(secret.last_accessed_at)
    if secret.deleted_at is not None:
        out["DeletedDate"] = when(secret.deleted_at)
    if secret.tags:
        out["Tags"] = tags_out(secret)
    if secret.owning_service:
        out["OwningService"] = secret.owning_service
    out["CreatedDate"] = when(secret.created_at)
    if secret.primary_region:
        out["PrimaryRegion"] = secret.primary_region
    if secret.replicas:
        out["ReplicationStatus"] = [dict(r) for r in secret.replicas]
    return out


def describe(secret: SecretRecord) -> dict[str, Any]:
    out = _common(secret)
    stages = versions_to_stages(secret)
    if stages:
        out["VersionIdsToStages"] = stages
    return out


def list_entry(secret: SecretRecord) -> dict[str, Any]:
    out = _common(secret)
    out.pop("ReplicationStatus", None)
    stages = versions_to_stages(secret)
    if stages:
        out["SecretVersionsToStages"] = stages
    return out
