"""The GetSecretValue fast path: secrets, versions and decrypted values kept in memory, and
every request still authorized in full.

What is cached, per process:

* secret records by (account, Region, SecretId as given) and version records by (ARN, version
  id), for at most the cache TTL (one second, as KMS key records): another process's write is
  seen within that bound; a write through this process (any Secrets Manager operation that is
  not a read) invalidates everything at once, so a caller reads its own writes;
* decrypted values by (ARN, version id), kept with the exact ciphertext they came from (a
  version's ciphertext never changes) for at most ``VALUE_SECONDS`` and ``MAX_VALUES`` entries.

What is never skipped: the Secrets Manager authorization (identity policies, the resource
policy, cross-account rules) runs on every request against the cached record, and so does the
KMS side of the read: the key named by the version's data-key blob is loaded, its state
checked, ``kms:Decrypt`` authorized on the caller's behalf (``kms:ViaService``, the encryption
context ``{SecretARN, SecretVersionId}``) and the KMS audit record written
(``kms_client.check_decrypt``); only the two AES-GCM openings are saved. A key in a custom key
store always decrypts through its store (its own checks may refuse), so such values are not
served from here. Values are never logged (``SecretValue``'s repr hides them).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Mapping
from typing import Any

from openkms.context import RequestContext
from openkms.secretsmanager import envelope, kms_client, values
from openkms.secretsmanager.access import authorize
from openkms.secretsmanager.deps import SecretsDeps
from openkms.secretsmanager.envelope import SecretValue
from openkms.secretsmanager.errors import DecryptionFailure, InvalidRequestException
from openkms.secretsmanager.lookup import MARKED_FOR_DELETION, POLICY_BINDINGS, resolve
from openkms.storage.secrets import SecretRecord, SecretVersionRecord

MAX_ENTRIES = 50_000
MAX_VALUES = 10_000
VALUE_SECONDS = 300.0
# Memory is bounded by bytes as well as entries: a version's ciphertext and a value can each be
# 64 KiB, and a secret's resource policy 20 KiB, so entries alone would let a tenant with many
# large secrets fill the server's memory.
MAX_BYTES = 32 * 1024 * 1024
_RECORD_OVERHEAD = 512  # what a record costs beyond its large members, roughly


class _Entries:
    """A bounded map whose entries expire after ``ttl`` and with each invalidation. Reads (on
    the event loop) and invalidations (on the writer thread) never race on shared structure:
    an invalidation only bumps a counter that every entry is checked against."""

    def __init__(
        self, max_entries: int, ttl: float, clock: Callable[[], float], max_bytes: int = MAX_BYTES
    ) -> None:
        self._max = max_entries
        self._max_bytes = max_bytes
        self._bytes = 0
        self._ttl = ttl
        self._clock = clock
        self._data: dict[Hashable, tuple[float, int, Any]] = {}

    def get(self, key: Hashable, generation: int) -> Any:
        entry = self._data.get(key)
        if entry is None:
            return None
        stored_at, stored_generation, value = entry
        if stored_generation != generation or self._clock() - stored_at > self._ttl:
            return None
        return value

    def put(self, key: Hashable, generation: int, value: Any, size: int) -> None:
        """Keeps ``value`` (about ``size`` bytes); past either bound, everything goes first
        (bounded without tracking recency: a full cache is rebuilt by the next reads)."""
        if len(self._data) >= self._max or self._bytes + size > self._max_bytes:
            self._data = {}
            self._bytes = 0
        if size > self._max_bytes:
            return
        self._data[key] = (self._clock(), generation, value)
        self._bytes += size


class ReadCache:
    def __init__(
        self, ttl_seconds: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.generation = 0
        self.secrets = _Entries(MAX_ENTRIES, ttl_seconds, clock)
        self.versions = _Entries(MAX_ENTRIES, ttl_seconds, clock)
        self.values = _Entries(MAX_VALUES, VALUE_SECONDS, clock)

    def __repr__(self) -> str:
        return f"ReadCache(generation={self.generation})"

    def invalidate(self) -> None:
        """A write went through this process: nothing cached before it is served again."""
        self.generation += 1


def resolve_for_read(
    deps: SecretsDeps, ctx: RequestContext, secret_id: str, action: str, req: Mapping[str, Any]
) -> SecretRecord:
    """``lookup.resolve`` for a read, from the cache when it can: authorized every time."""
    cache = deps.read_cache
    if cache is None:
        return resolve(deps, ctx, secret_id, action, req)
    generation = cache.generation
    key = (ctx.principal.account_id, ctx.region, secret_id)
    secret: SecretRecord | None = cache.secrets.get(key, generation)
    if secret is None:
        secret = resolve(deps, ctx, secret_id, action, req)
        size = _RECORD_OVERHEAD + len(secret.resource_policy or "") + len(secret_id)
        cache.secrets.put(key, generation, secret, size)
        return secret
    authorize(
        deps,
        ctx,
        action,
        secret.arn,
        secret.resource_policy,
        req,
        secret_tags=secret.tags,
        policy_bindings=secret.extra.get(POLICY_BINDINGS),
    )
    ctx.resources.append(secret.arn)
    if secret.deleted_at is not None:
        raise InvalidRequestException(MARKED_FOR_DELETION)
    return secret


def _version(
    deps: SecretsDeps,
    cache: ReadCache,
    generation: int,
    secret: SecretRecord,
    version_id: str | None,
    stage: str | None,
) -> SecretVersionRecord:
    wanted = version_id if version_id is not None else secret.stages.get(stage or values.CURRENT)
    simple = wanted is not None and (stage is None or secret.stages.get(stage) == wanted)
    key = (secret.arn, wanted)
    if simple:
        hit: SecretVersionRecord | None = cache.versions.get(key, generation)
        if hit is not None:
            return hit
    version = values.find_version(deps, secret, version_id, stage)  # AWS's errors when not found
    if simple:
        cache.versions.put(key, generation, version, _RECORD_OVERHEAD + len(version.ciphertext))
    return version


def version_and_value(
    deps: SecretsDeps,
    ctx: RequestContext,
    secret: SecretRecord,
    version_id: str | None,
    stage: str | None,
) -> tuple[SecretVersionRecord, SecretValue]:
    """The version a request names and its value, decrypted on the caller's behalf (or served
    from memory once the KMS side has authorized this caller again)."""
    cache = deps.read_cache
    if cache is None:
        version = values.find_version(deps, secret, version_id, stage)
        return version, values.decrypt(deps, ctx, secret, version)
    generation = cache.generation
    version = _version(deps, cache, generation, secret, version_id, stage)
    key = (secret.arn, version.version_id)
    cached = cache.values.get(key, 0)
    if cached is not None and cached[0] == version.ciphertext:
        context = envelope.context_for(secret.arn, version.version_id)
        try:
            blob = envelope.key_blob_of(version.ciphertext)
        except Exception as exc:
            raise DecryptionFailure(kms_client.DECRYPT_FAILED) from exc
        if kms_client.check_decrypt(deps, ctx, blob, context):
            value: SecretValue = cached[1]
            return version, value
    value = values.decrypt(deps, ctx, secret, version)
    # The ciphertext kept for the comparison, and the value (4 bytes a character at most).
    size = len(version.ciphertext) + len(value.string or "") * 4 + len(value.binary or b"")
    cache.values.put(key, 0, (version.ciphertext, value), _RECORD_OVERHEAD + size)
    return version, value
