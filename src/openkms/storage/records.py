"""Records as stored. Secrets appear only wrapped by the root of trust."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from openkms.domain.key import KeyRecord


@dataclass(frozen=True, slots=True)
class AccountRecord:
    account_id: str
    created_at: float


@dataclass(frozen=True, slots=True)
class AccessKeyRecord:
    access_key_id: str
    account_id: str
    principal_arn: str
    wrapped_secret: bytes
    status: str  # Active | Inactive
    created_at: float

    def __repr__(self) -> str:
        return (
            f"AccessKeyRecord(access_key_id={self.access_key_id!r}, "
            f"principal_arn={self.principal_arn!r}, status={self.status!r})"
        )


@dataclass(frozen=True, slots=True)
class MaterialRecord:
    key_arn: str
    material_id: str
    wrapped: bytes
    created_at: float
    state: str  # CURRENT | NON_CURRENT | PENDING_ROTATION
    rotation_type: str | None = None  # AUTOMATIC | ON_DEMAND; None for the first material
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __repr__(self) -> str:
        return f"MaterialRecord(key_arn={self.key_arn!r}, material_id={self.material_id!r})"


@dataclass(frozen=True, slots=True)
class AliasRecord:
    account_id: str
    region: str
    alias_name: str
    key_id: str
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class KeyUsage:
    key_arn: str
    at: float
    operation: str
    request_id: str


@dataclass(frozen=True, slots=True)
class KeyQuery:
    """What a key search asks the index for (``openkms.service.key_search``). Empty fields match
    every key. ``text`` is already ASCII-lower-cased: it matches, case-insensitively for ASCII
    letters and as a plain substring (no wildcards), the key id, the description, an alias name
    or a tag key or value. The backends may return more (the service re-checks every match
    against the record), never fewer."""

    text: str = ""
    key_state: str | None = None
    key_spec: str | None = None
    key_usage: str | None = None
    origin: str | None = None
    multi_region: bool | None = None
    # Automatic rotation on, next rotation at or before this time (epoch seconds).
    rotation_due_before: float | None = None

    def admits(self, key: KeyRecord) -> bool:
        """Whether ``key`` passes the filters (all but the text)."""
        for wanted, actual in (
            (self.key_state, key.state),
            (self.key_spec, key.key_spec),
            (self.key_usage, key.key_usage),
            (self.origin, key.origin),
        ):
            if wanted is not None and wanted != actual:
                return False
        if self.multi_region is not None and self.multi_region != key.multi_region:
            return False
        due = self.rotation_due_before
        if due is None:
            return True
        at = key.next_rotation_at
        return key.rotation_enabled and at is not None and at <= due


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def ascii_lower(text: str) -> str:
    """``text`` with its ASCII letters lower-cased, nothing else changed: the case folding of
    key search, the same in every backend."""
    return text.translate(_ASCII_LOWER)
