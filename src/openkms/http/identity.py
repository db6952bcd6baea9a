"""From a verified signature to a Principal: access keys, their secrets, and the dev mode."""

from __future__ import annotations

from openkms.errors import UnrecognizedClientException
from openkms.rootoftrust.base import RootOfTrust, RootOfTrustError
from openkms.service.accounts import access_key_aad, root_arn
from openkms.service.caches import TtlCache
from openkms.service.context import Principal
from openkms.storage.base import Storage


class Identities:
    """Caches access keys with their unwrapped secrets for ``ttl`` seconds, so a deleted or
    deactivated key stops working within that bound on every process."""

    def __init__(self, storage: Storage, root: RootOfTrust, partition: str, ttl: float) -> None:
        self._storage = storage
        self._root = root
        self._partition = partition
        self._cache: TtlCache[str, tuple[Principal, bytes] | None] = TtlCache(50_000, ttl)

    def _load(self, access_key_id: str) -> tuple[Principal, bytes] | None:
        entry = self._cache.get(access_key_id)
        if entry is not None:
            return entry
        record = self._storage.get_access_key(access_key_id)
        if record is None or record.status != "Active":
            return None
        try:
            secret = self._root.unwrap(record.wrapped_secret, access_key_aad(access_key_id))
        except RootOfTrustError:
            return None
        kind = "root" if record.principal_arn.endswith(":root") else "user"
        principal = Principal(
            account_id=record.account_id,
            arn=record.principal_arn,
            kind=kind,
            access_key_id=access_key_id,
            user_id=record.account_id if kind == "root" else access_key_id,
        )
        self._cache.put(access_key_id, (principal, secret))
        return principal, secret

    def secret_for(self, access_key_id: str) -> bytes | None:
        entry = self._load(access_key_id)
        return None if entry is None else entry[1]

    def principal_for(self, access_key_id: str) -> Principal:
        entry = self._load(access_key_id)
        if entry is None:
            raise UnrecognizedClientException(
                "The security token included in the request is invalid."
            )
        return entry[0]

    def permissive_principal(self, account_id: str, access_key_id: str) -> Principal:
        return Principal(
            account_id=account_id,
            arn=root_arn(self._partition, account_id),
            kind="root",
            access_key_id=access_key_id,
            user_id=account_id,
        )
