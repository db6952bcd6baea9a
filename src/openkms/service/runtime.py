"""The dependencies every operation uses, built once by ``http.app.create_app`` (or by tests):
storage, root of trust, clock, access control, caches and the key-usage recorder."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from openkms.clock import Clock
from openkms.crypto.aead import SymmetricKey
from openkms.domain.arn import alias_arn, key_arn, parsed_key_ref
from openkms.domain.key import KeyRecord
from openkms.errors import InvalidArnException, KMSInternalException, NotFoundException
from openkms.policy.access import AccessController
from openkms.rootoftrust.aad import material_aad
from openkms.rootoftrust.base import RootOfTrust, RootOfTrustError
from openkms.service.caches import TtlCache
from openkms.service.context import RequestContext
from openkms.service.grant_store import grants_for_key
from openkms.storage.base import Storage
from openkms.storage.records import KeyUsage, MaterialRecord


@dataclass(frozen=True, slots=True)
class RuntimeSettings:
    partition: str = "aws"
    # How long another process's change may go unseen by this one.
    cache_ttl_seconds: float = 1.0
    material_cache_entries: int = 10_000
    material_cache_seconds: float = 300.0
    # Secrets Manager rotation (secretsmanager.rotation): the rotation functions file, and this
    # server's URL as a local rotation command reaches it.
    rotation_functions: str | None = None
    local_endpoint: str | None = None


# The operations that honour another account's permissions on a key (AWS API reference,
# "Cross-account use: Yes"; Developer Guide, "Allowing users in other accounts to use a KMS
# key"). Every other operation finds keys in the caller's own account only, whatever a key policy
# grants to other accounts.
CROSS_ACCOUNT_OPERATIONS = frozenset(
    {
        "CreateGrant", "Decapsulate", "Decrypt", "DeriveSharedSecret", "DescribeKey",
        "Encapsulate", "Encrypt", "GenerateDataKey", "GenerateDataKeyPair",
        "GenerateDataKeyPairWithoutPlaintext", "GenerateDataKeyWithoutPlaintext", "GenerateMac",
        "GetKeyRotationStatus", "GetPublicKey", "ListGrants", "ReEncrypt", "RetireGrant",
        "RevokeGrant", "Sign", "Verify", "VerifyMac",
    }
)  # fmt: skip


def _policy_access(runtime: Runtime) -> AccessController:
    from openkms.service.authorization import PolicyAccessController

    return PolicyAccessController(runtime)


class Runtime:
    def __init__(
        self,
        storage: Storage,
        root: RootOfTrust,
        clock: Clock,
        *,
        settings: RuntimeSettings | None = None,
        access: AccessController | None = None,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        self.storage = storage
        self.root = root
        self.clock = clock
        self.settings = settings or RuntimeSettings()
        self.access: AccessController = access or _policy_access(self)
        s = self.settings
        kwargs = {} if monotonic is None else {"clock": monotonic}
        self.key_cache: TtlCache[str, KeyRecord] = TtlCache(100_000, s.cache_ttl_seconds, **kwargs)
        self.alias_cache: TtlCache[tuple[str, str, str], str] = TtlCache(
            100_000, s.cache_ttl_seconds, **kwargs
        )
        self.material_cache: TtlCache[tuple[str, str], object] = TtlCache(
            s.material_cache_entries, s.material_cache_seconds, **kwargs
        )
        self.grant_cache: TtlCache[str, list[Any]] = TtlCache(
            100_000, s.cache_ttl_seconds, **kwargs
        )
        self._usage_lock = threading.Lock()
        # arn -> (at, operation, request id); a KeyUsage is made only when flushed or read.
        self._pending_usage: dict[str, tuple[float, str, str]] = {}
        # State that optional subsystems keep per runtime (openkms.keystores' settings).
        self.extensions: dict[str, object] = {}

    @property
    def partition(self) -> str:
        return self.settings.partition

    # -- key resolution ----------------------------------------------------------------------
    def key_arn_for(self, account_id: str, region: str, key_id: str) -> str:
        return key_arn(self.partition, region, account_id, key_id)

    def load_key(self, arn: str) -> KeyRecord | None:
        key = self.key_cache.get(arn)
        if key is None:
            key = self.storage.get_key(arn)
            if key is not None:
                self.key_cache.put(arn, key)
        return key

    def forget_key(self, arn: str) -> None:
        self.key_cache.pop(arn)

    def alias_target(self, account_id: str, region: str, alias_name: str) -> str | None:
        ident = (account_id, region, alias_name)
        key_id = self.alias_cache.get(ident)
        if key_id is None:
            alias = self.storage.get_alias(account_id, region, alias_name)
            if alias is None:
                return None
            key_id = alias.key_id
            self.alias_cache.put(ident, key_id)
        return key_id

    def forget_alias(self, account_id: str, region: str, alias_name: str) -> None:
        self.alias_cache.pop((account_id, region, alias_name))

    def resolve_key(
        self, ctx: RequestContext, key_ref: str, *, allow_alias: bool = True, record: bool = True
    ) -> KeyRecord:
        """Finds the key a ``key_ref`` names, in the caller's Region; NotFoundException if none."""
        key: KeyRecord | None = ctx.resolved.get(key_ref)
        # A reference that names an alias must still be refused where aliases are not allowed.
        if key is None or not (
            allow_alias or (":alias/" not in key_ref and not key_ref.startswith("alias/"))
        ):
            key = self._resolve_key(ctx, key_ref, allow_alias=allow_alias)
            ctx.resolved[key_ref] = key
        if record:
            ctx.resources.append(key.arn)
        return key

    def _resolve_key(self, ctx: RequestContext, key_ref: str, *, allow_alias: bool) -> KeyRecord:
        ref, valid_key_id = parsed_key_ref(key_ref)
        account = ctx.principal.account_id
        region = ctx.region
        if ref is None:
            raise NotFoundException(f"Invalid keyId '{key_ref}'")
        # A key of another account exists for the caller only in the operations that honour
        # cross-account permissions; for the others the answer is the one for a missing key,
        # given before any lookup, so it tells nothing about that account's keys.
        foreign = (
            ref.account_id is not None
            and ref.account_id != account
            and ctx.operation not in CROSS_ACCOUNT_OPERATIONS
        )
        if ref.kind in ("alias", "alias-arn"):
            ctx.request_alias = ref.alias_name
            if not allow_alias:
                raise InvalidArnException("Key Aliases are not supported for this operation.")
            assert ref.alias_name is not None
            if ref.kind == "alias-arn":
                assert ref.account_id is not None and ref.region is not None
                if ref.region != region:
                    raise NotFoundException(f"Invalid arn {ref.region}")
                account = ref.account_id
            name = alias_arn(self.partition, region, account, ref.alias_name)
            if foreign:
                raise NotFoundException(f"Alias {name} is not found.")
            key_id = self.alias_target(account, region, ref.alias_name)
            if key_id is None:
                raise NotFoundException(f"Alias {name} is not found.")
        else:
            assert ref.key_id is not None
            key_id = ref.key_id
            if ref.kind == "key-arn":
                assert ref.account_id is not None and ref.region is not None
                if ref.region != region:
                    raise NotFoundException(f"Invalid arn {ref.region}")
                account = ref.account_id
            if not valid_key_id:
                raise NotFoundException(f"Invalid keyId '{key_ref}'")
        arn = self.key_arn_for(account, region, key_id)
        if foreign:
            raise NotFoundException(f"Key '{arn}' does not exist")
        key = self.load_key(arn)
        if key is None:
            raise NotFoundException(f"Key '{arn}' does not exist")
        return key

    def grants(self, key_arn: str) -> list[Any]:
        """The key's grants (GrantRecord), cached for at most the cache TTL."""
        cached = self.grant_cache.get(key_arn)
        if cached is None:
            cached = grants_for_key(self.storage, key_arn)
            self.grant_cache.put(key_arn, cached)
        return cached

    def forget_grants(self, key_arn: str) -> None:
        self.grant_cache.pop(key_arn)

    # -- key material ------------------------------------------------------------------------
    def wrap_material(self, arn: str, material_id: str, plaintext: bytes) -> bytes:
        return self.root.wrap(plaintext, material_aad(arn, material_id))

    def unwrap_material(self, record: MaterialRecord) -> bytes:
        try:
            return self.root.unwrap(
                record.wrapped, material_aad(record.key_arn, record.material_id)
            )
        except RootOfTrustError as exc:
            # A record the root key cannot open is a server fault, not the caller's.
            raise KMSInternalException("Key material could not be unwrapped.") from exc

    def material_record(self, key: KeyRecord, material_id: str) -> MaterialRecord | None:
        return self.storage.get_material(key.arn, material_id)

    def symmetric_key(self, key: KeyRecord, material_id: str) -> SymmetricKey | None:
        """The unwrapped AES key of one material version, or None if the key has no such one."""
        ident = (key.arn, material_id)
        cached = self.material_cache.get(ident)
        if isinstance(cached, SymmetricKey):
            return cached
        record = self.storage.get_material(key.arn, material_id)
        if record is None:
            return None
        handle = SymmetricKey(self.unwrap_material(record))
        self.material_cache.put(ident, handle)
        return handle

    # -- last usage (recorded off the hot path, flushed by a background task) -----------------
    def note_usage(self, key: KeyRecord, ctx: RequestContext) -> None:
        with self._usage_lock:
            self._pending_usage[key.arn] = (ctx.now, ctx.operation, ctx.request_id)

    def flush_usage(self) -> int:
        with self._usage_lock:
            batch = [KeyUsage(arn, *usage) for arn, usage in self._pending_usage.items()]
            self._pending_usage.clear()
        if batch:
            self.storage.record_key_usage(batch)
        return len(batch)

    def pending_usage(self, arn: str) -> KeyUsage | None:
        with self._usage_lock:
            usage = self._pending_usage.get(arn)
        return None if usage is None else KeyUsage(arn, *usage)
