"""Sealing: the file root key split into n Shamir shares of which any k rebuild it, and a root
of trust that stays sealed (every use raises ``RootOfTrustUnavailable``, HTTP 503) until k
shares have been entered.

The secret sharing is pycryptodome's ``Crypto.Protocol.SecretSharing.Shamir`` (over GF(2^128),
16-byte secrets): the 32-byte key is split as two 16-byte halves, each with its own random
polynomial of degree k-1 evaluated at the same points, so share i carries both halves' values at
x = i. Fewer than k shares tell nothing about either half.

A share is one line of text::

    okms-share-v1.<k>.<i>.<split id>.<check value>.<64 hex digits>.<8 hex digits>

``split id`` is random per split, so shares of two splits are never mixed; ``check value`` is
the root key's (non-secret) check value, against which the rebuilt key is verified; the last
field is a checksum of everything before it, which catches a mistyped share.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import os
import threading
from dataclasses import dataclass
from typing import Any

import orjson
from Crypto.Protocol.SecretSharing import Shamir

from openkms.rootoftrust.aesgcm_root import AesGcmRoot
from openkms.rootoftrust.base import RootOfTrustUnavailable

SHARE_PREFIX = "okms-share-v1"
UNSEAL_PATH = "/_openkms/unseal"
MAX_SHARES = 255


class ShareError(ValueError):
    """A share is malformed, mistyped, from another split, or the shares rebuild another key."""


@dataclass(frozen=True, slots=True)
class Share:
    threshold: int
    index: int
    split_id: str
    check: str
    value: bytes  # 32 bytes: the two halves' values at x = index

    def __repr__(self) -> str:
        return f"Share(index={self.index}, threshold={self.threshold}, split_id={self.split_id!r})"

    def encode(self) -> str:
        head = (
            f"{SHARE_PREFIX}.{self.threshold}.{self.index}.{self.split_id}.{self.check}."
            f"{self.value.hex()}"
        )
        return f"{head}.{_checksum(head)}"


def _checksum(text: str) -> str:
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:8]


def check_value_of(key: bytes) -> str:
    """The check value an ``AesGcmRoot`` (file root) on ``key`` reports."""
    return AesGcmRoot(key).check_value()


def parse_share(text: str) -> Share:
    text = text.strip()
    fields = text.split(".")
    if len(fields) != 7 or fields[0] != SHARE_PREFIX:
        raise ShareError(f"not an openkms key share (it starts with {SHARE_PREFIX}.)")
    head, _, checksum = text.rpartition(".")
    if not hmac.compare_digest(_checksum(head), checksum.lower()):
        raise ShareError("the share is mistyped (its checksum does not match)")
    try:
        threshold, index = int(fields[1]), int(fields[2])
        value = bytes.fromhex(fields[5])
    except ValueError:
        raise ShareError("the share is damaged") from None
    if not 1 <= index <= MAX_SHARES or not 2 <= threshold <= MAX_SHARES or len(value) != 32:
        raise ShareError("the share is damaged")
    return Share(threshold, index, fields[3], fields[4], value)


def split_key(key: bytes, threshold: int, shares: int) -> list[str]:
    """``shares`` shares of the 32-byte ``key``, any ``threshold`` of which rebuild it."""
    if len(key) != 32:
        raise ValueError("the root key must be 32 bytes")
    if not 2 <= threshold <= shares <= MAX_SHARES:
        raise ValueError(f"need 2 <= threshold <= shares <= {MAX_SHARES}")
    split_id = os.urandom(4).hex()
    check = check_value_of(key)
    low = Shamir.split(threshold, shares, key[:16])
    high = Shamir.split(threshold, shares, key[16:])
    result = []
    for (i, a), (j, b) in zip(low, high, strict=True):
        assert i == j
        result.append(Share(threshold, i, split_id, check, a + b).encode())
    # Every k-subset must rebuild the key (all of them when that is cheap).
    subsets = itertools.combinations(result, threshold)
    for subset in itertools.islice(subsets, 64):
        if combine_shares(list(subset)) != key:
            raise AssertionError("Shamir split did not round-trip")
    return result


def combine_shares(texts: list[str]) -> bytes:
    """The key the shares rebuild; raises ShareError unless they are enough shares of one
    split and the key matches the check value they carry."""
    shares = _consistent([parse_share(t) for t in texts])
    if len(shares) < shares[0].threshold:
        raise ShareError(f"{shares[0].threshold} shares are needed, {len(shares)} given")
    return _combine(shares)


def _consistent(shares: list[Share]) -> list[Share]:
    if not shares:
        raise ShareError("no shares")
    first = shares[0]
    by_index: dict[int, Share] = {}
    for share in shares:
        if (share.split_id, share.threshold, share.check) != (
            first.split_id,
            first.threshold,
            first.check,
        ):
            raise ShareError("the shares come from different splits")
        known = by_index.get(share.index)
        if known is not None and known.value != share.value:
            raise ShareError(f"two different shares claim index {share.index}")
        by_index[share.index] = share
    return list(by_index.values())


def _combine(shares: list[Share]) -> bytes:
    chosen = shares[: shares[0].threshold]
    low = Shamir.combine([(s.index, s.value[:16]) for s in chosen])
    high = Shamir.combine([(s.index, s.value[16:]) for s in chosen])
    key = low + high
    if not hmac.compare_digest(check_value_of(key), chosen[0].check):
        raise ShareError("the shares do not rebuild the root key they were split from")
    return key


class SealedRoot:
    """A root of trust that is sealed until ``submit_share`` has been given enough shares.

    ``expected_check`` is the check value stored with the database: shares of any other key are
    refused. While sealed, ``check_value()`` answers that expected value (so the start-up check
    passes), and ``wrap``/``unwrap`` raise ``RootOfTrustUnavailable``."""

    name = "shamir"

    def __init__(self, expected_check: str | None = None) -> None:
        self._expected = expected_check
        self._lock = threading.Lock()
        self._shares: dict[int, Share] = {}
        self._root: AesGcmRoot | None = None
        self._threshold: int | None = None

    def __repr__(self) -> str:
        state = "unsealed" if self._root is not None else f"sealed, {len(self._shares)} shares"
        return f"SealedRoot({state}, expected_check={self._expected!r})"

    @property
    def sealed(self) -> bool:
        return self._root is None

    def status(self) -> dict[str, Any]:
        with self._lock:
            unsealed = self._root is not None
            return {
                "sealed": not unsealed,
                "progress": self._threshold if unsealed else len(self._shares),
                "threshold": self._threshold,
            }

    def submit_share(self, text: str) -> tuple[int, int]:
        """Adds one share; (shares held, shares needed). When enough are held the key is rebuilt
        and checked, and the root unseals ((k, k) is returned); shares that rebuild another key
        are all forgotten and ShareError is raised."""
        share = parse_share(text)
        with self._lock:
            if self._root is not None:
                return share.threshold, share.threshold
            if self._expected is not None and share.check != self._expected:
                raise ShareError("the share belongs to another root key than this database's")
            shares = _consistent([*self._shares.values(), share])
            self._shares = {s.index: s for s in shares}
            self._threshold = share.threshold
            if len(shares) < share.threshold:
                return len(shares), share.threshold
            try:
                key = _combine(shares)
            except ShareError:
                self._shares.clear()
                raise
            self._root = AesGcmRoot(key)
            self._shares.clear()
            return share.threshold, share.threshold

    def reset(self) -> None:
        """Forgets the shares entered so far (not the key, once unsealed)."""
        with self._lock:
            self._shares.clear()
            if self._root is None:
                self._threshold = None

    def _inner(self) -> AesGcmRoot:
        root = self._root
        if root is None:
            raise RootOfTrustUnavailable(
                "the server is sealed: enter the root key shares with 'openkms unseal'"
            )
        return root

    def wrap(self, plaintext: bytes, aad: bytes) -> bytes:
        return self._inner().wrap(plaintext, aad)

    def unwrap(self, wrapped: bytes, aad: bytes) -> bytes:
        return self._inner().unwrap(wrapped, aad)

    def check_value(self) -> str:
        root = self._root
        if root is not None:
            return root.check_value()
        if self._expected is None:
            raise RootOfTrustUnavailable("the server is sealed")
        return self._expected

    def healthy(self) -> bool:
        return self._root is not None


def find_sealed(root: object) -> SealedRoot | None:
    """The SealedRoot inside ``root`` (through a rotation wrapper's ``current``), if any."""
    seen = 0
    while root is not None and seen < 8:
        if isinstance(root, SealedRoot):
            return root
        root = getattr(root, "current", None)
        seen += 1
    return None


def handle_unseal(root: object, body: bytes) -> tuple[int, dict[str, Any]]:
    """The unseal endpoint, without HTTP: ``body`` is the request body, the answer is (status,
    JSON document). ``{"share": "okms-share-v1..."}`` adds a share; ``{}`` (or an empty body)
    asks the state; ``{"reset": true}`` forgets the shares entered so far."""
    sealed = find_sealed(root)
    if sealed is None:
        return 404, {"__type": "NotFoundException", "message": "the server is not sealed"}
    try:
        request = orjson.loads(body) if body.strip() else {}
    except orjson.JSONDecodeError:
        return 400, {"__type": "ValidationException", "message": "the body is not JSON"}
    if not isinstance(request, dict):
        return 400, {"__type": "ValidationException", "message": "the body is not a JSON object"}
    if request.get("reset") is True:
        sealed.reset()
        return 200, sealed.status()
    share = request.get("share")
    if share is None:
        return 200, sealed.status()
    if not isinstance(share, str):
        return 400, {"__type": "ValidationException", "message": "share: a string"}
    try:
        sealed.submit_share(share)
    except ShareError as exc:
        return 400, {"__type": "InvalidShareException", "message": str(exc), **sealed.status()}
    return 200, sealed.status()
