"""Data-key caching, as the AWS Encryption SDK's caching materials manager does it.

A :class:`CachingMaterialsManager` sits in front of another materials manager and reuses its
encryption materials (data key, encrypted data keys, signing key) for further messages with
the same algorithm suite and encryption context, until an entry is older than ``max_age``
seconds, has protected ``max_messages`` messages, or would exceed ``max_bytes`` plaintext
bytes. Each message still gets its own message id, hence its own derived key. Decryption
materials are cached too (keyed by suite, encrypted data keys and context), for ``max_age``.

Reuse is skipped, as in the SDK, when the plaintext length is unknown (a stream), when one
message alone exceeds ``max_bytes``, and for suites without key derivation (their data key
would be the AES key itself).
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from openkms.envelope.materials import (
    DecryptionMaterials,
    DecryptionRequest,
    EncryptionMaterials,
    EncryptionRequest,
    MaterialsManager,
)
from openkms.envelope.message import serialize_encryption_context

__all__ = ["CacheLimits", "CacheStats", "CachingMaterialsManager", "LocalCache"]

MAX_MESSAGES_LIMIT = 2**32
MAX_BYTES_LIMIT = 2**63 - 1


@dataclass(frozen=True)
class CacheLimits:
    """How long and how much one cached data key may be used."""

    max_age: float
    max_messages: int = MAX_MESSAGES_LIMIT
    max_bytes: int = MAX_BYTES_LIMIT

    def __post_init__(self) -> None:
        if not self.max_age > 0:
            raise ValueError("max_age must be greater than 0 seconds")
        if not 0 < self.max_messages <= MAX_MESSAGES_LIMIT:
            raise ValueError(f"max_messages must be in 1..{MAX_MESSAGES_LIMIT}")
        if not 0 <= self.max_bytes <= MAX_BYTES_LIMIT:
            raise ValueError(f"max_bytes must be in 0..{MAX_BYTES_LIMIT}")


@dataclass
class _Entry:
    materials: EncryptionMaterials | DecryptionMaterials = field(repr=False)
    created: float
    messages: int = 0
    bytes: int = 0


@dataclass
class CacheStats:
    encrypt_hits: int = 0
    encrypt_misses: int = 0
    encrypt_bypassed: int = 0
    decrypt_hits: int = 0
    decrypt_misses: int = 0


class LocalCache:
    """An in-memory LRU cache of materials, at most ``capacity`` entries; thread-safe."""

    def __init__(self, capacity: int = 1000) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()
        self.lock = threading.RLock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes) -> _Entry | None:
        with self.lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(self, key: bytes, entry: _Entry) -> None:
        with self.lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def remove(self, key: bytes) -> None:
        with self.lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self.lock:
            self._entries.clear()


class CachingMaterialsManager:
    """Caches ``backing``'s materials in ``cache`` under ``limits``. ``partition`` separates
    managers that share one cache (random by default)."""

    def __init__(
        self,
        backing: MaterialsManager,
        limits: CacheLimits,
        *,
        cache: LocalCache | None = None,
        partition: bytes | str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backing = backing
        self.limits = limits
        self.cache = cache if cache is not None else LocalCache()
        if partition is None:
            partition = os.urandom(16)
        self.partition = partition.encode("utf-8") if isinstance(partition, str) else partition
        self._partition_hash = hashlib.sha512(self.partition).digest()
        self._clock = clock
        self.stats = CacheStats()

    def _fresh(self, entry: _Entry, now: float) -> bool:
        return now - entry.created < self.limits.max_age

    def _encrypt_key(self, request: EncryptionRequest) -> bytes:
        digest = hashlib.sha512()
        digest.update(self._partition_hash)
        digest.update(b"E")
        digest.update(request.suite.id_bytes)
        digest.update(request.commitment_policy.value.encode())
        digest.update(
            hashlib.sha512(serialize_encryption_context(request.encryption_context)).digest()
        )
        return digest.digest()

    def _decrypt_key(self, request: DecryptionRequest) -> bytes:
        digest = hashlib.sha512()
        digest.update(self._partition_hash)
        digest.update(b"D")
        digest.update(request.suite.id_bytes)
        digest.update(request.commitment_policy.value.encode())
        for edk in sorted(e.serialize() for e in request.encrypted_data_keys):
            digest.update(hashlib.sha512(edk).digest())
        digest.update(b"\x00" * 64)
        digest.update(
            hashlib.sha512(serialize_encryption_context(request.encryption_context)).digest()
        )
        return digest.digest()

    def get_encryption_materials(self, request: EncryptionRequest) -> EncryptionMaterials:
        length = request.plaintext_length
        if length is None or request.suite.kdf_hash is None or length > self.limits.max_bytes:
            with self.cache.lock:
                self.stats.encrypt_bypassed += 1
            return self.backing.get_encryption_materials(request)
        key = self._encrypt_key(request)
        now = self._clock()
        with self.cache.lock:
            entry = self.cache.get(key)
            if entry is not None:
                if (
                    self._fresh(entry, now)
                    and entry.messages + 1 <= self.limits.max_messages
                    and entry.bytes + length <= self.limits.max_bytes
                    and isinstance(entry.materials, EncryptionMaterials)
                ):
                    entry.messages += 1
                    entry.bytes += length
                    self.stats.encrypt_hits += 1
                    return entry.materials
                self.cache.remove(key)
            self.stats.encrypt_misses += 1
        materials = self.backing.get_encryption_materials(request)
        if self.limits.max_messages > 1:  # else the entry could never be used again
            self.cache.put(key, _Entry(materials, self._clock(), 1, length))
        return materials

    def decrypt_materials(self, request: DecryptionRequest) -> DecryptionMaterials:
        key = self._decrypt_key(request)
        now = self._clock()
        with self.cache.lock:
            entry = self.cache.get(key)
            if entry is not None:
                if self._fresh(entry, now) and isinstance(entry.materials, DecryptionMaterials):
                    self.stats.decrypt_hits += 1
                    return entry.materials
                self.cache.remove(key)
            self.stats.decrypt_misses += 1
        materials = self.backing.decrypt_materials(request)
        self.cache.put(key, _Entry(materials, self._clock()))
        return materials
