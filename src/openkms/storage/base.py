"""The storage protocol. Every backend (memory, SQLite, PostgreSQL) passes one contract suite
(tests/contract/test_storage_contract.py).

Writes that belong together go through one ``transaction()``; a backend translates its driver's
errors into ``StorageConflict`` (a uniqueness rule) and ``StorageUnavailable`` (anything else)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Protocol

from openkms.domain.key import KeyRecord
from openkms.storage.records import (
    AccessKeyRecord,
    AccountRecord,
    AliasRecord,
    KeyQuery,
    KeyUsage,
    MaterialRecord,
)
from openkms.storage.secrets import SecretStore


class StorageError(Exception):
    pass


class StorageConflict(StorageError):
    """A uniqueness rule was broken (e.g. an alias name that exists)."""


class StorageUnavailable(StorageError):
    """The database cannot be reached or failed; the request may be retried."""


class Storage(SecretStore, Protocol):
    def transaction(self) -> AbstractContextManager[None]: ...

    def close(self) -> None: ...

    # -- metadata ----------------------------------------------------------------------------
    def get_meta(self, name: str) -> str | None: ...

    def set_meta(self, name: str, value: str) -> None: ...

    # -- accounts and access keys ------------------------------------------------------------
    def put_account(self, account: AccountRecord) -> None: ...

    def get_account(self, account_id: str) -> AccountRecord | None: ...

    def list_accounts(self) -> list[AccountRecord]: ...

    def put_access_key(self, key: AccessKeyRecord) -> None: ...

    def get_access_key(self, access_key_id: str) -> AccessKeyRecord | None: ...

    def list_access_keys(self, account_id: str) -> list[AccessKeyRecord]: ...

    def delete_access_key(self, access_key_id: str) -> None: ...

    # -- keys --------------------------------------------------------------------------------
    def insert_key(self, key: KeyRecord) -> None: ...

    def update_key(self, key: KeyRecord) -> None: ...

    def get_key(self, arn: str) -> KeyRecord | None: ...

    def list_keys(
        self, account_id: str, region: str, after_key_id: str | None, limit: int
    ) -> list[KeyRecord]: ...

    def key_id_after(
        self, account_id: str, region: str, after_key_id: str | None, offset: int
    ) -> str | None:
        """The key id ``offset`` places after ``after_key_id`` in the account and Region, in
        key id order (1: the next one); None when there are fewer keys than that."""
        ...

    def search_keys(
        self,
        account_id: str,
        region: str,
        query: KeyQuery,
        after_key_id: str | None,
        upto_key_id: str | None,
        limit: int,
    ) -> list[KeyRecord]:
        """At most ``limit`` keys of the account and Region that match ``query``, in key id
        order, with ``after_key_id < key_id <= upto_key_id`` (no upper bound when None). The
        index is kept by insert_key, update_key, delete_key and the alias and tag writes."""
        ...

    def list_related_keys(self, account_id: str, key_id: str) -> list[KeyRecord]:
        """Every key of this id in the account, one per Region (a multi-Region key set)."""
        ...

    def delete_key(self, arn: str) -> None:
        """Removes the key with its material, aliases, tags and ``kms-*`` documents (grants)
        scoped by its ARN."""
        ...

    def keys_due_for_deletion(self, now: float) -> list[str]: ...

    def keys_due_for_rotation(self, now: float) -> list[str]: ...

    def keys_with_expiring_material(self, now: float) -> list[str]:
        """Keys whose imported material's ValidTo has passed."""
        ...

    def record_key_usage(self, usages: Sequence[KeyUsage]) -> None: ...

    # -- key material ------------------------------------------------------------------------
    def put_material(self, material: MaterialRecord) -> None: ...

    def delete_material(self, key_arn: str, material_id: str) -> None: ...

    def get_material(self, key_arn: str, material_id: str) -> MaterialRecord | None: ...

    def list_materials(self, key_arn: str) -> list[MaterialRecord]: ...

    # -- aliases -----------------------------------------------------------------------------
    def insert_alias(self, alias: AliasRecord) -> None:
        """Raises StorageConflict when the name exists in the account and region."""
        ...

    def update_alias(self, alias: AliasRecord) -> None: ...

    def get_alias(self, account_id: str, region: str, alias_name: str) -> AliasRecord | None: ...

    def delete_alias(self, account_id: str, region: str, alias_name: str) -> None: ...

    def list_aliases(
        self,
        account_id: str,
        region: str,
        key_id: str | None,
        after_name: str | None,
        limit: int,
    ) -> list[AliasRecord]: ...

    # -- tags --------------------------------------------------------------------------------
    def get_tags(self, key_arn: str) -> dict[str, str]: ...

    def put_tags(self, key_arn: str, tags: Mapping[str, str]) -> None: ...

    def delete_tags(self, key_arn: str, tag_keys: Sequence[str]) -> None: ...

    # -- documents (IAM, STS sessions, grants ...) --------------------------------------------
    def put_document(
        self, kind: str, scope: str, name: str, doc: str, now: float, *, create_only: bool = False
    ) -> None:
        """Stores a JSON document; with ``create_only`` an existing one raises StorageConflict."""
        ...

    def get_document(self, kind: str, scope: str, name: str) -> str | None: ...

    def list_documents(
        self,
        kind: str,
        scope: str,
        *,
        prefix: str = "",
        after: str | None = None,
        limit: int = 1000,
    ) -> list[tuple[str, str]]:
        """(name, doc) ordered by name."""
        ...

    def list_document_scopes(self, kind: str) -> list[str]:
        """Every scope that holds documents of ``kind``, ordered (root-key rotation scans them)."""
        ...

    def scopes_with_documents(self, kind: str, scopes: Sequence[str]) -> set[str]:
        """Which of ``scopes`` hold documents of ``kind`` (the key search asks which keys of a
        batch have grants, in one query rather than one a key)."""
        ...

    def delete_document(self, kind: str, scope: str, name: str) -> bool: ...

    # -- maintenance -------------------------------------------------------------------------
    def reset_kms_data(self) -> None:
        """Deletes every key, material, alias, tag, ``kms-*`` document and secret (accounts,
        access keys and IAM stay)."""
        ...

    def iter_wrapped_secrets(self) -> Iterator[tuple[str, bytes]]:
        """(identity, wrapped bytes) of every wrapped secret: for scans and root-key rotation."""
        ...
