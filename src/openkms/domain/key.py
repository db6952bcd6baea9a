"""The KMS key record and the key-state rules of AWS's key-state table."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Any, Final

from openkms.errors import DisabledException, KMSInvalidStateException
from openkms.types import KeyState


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """Everything stored about a KMS key except its material (kept wrapped, separately)."""

    arn: str
    key_id: str
    account_id: str
    region: str
    key_spec: str
    key_usage: str
    origin: str
    key_manager: str
    description: str
    state: str
    created_at: float
    policy: str
    multi_region: bool = False
    current_material_id: str | None = None
    deletion_at: float | None = None
    pending_window_days: int | None = None
    rotation_enabled: bool = False
    rotation_period_days: int | None = None
    next_rotation_at: float | None = None
    on_demand_rotations: int = 0
    custom_key_store_id: str | None = None
    valid_to: float | None = None
    expiration_model: str | None = None
    last_used_at: float | None = None
    last_used_operation: str | None = None
    last_used_request_id: str | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    # The unique id of each IAM user or role ARN the key policy names, as it was when the policy
    # was stored (openkms.policy.principal_ids): the policy names those principals, not later
    # ones created under the same names.
    policy_principals: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def key_state(self) -> KeyState:
        return KeyState(self.state)

    def with_changes(self, **changes: Any) -> KeyRecord:
        return dataclasses.replace(self, **changes)

    def to_doc(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> KeyRecord:
        # The in-memory storage snapshots its records per transaction. Compiled (mypyc), the
        # record has no copy.deepcopy fallback that works: that rebuilds the object field by
        # field through setattr, which a frozen dataclass refuses. Frozen, only its two
        # dictionaries can change under a copy.
        return dataclasses.replace(
            self,
            extra=copy.deepcopy(self.extra, memo),
            policy_principals=dict(self.policy_principals),
        )

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> KeyRecord:
        # The field names, worked out once: dataclasses.fields() on every call was most of the
        # cost of reading a key (a key search reads up to 10,000 a request).
        if _KEY_FIELDS.issuperset(doc):  # the usual case, checked in C
            return cls(**doc)
        return cls(**{k: v for k, v in doc.items() if k in _KEY_FIELDS})


_KEY_FIELDS: Final = frozenset(f.name for f in dataclasses.fields(KeyRecord))


# How AWS names each state in its key-state errors ("<arn> is pending import."), never the enum
# name. A primary key waiting for its replicas reads as pending deletion too.
_STATE_WORDS = {
    KeyState.ENABLED.value: "enabled",
    KeyState.DISABLED.value: "disabled",
    KeyState.PENDING_DELETION.value: "pending deletion",
    KeyState.PENDING_REPLICA_DELETION.value: "pending deletion",
    KeyState.PENDING_IMPORT.value: "pending import",
    KeyState.UNAVAILABLE.value: "unavailable",
    KeyState.CREATING.value: "creating",
    KeyState.UPDATING.value: "updating",
}


def state_message(key: KeyRecord) -> str:
    """AWS's text for a key whose state refuses the operation: "<arn> is disabled." ..."""
    return f"{key.arn} is {_STATE_WORDS.get(key.state, key.state)}."


def state_error(key: KeyRecord) -> DisabledException | KMSInvalidStateException:
    """The key-state table's answer for a key that is not Enabled: ``DisabledException`` for a
    disabled key, ``KMSInvalidStateException`` for every other state."""
    if key.state == KeyState.DISABLED.value:
        return DisabledException(state_message(key))
    return KMSInvalidStateException(state_message(key))


# A plain constant: an Enum member's ``.value`` is a Python-level property, and this check runs
# on every cryptographic request.
_ENABLED: Final = KeyState.ENABLED.value


def require_usable_for_crypto(key: KeyRecord) -> None:
    """Encrypt, Decrypt, ReEncrypt, GenerateDataKey*, Sign, Verify, GenerateMac ... (the first
    rows of AWS's key-state table)."""
    if key.state != _ENABLED:
        raise state_error(key)


def require_not_pending_deletion(key: KeyRecord) -> None:
    """CreateAlias, TagResource, UntagResource, UpdateKeyDescription, EnableKey, DisableKey ..."""
    if key.state in (KeyState.PENDING_DELETION.value, KeyState.PENDING_REPLICA_DELETION.value):
        raise KMSInvalidStateException(state_message(key))


def require_enable_disable_allowed(key: KeyRecord) -> None:
    require_not_pending_deletion(key)
    if key.state in (
        KeyState.PENDING_IMPORT.value,
        KeyState.CREATING.value,
        KeyState.UPDATING.value,
    ):
        raise KMSInvalidStateException(state_message(key))
