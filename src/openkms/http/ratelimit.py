"""Request-rate quotas as AWS KMS applies them: token buckets per account, Region and quota.

The quotas (requests per second, AWS's defaults from the "Request quotas" page of the KMS
developer guide; see docs/configuration.md):

* **Shared cryptographic quotas**, chosen by the key's spec: ``symmetric`` 10,000 (symmetric
  encryption and HMAC keys, and GenerateRandom), ``rsa`` 1,000, ``ecc`` 1,000 (ECC, Ed25519
  and SM2 keys; also DeriveSharedSecret), ``ml_dsa`` 1,000. AWS publishes no quota for
  ML-KEM's Encapsulate/Decapsulate; openkms gives them their own ``ml_kem`` quota of 1,000.
* **GenerateDataKeyPair** (and ...WithoutPlaintext): a separate quota per key pair spec,
  named ``GenerateDataKeyPair:<spec>`` (ECC specs 100 each, RSA_2048 20, RSA_3072 4,
  RSA_4096 1, SM2 25; ML-KEM specs, which AWS does not list, 100).
* **Every other operation** has its own quota under its own name (``CreateKey`` 5,
  ``DescribeKey`` 2,000, ...). Operations not in the table (IAM, STS) are not limited.

A bucket holds at most one second's worth of requests (at least 1) and refills continuously,
which matches "N requests in each one-second interval" closely without a visible seam at
second boundaries. Overrides change a quota's rate; ``None`` (``"unlimited"`` in TOML, or
``inf``) removes it.

Across worker processes the buckets are shared (:class:`SharedBuckets`): a hash table of
fixed-size slots in a memory-mapped file, guarded by ``flock`` on that file (held for a few
hundred nanoseconds per check). Each worker opens the file itself; the server process should
delete it at start (it lives in the runtime directory the CLI empties). If the table is ever
full of buckets that are still refilling, a new bucket cannot be placed and the request is
allowed (fail open, counted in ``SharedBuckets.overflows``): quotas protect the service, they
must not deny it. With one worker, :class:`LocalBuckets` keeps the buckets in a dict.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import math
import mmap
import os
import struct
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from openkms.quotas import (
    CRYPTO_OPERATIONS,
    DATA_KEY_PAIR,
    DATA_KEY_PAIR_OPERATIONS,
    DEFAULT_QUOTAS,
    check_overrides,
    crypto_quota_for,
    merge_quotas,
)

if TYPE_CHECKING:
    from openkms.config import Settings

__all__ = [
    "CRYPTO_OPERATIONS",
    "DATA_KEY_PAIR_OPERATIONS",
    "DEFAULT_QUOTAS",
    "BucketBackend",
    "LocalBuckets",
    "RateLimiter",
    "SharedBuckets",
    "check_overrides",
    "crypto_quota_for",
    "limiter_from_settings",
    "merge_quotas",
    "reset_shared_buckets",
]

# --- Buckets ------------------------------------------------------------------------------------
BucketId = tuple[str, str, str]  # (account, region, quota)


class BucketBackend(Protocol):
    def take(self, bucket: BucketId, rate: float, capacity: float) -> bool:
        """Takes one token from ``bucket`` if it has one."""
        ...


class LocalBuckets:
    """Buckets in this process only (one worker, or tests)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_buckets: int = 100_000):
        self._clock = clock
        self._max = max_buckets
        self._buckets: dict[BucketId, list[float]] = {}  # [tokens, last refill]
        self._lock = threading.Lock()

    def take(self, bucket: BucketId, rate: float, capacity: float) -> bool:
        now = self._clock()
        with self._lock:
            state = self._buckets.get(bucket)
            if state is None:
                if len(self._buckets) >= self._max:
                    self._evict_full(now)
                state = self._buckets[bucket] = [capacity, now]
            tokens = state[0] + (now - state[1]) * rate
            if tokens > capacity:
                tokens = capacity
            state[1] = now
            if tokens >= 1.0:
                state[0] = tokens - 1.0
                return True
            state[0] = tokens
            return False

    def _evict_full(self, now: float) -> None:
        # Buckets idle long enough to be full again behave exactly like new ones.
        stale = [b for b, (_, last) in self._buckets.items() if now - last > 60.0]
        for b in stale:
            del self._buckets[b]
        if len(self._buckets) >= self._max:
            self._buckets.clear()


_MAGIC = b"OKMSRL01"
_HEADER = struct.Struct("<8sI")  # magic, slot count
_HEADER_SIZE = 64
_SLOT = struct.Struct("<Qddd")  # key (0 = empty), tokens, last refill, time it is full again
_PROBES = 32


