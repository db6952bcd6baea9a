"""The KMS key record and the key-state rules of AWS's key-state table."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

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

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> KeyRecord:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in doc.items() if k in known})


def pending_deletion_message(arn: str) -> str:
    return f"{arn} is pending deletion."


def require_usable_for_crypto(key: KeyRecord) -> None:
    """Encrypt, Decrypt, ReEncrypt, GenerateDataKey*, Sign, Verify, GenerateMac ... (the first
    rows of AWS's key-state table)."""
    state = key.state
    if state == KeyState.ENABLED.value:
        return
    if state == KeyState.DISABLED.value:
        raise DisabledException(f"{key.arn} is disabled.")
    if state in (KeyState.PENDING_DELETION.value, KeyState.PENDING_REPLICA_DELETION.value):
        raise KMSInvalidStateException(pending_deletion_message(key.arn))
    if state == KeyState.PENDING_IMPORT.value:
        raise KMSInvalidStateException(f"{key.arn} is pending import.")
    if state == KeyState.UNAVAILABLE.value:
        raise KMSInvalidStateException(f"{key.arn} is unavailable.")
    raise KMSInvalidStateException(f"{key.arn} is {state}.")


def require_not_pending_deletion(key: KeyRecord) -> None:
    """CreateAlias, TagResource, UntagResource, UpdateKeyDescription, EnableKey, DisableKey ..."""
    if key.state in (KeyState.PENDING_DELETION.value, KeyState.PENDING_REPLICA_DELETION.value):
        raise KMSInvalidStateException(pending_deletion_message(key.arn))


def require_enable_disable_allowed(key: KeyRecord) -> None:
    require_not_pending_deletion(key)
    if key.state == KeyState.PENDING_IMPORT.value:
        raise KMSInvalidStateException(f"{key.arn} is pending import.")
    if key.state in (KeyState.CREATING.value, KeyState.UPDATING.value):
        raise KMSInvalidStateException(f"{key.arn} is {key.state}.")
