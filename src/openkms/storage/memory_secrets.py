"""``SecretStore`` in memory (``storage.secrets``), mixed into ``memory.MemoryStorage``: the
same contract as the SQL backends, for unit tests."""

from __future__ import annotations

from collections.abc import Sequence

from openkms.storage.base import StorageConflict
from openkms.storage.secrets import SecretRecord, SecretVersionRecord


class MemorySecretStore:
    # Part of the state MemoryStorage snapshots for a transaction (it copies every attribute).
    _secrets: dict[str, SecretRecord]
    _secret_versions: dict[tuple[str, str], SecretVersionRecord]

    def _init_secrets(self) -> None:
        self._secrets = {}
        self._secret_versions = {}

    def insert_secret(self, secret: SecretRecord) -> None:
        if secret.arn in self._secrets or self.find_secret(
            secret.account_id, secret.region, secret.name
        ):
            raise StorageConflict("secret exists")
        self._secrets[secret.arn] = secret

    def update_secret(self, secret: SecretRecord) -> None:
        if secret.arn in self._secrets:
            self._secrets[secret.arn] = secret

    def get_secret(self, arn: str, *, lock: bool = False) -> SecretRecord | None:
        return self._secrets.get(arn)

    def find_secret(
        self, account_id: str, region: str, name: str, *, lock: bool = False
    ) -> SecretRecord | None:
        for secret in self._secrets.values():
            if (secret.account_id, secret.region, secret.name) == (account_id, region, name):
                return secret
        return None

    def list_secrets(self, account_id: str, region: str) -> list[SecretRecord]:
        return sorted(
            (s for s in self._secrets.values() if (s.account_id, s.region) == (account_id, region)),
            key=lambda s: s.arn,
        )

    def delete_secret(self, arn: str) -> None:
        self._secrets.pop(arn, None)
        for ident in [k for k in self._secret_versions if k[0] == arn]:
            del self._secret_versions[ident]

    def secrets_due_for_deletion(self, now: float) -> list[str]:
        return sorted(
            s.arn
            for s in self._secrets.values()
            if s.deleted_at is not None and s.deleted_at <= now
        )

    def insert_secret_version(self, version: SecretVersionRecord) -> None:
        ident = (version.secret_arn, version.version_id)
        if ident in self._secret_versions:
            raise StorageConflict("secret version exists")
        self._secret_versions[ident] = version

    def update_secret_version(self, version: SecretVersionRecord) -> None:
        ident = (version.secret_arn, version.version_id)
        current = self._secret_versions.get(ident)
        if current is not None:
            self._secret_versions[ident] = SecretVersionRecord(
                secret_arn=current.secret_arn,
                version_id=current.version_id,
                created_at=current.created_at,
                ciphertext=current.ciphertext,
                kms_key_arn=current.kms_key_arn,
                last_accessed_at=version.last_accessed_at,
                extra=version.extra,
            )

    def get_secret_version(self, secret_arn: str, version_id: str) -> SecretVersionRecord | None:
        return self._secret_versions.get((secret_arn, version_id))

    def list_secret_versions(self, secret_arn: str) -> list[SecretVersionRecord]:
        return sorted(
            (v for (arn, _), v in self._secret_versions.items() if arn == secret_arn),
            key=lambda v: (v.created_at, v.version_id),
        )

    def delete_secret_versions(self, secret_arn: str, version_ids: Sequence[str]) -> None:
        for version_id in version_ids:
            self._secret_versions.pop((secret_arn, version_id), None)