def _bucket_key(bucket: BucketId) -> int:
    digest = hashlib.blake2b("\x00".join(bucket).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") or 1


class SharedBuckets:
    """Token buckets shared by every process that opens the same file.

    Layout: a 64-byte header (magic, slot count), then ``slots`` slots of 32 bytes: a 64-bit
    hash of (account, Region, quota), the tokens, the time of the last refill and the time the
    bucket is full again (after which the slot may be given to another bucket). Open
    addressing with up to 32 probes. Times are ``time.monotonic()``, one clock for every
    process on the machine. Every access to the file holds ``flock`` on it.

    To keep the lock off most requests, a process takes tokens in batches ("leases") of 1%
    of the quota's rate (at least 1; so exactly one at a time for quotas below 200/s) and
    hands them out locally for up to ``lease_seconds``. When the shared bucket is empty it
    also remembers how long it will stay so (other processes only ever take tokens, so that
    time is exact) and refuses locally until then. The cost: tokens leased by one worker
    cannot serve another, so with W workers up to (W-1) x 1% of a quota can be held
    elsewhere for up to ``lease_seconds`` and a worker may be throttled that much early;
    never more than the quota is admitted.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        slots: int = 16384,
        lease_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if slots < _PROBES:
            raise ValueError(f"slots: at least {_PROBES}")
        self.path = Path(path)
        self.lease_seconds = lease_seconds
        self.overflows = 0
        self._wanted_slots = slots
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[BucketId, int] = {}
        self._positions: dict[int, int] = {}
        # Per bucket: [leased tokens, lease expiry, shared bucket empty until].
        self._leases: dict[BucketId, list[float]] = {}
        self._fd = -1
        self._open()
        ref = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _reopen_after_fork(ref))

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                slots = self._init_file(fd)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
            self._map = mmap.mmap(fd, _HEADER_SIZE + slots * _SLOT.size)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._slots = slots
        self._positions.clear()

    def _init_file(self, fd: int) -> int:
        size = os.fstat(fd).st_size
        if size >= _HEADER_SIZE:
            magic, slots = _HEADER.unpack(os.pread(fd, _HEADER.size, 0))
            if magic == _MAGIC and slots >= _PROBES and size == _HEADER_SIZE + slots * _SLOT.size:
                return int(slots)
        slots = self._wanted_slots
        with contextlib.suppress(OSError):
            os.fchmod(fd, 0o600)
        os.ftruncate(fd, 0)
        os.ftruncate(fd, _HEADER_SIZE + slots * _SLOT.size)
        os.pwrite(fd, _HEADER.pack(_MAGIC, slots), 0)
        return slots

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                self._map.close()
                os.close(self._fd)
                self._fd = -1

    def _after_fork(self) -> None:
        # A forked child shares the parent's open file description, and flock would not
        # exclude the two: open the file again, and forget the parent's leases.
        self._lock = threading.Lock()
        self._leases.clear()
        if self._fd >= 0:
            self._map.close()
            os.close(self._fd)
            self._open()

    def take(self, bucket: BucketId, rate: float, capacity: float) -> bool:
        now = self._clock()
        lease = self._leases.get(bucket)
        if lease is not None:
            if lease[0] >= 1.0 and now < lease[1]:
                lease[0] -= 1.0
                return True
            if now < lease[2]:
                return False  # the shared bucket is known to be empty until then
        granted, wait = self._take_shared(bucket, rate, capacity, max(1.0, rate // 100))
        if lease is None:
            if len(self._leases) > 100_000:
                self._leases.clear()
            lease = self._leases[bucket] = [0.0, 0.0, 0.0]
        if granted < 1.0:
            lease[0], lease[2] = 0.0, now + wait
            return False
        lease[0], lease[1] = granted - 1.0, now + self.lease_seconds
        return True

    def _take_shared(
        self, bucket: BucketId, rate: float, capacity: float, wanted: float
    ) -> tuple[float, float]:
        """Takes up to ``wanted`` whole tokens from the shared bucket: how many, and the
        seconds until it has a whole token again."""
        key = self._keys.get(bucket)
        if key is None:
            if len(self._keys) > 100_000:
                self._keys.clear()
            key = self._keys[bucket] = _bucket_key(bucket)
        mm = self._map
        with self._lock:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                # Read under the lock, so that each holder sees a later time than the last.
                now = self._clock()
                pos = self._positions.get(key)
                slot_key = 0
                if pos is not None:
                    slot_key, tokens, last, _ = _SLOT.unpack_from(mm, pos)
                if pos is None or slot_key != key:
                    pos = self._place(key, now, capacity)
                    if pos is None:
                        self.overflows += 1
                        return 1.0, 0.0
                    _, tokens, last, _ = _SLOT.unpack_from(mm, pos)
                elapsed = now - last
                if elapsed < 0:
                    if elapsed < -1.0:  # a file from before a reboot: start afresh
                        tokens = capacity
                    elapsed = 0.0
                tokens += elapsed * rate
                if tokens > capacity:
                    tokens = capacity
                granted = 0.0
                if tokens >= 1.0:
                    granted = min(wanted, float(int(tokens)))
                    tokens -= granted
                _SLOT.pack_into(mm, pos, key, tokens, now, now + (capacity - tokens) / rate)
                return granted, max(0.0, 1.0 - tokens) / rate
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _place(self, key: int, now: float, capacity: float) -> int | None:
        """The slot of ``key``, claiming a free or expired one if it has none."""
        mm = self._map
        start = key % self._slots
        free: int | None = None
        for probe in range(_PROBES):
            pos = _HEADER_SIZE + ((start + probe) % self._slots) * _SLOT.size
            slot_key, _, _, full_at = _SLOT.unpack_from(mm, pos)
            if slot_key == key:
                self._remember(key, pos)
                return pos
            if free is None and (slot_key == 0 or full_at <= now):
                free = pos
            if slot_key == 0:
                break  # slots are never emptied, only reassigned: the chain ends here
        if free is None:
            return None
        _SLOT.pack_into(mm, free, key, capacity, now, now)
        self._remember(key, free)
        return free

    def _remember(self, key: int, pos: int) -> None:
        if len(self._positions) > 100_000:
            self._positions.clear()
        self._positions[key] = pos


def reset_shared_buckets(path: str | os.PathLike[str]) -> None:
    """Deletes a shared bucket file; the server process calls it before starting workers."""
    Path(path).unlink(missing_ok=True)


def _reopen_after_fork(ref: weakref.ReferenceType[SharedBuckets]) -> None:
    buckets = ref()
    if buckets is not None:
        buckets._after_fork()


# --- The limiter --------------------------------------------------------------------------------


class RateLimiter:
    """``check(account_id, operation, key_spec, key_pair_spec)`` → may the request proceed.

    Call it after resolving the key for cryptographic operations (with its ``KeySpec``), or
    before with ``key_spec=None``, which counts the request against the symmetric quota. For
    GenerateDataKeyPair(WithoutPlaintext) pass the request's ``KeyPairSpec``; without it the
    request is not limited. A refused request is answered with ThrottlingException
    ("Rate exceeded.").
    """

    def __init__(
        self,
        quotas: Mapping[str, float | None] | None = None,
        backend: BucketBackend | None = None,
    ) -> None:
        merged = dict(DEFAULT_QUOTAS) if quotas is None else dict(quotas)
        self._rates: dict[str, tuple[float, float]] = {
            name: (float(rate), max(float(rate), 1.0))
            for name, rate in merged.items()
            if rate is not None and not math.isinf(rate)
        }
        self._backend: BucketBackend = backend if backend is not None else LocalBuckets()
        # (operation, key spec, key pair spec) -> quota, "" when not limited.
        self._classes: dict[tuple[str, str | None, str | None], str] = {}

    @property
    def backend(self) -> BucketBackend:
        return self._backend

    def rate_of(self, quota: str) -> float | None:
        """Requests per second of ``quota``; None when unlimited."""
        entry = self._rates.get(quota)
        return entry[0] if entry is not None else None

    def classify(
        self, operation: str, key_spec: str | None = None, key_pair_spec: str | None = None
    ) -> str | None:
        """The quota a request counts against; None when it is not limited."""
        if operation in CRYPTO_OPERATIONS:
            quota = crypto_quota_for(key_spec)
        elif operation in DATA_KEY_PAIR_OPERATIONS:
            if not key_pair_spec:
                return None
            quota = f"{DATA_KEY_PAIR}:{key_pair_spec}"
        else:
            quota = operation
        return quota if quota in self._rates else None

    def check(
        self,
        account_id: str,
        operation: str,
        key_spec: str | None = None,
        key_pair_spec: str | None = None,
        *,
        region: str = "",
    ) -> bool:
        """True when the request may proceed (and is counted), False when it must be
        throttled. Quotas apply per account (the caller's) and Region."""
        memo = (operation, key_spec, key_pair_spec)
        quota = self._classes.get(memo)
        if quota is None:
            quota = self.classify(operation, key_spec, key_pair_spec) or ""
            if len(self._classes) < 10_000:
                self._classes[memo] = quota
        if not quota:
            return True
        rate, capacity = self._rates[quota]
        return self._backend.take((account_id, region, quota), rate, capacity)


def limiter_from_settings(settings: Settings, *, shared: bool | None = None) -> RateLimiter | None:
    """The limiter the settings ask for (None when rate limits are off): buckets shared through
    ``settings.ratelimit_path`` when more than one worker serves, else in-process."""
    if not settings.rate_limits_enabled:
        return None
    quotas = merge_quotas(settings.rate_limit_overrides)
    use_shared = settings.workers > 1 if shared is None else shared
    backend: BucketBackend = (
        SharedBuckets(settings.ratelimit_path) if use_shared else LocalBuckets()
    )
    return RateLimiter(quotas, backend)
