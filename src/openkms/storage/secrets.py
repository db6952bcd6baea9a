"""What the Secrets Manager-compatible service stores, and the storage protocol for it.

A secret is one row (``SecretRecord``: name, description, KMS key, staging labels, tags,
resource policy, rotation and replication settings, the scheduled deletion time); each of its
versions is another (``SecretVersionRecord``: the value, encrypted by the service through the
KMS before it reaches storage, never in clear). Staging labels live on the secret, as a map
label -> version id, so that moving a label between versions is one write of one row.

``Storage`` (``storage.base``) includes ``SecretStore``; every backend implements it and the
contract suite (tests/contract/test_secret_store_contract.py) runs on each.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

Tags = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class SecretRecord:
    arn: str
    account_id: str
    region: str
    name: str
    created_at: float
    last_changed_at: float
    description: str | None = None
    # As the caller gave it (key id, key ARN, alias name or alias ARN); None: the AWS managed
    # key alias/aws/secretsmanager.
    kms_key_id: str | None = None
    last_accessed_at: float | None = None
    # When a scheduled deletion happens; None while the secret is not scheduled for deletion.
    deleted_at: float | None = None
    # label -> version id (AWSCURRENT, AWSPREVIOUS, AWSPENDING and custom labels)
    stages: dict[str, str] = field(default_factory=dict)
    tags: Tags = ()
    resource_policy: str | None = None
    # Rotation (owned by secretsmanager.rotation): enabled flag, function ARN, rules, times.
    rotation_enabled: bool = False
    rotation_lambda_arn: str | None = None
    rotation_rules: dict[str, Any] = field(default_factory=dict)
    last_rotated_at: float | None = None
    next_rotation_at: float | None = None
    # Replication (owned by secretsmanager.replication): primary Region, replica status list.
    primary_region: str | None = None
    replicas: tuple[dict[str, Any], ...] = ()
    owning_service: str | None = None
    # Room for what a later feature needs to keep without a schema change.
    extra: dict[str, Any] = field(default_factory=dict)

    def to_doc(self) -> bytes:
        return orjson.dumps(dataclasses.asdict(self))

    @classmethod
    def from_doc(cls, doc: str | bytes) -> SecretRecord:
        data: dict[str, Any] = orjson.loads(doc)
        if not _SECRET_FIELDS.issuperset(data):  # a field a later version wrote: left out
            data = {k: v for k, v in data.items() if k in _SECRET_FIELDS}
        data["tags"] = tuple((str(k), str(v)) for k, v in data.get("tags", ()))
        data["replicas"] = tuple(data.get("replicas", ()))
        return cls(**data)

    def version_stages(self, version_id: str) -> list[str]:
        """The labels attached to ``version_id``, in the order they were attached."""
        return [label for label, vid in self.stages.items() if vid == version_id]


_SECRET_FIELDS = frozenset(f.name for f in dataclasses.fields(SecretRecord))


@dataclass(frozen=True, slots=True)
class SecretVersionRecord:
    secret_arn: str
    version_id: str
    created_at: float
    # The encrypted value (secretsmanager.envelope's format); never the value itself.
    ciphertext: bytes = field(repr=False)
    # The ARN of the KMS key that encrypted it.
    kms_key_arn: str = ""
    last_accessed_at: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def doc(self) -> bytes:
        return orjson.dumps(
            {
                "kms_key_arn": self.kms_key_arn,
                "last_accessed_at": self.last_accessed_at,
                "extra": self.extra,
            }
        )


class SecretStore(Protocol):
    """Secrets and their versions. Writes that belong together go through the backend's one
    ``transaction()``; ``lock=True`` reads inside a transaction hold the secret until commit."""

    def insert_secret(self, secret: SecretRecord) -> None:
        """Raises StorageConflict when the ARN, or the name in the account and Region, exists."""
        ...

    def update_secret(self, secret: SecretRecord) -> None: ...

    def get_secret(self, arn: str, *, lock: bool = False) -> SecretRecord | None: ...

    def find_secret(
        self, account_id: str, region: str, name: str, *, lock: bool = False
    ) -> SecretRecord | None:
        """The secret of that name in the account and Region (deleted-scheduled ones too)."""
        ...

    def list_secrets(self, account_id: str, region: str) -> list[SecretRecord]:
        """Every secret of the account in the Region, ordered by ARN."""
        ...

    def delete_secret(self, arn: str) -> None:
        """Removes the secret with all its versions."""
        ...

    def secrets_due_for_deletion(self, now: float) -> list[str]:
        """ARNs of the secrets whose scheduled deletion time has come."""
        ...

    def insert_secret_version(self, version: SecretVersionRecord) -> None:
        """Raises StorageConflict when the version id exists for the secret."""
        ...

    def update_secret_version(self, version: SecretVersionRecord) -> None:
        """Updates the version's metadata (last access, extra); the ciphertext never changes."""
        ...

    def get_secret_version(
        self, secret_arn: str, version_id: str
    ) -> SecretVersionRecord | None: ...

    def list_secret_versions(self, secret_arn: str) -> list[SecretVersionRecord]:
        """The secret's versions, oldest first."""
        ...

    def delete_secret_versions(self, secret_arn: str, version_ids: Sequence[str]) -> None: ...
