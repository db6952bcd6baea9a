"""The in-memory fake: the same contract as SQLite, for unit tests."""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from openkms.domain.key import KeyRecord
from openkms.storage.base import StorageConflict
from openkms.storage.memory_secrets import MemorySecretStore
from openkms.storage.records import (
    AccessKeyRecord,
    AccountRecord,
    AliasRecord,
    KeyQuery,
    KeyUsage,
    MaterialRecord,
    ascii_lower,
)


class MemoryStorage(MemorySecretStore):
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._depth = 0
        self._meta: dict[str, str] = {}
        self._accounts: dict[str, AccountRecord] = {}
        self._access_keys: dict[str, AccessKeyRecord] = {}
        self._keys: dict[str, KeyRecord] = {}
        self._materials: dict[tuple[str, str], MaterialRecord] = {}
        self._aliases: dict[tuple[str, str, str], AliasRecord] = {}
        self._tags: dict[str, dict[str, str]] = {}
        self._documents: dict[tuple[str, str, str], str] = {}
        self._init_secrets()

    def _state(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k not in ("_lock", "_depth")}

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            snapshot = copy.deepcopy(self._state())
            self._depth = 1
            try:
                yield
            except BaseException:
                for name, value in snapshot.items():
                    setattr(self, name, value)
                raise
            finally:
                self._depth = 0

    def close(self) -> None:
        pass

    def get_meta(self, name: str) -> str | None:
        return self._meta.get(name)

    def set_meta(self, name: str, value: str) -> None:
        self._meta[name] = value

    def put_account(self, account: AccountRecord) -> None:
        if account.account_id in self._accounts:
            raise StorageConflict("account exists")
        self._accounts[account.account_id] = account

    def get_account(self, account_id: str) -> AccountRecord | None:
        return self._accounts.get(account_id)

    def list_accounts(self) -> list[AccountRecord]:
        return [self._accounts[k] for k in sorted(self._accounts)]

    def put_access_key(self, key: AccessKeyRecord) -> None:
        if key.account_id not in self._accounts:
            raise StorageConflict("no such account")
        self._access_keys[key.access_key_id] = key

    def get_access_key(self, access_key_id: str) -> AccessKeyRecord | None:
        return self._access_keys.get(access_key_id)

    def list_access_keys(self, account_id: str) -> list[AccessKeyRecord]:
        found = [k for k in self._access_keys.values() if k.account_id == account_id]
        return sorted(found, key=lambda k: (k.created_at, k.access_key_id))

    def delete_access_key(self, access_key_id: str) -> None:
        self._access_keys.pop(access_key_id, None)

    def insert_key(self, key: KeyRecord) -> None:
        if key.arn in self._keys:
            raise StorageConflict("key exists")
        self._keys[key.arn] = key

    def update_key(self, key: KeyRecord) -> None:
        if key.arn in self._keys:
            self._keys[key.arn] = key

    def get_key(self, arn: str) -> KeyRecord | None:
        return self._keys.get(arn)

    def list_keys(
        self, account_id: str, region: str, after_key_id: str | None, limit: int
    ) -> list[KeyRecord]:
        found = sorted(
            (
                k
                for k in self._keys.values()
                if k.account_id == account_id
                and k.region == region
                and k.key_id > (after_key_id or "")
            ),
            key=lambda k: k.key_id,
        )
        return found[:limit]

    def _account_keys(
        self, account_id: str, region: str, after_key_id: str | None
    ) -> list[KeyRecord]:
        after = after_key_id or ""
        return sorted(
            (
                k
                for k in self._keys.values()
                if k.account_id == account_id and k.region == region and k.key_id > after
            ),
            key=lambda k: k.key_id,
        )

    def key_id_after(
        self, account_id: str, region: str, after_key_id: str | None, offset: int
    ) -> str | None:
        keys = self._account_keys(account_id, region, after_key_id)
        offset = max(offset, 1)
        return keys[offset - 1].key_id if len(keys) >= offset else None

    def search_keys(
        self,
        account_id: str,
        region: str,
        query: KeyQuery,
        after_key_id: str | None,
        upto_key_id: str | None,
        limit: int,
    ) -> list[KeyRecord]:
        found: list[KeyRecord] = []
        for key in self._account_keys(account_id, region, after_key_id):
            if len(found) >= limit or (upto_key_id is not None and key.key_id > upto_key_id):
                break
            if self._matches(key, query):
                found.append(key)
        return found

    def _matches(self, key: KeyRecord, query: KeyQuery) -> bool:
        if not query.admits(key):
            return False
        if not query.text:
            return True
        texts = [key.key_id, key.description]
        texts += [
            a.alias_name
            for a in self._aliases.values()
            if a.account_id == key.account_id and a.region == key.region
            and a.key_id == key.key_id
        ]
        for tag_key, tag_value in self._tags.get(key.arn, {}).items():
            texts += [tag_key, tag_value]
        return any(query.text in ascii_lower(t) for t in texts)

    def list_document_scopes(self, kind: str) -> list[str]:
        return sorted({s for (k, s, _) in list(self._documents) if k == kind})

    def scopes_with_documents(self, kind: str, scopes: Sequence[str]) -> set[str]:
        wanted = set(scopes)
        return {s for (k, s, _) in list(self._documents) if k == kind and s in wanted}

    def list_related_keys(self, account_id: str, key_id: str) -> list[KeyRecord]:
        found = [
            k for k in self._keys.values() if k.account_id == account_id and k.key_id == key_id
        ]
        return sorted(found, key=lambda k: k.region)

    def delete_key(self, arn: str) -> None:
        with self.transaction():
            key = self._keys.pop(arn, None)
            if key is None:
                return
            self._aliases = {
                n: a
                for n, a in self._aliases.items()
                if not (
                    a.account_id == key.account_id
                    and a.region == key.region
                    and a.key_id == key.key_id
                )
            }
            self._tags.pop(arn, None)
            self._documents = {
                k: d
                for k, d in self._documents.items()
                if not (k[0].startswith("kms-") and k[1] == arn)
            }
            self._materials = {k: m for k, m in self._materials.items() if k[0] != arn}

    def keys_due_for_deletion(self, now: float) -> list[str]:
        return [
            k.arn
            for k in self._keys.values()
            if k.deletion_at is not None and k.deletion_at <= now and k.state == "PendingDeletion"
        ]

    def keys_due_for_rotation(self, now: float) -> list[str]:
        return [
            k.arn
            for k in self._keys.values()
            if k.rotation_enabled and k.next_rotation_at is not None and k.next_rotation_at <= now
        ]

    def keys_with_expiring_material(self, now: float) -> list[str]:
        return [k.arn for k in self._keys.values() if k.valid_to is not None and k.valid_to <= now]

    def record_key_usage(self, usages: Sequence[KeyUsage]) -> None:
        for usage in usages:
            key = self._keys.get(usage.key_arn)
            if key is None or (key.last_used_at or 0) >= usage.at:
                continue
            self._keys[usage.key_arn] = key.with_changes(
                last_used_at=usage.at,
                last_used_operation=usage.operation,
                last_used_request_id=usage.request_id,
            )

    def put_material(self, material: MaterialRecord) -> None:
        if material.key_arn not in self._keys:
            raise StorageConflict("no such key")
        self._materials[(material.key_arn, material.material_id)] = material

    def delete_material(self, key_arn: str, material_id: str) -> None:
        self._materials.pop((key_arn, material_id), None)

    def get_material(self, key_arn: str, material_id: str) -> MaterialRecord | None:
        return self._materials.get((key_arn, material_id))

    def list_materials(self, key_arn: str) -> list[MaterialRecord]:
        found = [m for k, m in self._materials.items() if k[0] == key_arn]
        return sorted(found, key=lambda m: m.created_at)  # stable: insertion order breaks ties

    def insert_alias(self, alias: AliasRecord) -> None:
        ident = (alias.account_id, alias.region, alias.alias_name)
        if ident in self._aliases:
            raise StorageConflict("alias exists")
        self._aliases[ident] = alias

    def update_alias(self, alias: AliasRecord) -> None:
        ident = (alias.account_id, alias.region, alias.alias_name)
        if ident in self._aliases:
            self._aliases[ident] = alias

    def get_alias(self, account_id: str, region: str, alias_name: str) -> AliasRecord | None:
        return self._aliases.get((account_id, region, alias_name))

    def delete_alias(self, account_id: str, region: str, alias_name: str) -> None:
        self._aliases.pop((account_id, region, alias_name), None)

    def list_aliases(
        self,
        account_id: str,
        region: str,
        key_id: str | None,
        after_name: str | None,
        limit: int,
    ) -> list[AliasRecord]:
        found = sorted(
            (
                a
                for a in self._aliases.values()
                if a.account_id == account_id
                and a.region == region
                and a.alias_name > (after_name or "")
                and (key_id is None or a.key_id == key_id)
            ),
            key=lambda a: a.alias_name,
        )
        return found[:limit]

    def get_tags(self, key_arn: str) -> dict[str, str]:
        return dict(sorted(self._tags.get(key_arn, {}).items()))

    def put_tags(self, key_arn: str, tags: Mapping[str, str]) -> None:
        if key_arn not in self._keys:
            raise StorageConflict("no such key")
        self._tags.setdefault(key_arn, {}).update(tags)

    def delete_tags(self, key_arn: str, tag_keys: Sequence[str]) -> None:
        current = self._tags.get(key_arn, {})
        for key in tag_keys:
            current.pop(key, None)

    def put_document(
        self, kind: str, scope: str, name: str, doc: str, now: float, *, create_only: bool = False
    ) -> None:
        ident = (kind, scope, name)
        if create_only and ident in self._documents:
            raise StorageConflict("document exists")
        self._documents[ident] = doc

    def get_document(self, kind: str, scope: str, name: str) -> str | None:
        return self._documents.get((kind, scope, name))

    def list_documents(
        self,
        kind: str,
        scope: str,
        *,
        prefix: str = "",
        after: str | None = None,
        limit: int = 1000,
    ) -> list[tuple[str, str]]:
        found = sorted(
            (n, d)
            for (k, s, n), d in self._documents.items()
            if k == kind and s == scope and n.startswith(prefix) and n > (after or "")
        )
        return found[:limit]

    def delete_document(self, kind: str, scope: str, name: str) -> bool:
        return self._documents.pop((kind, scope, name), None) is not None

    def reset_kms_data(self) -> None:
        self._keys.clear()
        self._materials.clear()
        self._aliases.clear()
        self._tags.clear()
        self._secrets.clear()
        self._secret_versions.clear()
        self._documents = {k: d for k, d in self._documents.items() if not k[0].startswith("kms-")}

    def iter_wrapped_secrets(self) -> Iterator[tuple[str, bytes]]:
        for (arn, mid), material in list(self._materials.items()):
            yield f"{arn}#{mid}", material.wrapped
        for akid, key in list(self._access_keys.items()):
            yield f"access-key:{akid}", key.wrapped_secret
