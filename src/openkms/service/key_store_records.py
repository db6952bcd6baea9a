"""Custom key stores' records: a store is a ``kms-custom-key-store`` document (scope: the
account id) holding its settings, its ConnectionState and its secret (the CloudHSM
KeyStorePassword, or the XKS proxy's secret access key) wrapped by the root of trust. While a
store is not connected its keys are ``Unavailable`` (their own Enabled/Disabled state is kept in
the key record's ``extra`` and comes back on connecting).

Storage only: the operations are in ``service/custom_key_stores.py``, the back ends and the keys
in stores in ``service/key_store_backends.py``.
"""

from __future__ import annotations

import base64
import dataclasses
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from openkms.domain.key import KeyRecord
from openkms.errors import CustomKeyStoreNotFoundException, KMSInternalException
from openkms.rootoftrust.aad import CUSTOM_KEY_STORE_KIND, custom_key_store_secret_aad
from openkms.rootoftrust.base import RootOfTrustError
from openkms.service.runtime import Runtime
from openkms.types import KeyState

KIND = CUSTOM_KEY_STORE_KIND
AWS_CLOUDHSM = "AWS_CLOUDHSM"
EXTERNAL_KEY_STORE = "EXTERNAL_KEY_STORE"
PUBLIC_ENDPOINT = "PUBLIC_ENDPOINT"
CONNECTED = "CONNECTED"
DISCONNECTED = "DISCONNECTED"
FAILED = "FAILED"
DISCONNECTING = "DISCONNECTING"
MAX_STORES = 10  # per account and Region
_SAVED_STATE = "state_when_available"


# --- the store record ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class StoreRecord:
    store_id: str
    account_id: str
    region: str
    name: str
    store_type: str
    created_at: float
    state: str = DISCONNECTED
    error_code: str | None = None
    cluster_id: str | None = None
    trust_anchor: str | None = None
    wrapped_password: str | None = None  # base64, wrapped by the root of trust
    xks_endpoint: str | None = None
    xks_path: str | None = None
    xks_connectivity: str | None = None
    xks_access_key_id: str | None = None
    wrapped_xks_secret: str | None = None  # base64, wrapped by the root of trust

    def __repr__(self) -> str:
        return f"StoreRecord(id={self.store_id!r}, type={self.store_type}, state={self.state})"

    def to_json(self) -> str:
        return orjson.dumps(dataclasses.asdict(self)).decode()

    @classmethod
    def from_json(cls, text: str) -> StoreRecord:
        doc = orjson.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in doc.items() if k in known})

    def with_changes(self, **changes: Any) -> StoreRecord:
        return dataclasses.replace(self, **changes)


def wrap_secret(rt: Runtime, account: str, store_id: str, what: str, secret: str) -> str:
    wrapped = rt.root.wrap(secret.encode(), custom_key_store_secret_aad(account, store_id, what))
    return base64.b64encode(wrapped).decode("ascii")


def unwrap_secret(rt: Runtime, store: StoreRecord, what: str, wrapped: str | None) -> str:
    if wrapped is None:
        raise KMSInternalException("The custom key store has no stored credential.")
    try:
        return rt.root.unwrap(
            base64.b64decode(wrapped),
            custom_key_store_secret_aad(store.account_id, store.store_id, what),
        ).decode()
    except (RootOfTrustError, ValueError) as exc:
        raise KMSInternalException(
            "The custom key store's credential could not be unwrapped."
        ) from exc


def new_store_id() -> str:
    return "cks-" + secrets.token_hex(9)[:17]


def save_store(rt: Runtime, store: StoreRecord, *, create: bool = False) -> None:
    rt.storage.put_document(
        KIND, store.account_id, store.store_id, store.to_json(), rt.clock.now(), create_only=create
    )


def all_stores(rt: Runtime, account: str, region: str) -> list[StoreRecord]:
    out: list[StoreRecord] = []
    after: str | None = None
    while True:
        batch = rt.storage.list_documents(KIND, account, after=after, limit=500)
        for _name, doc in batch:
            store = StoreRecord.from_json(doc)
            if store.region == region:
                out.append(store)
        if len(batch) < 500:
            return out
        after = batch[-1][0]


def get_store(rt: Runtime, account: str, region: str, store_id: str) -> StoreRecord:
    text = rt.storage.get_document(KIND, account, store_id)
    store = None if text is None else StoreRecord.from_json(text)
    if store is None or store.region != region:
        raise CustomKeyStoreNotFoundException(
            f"Custom key store with ID {store_id} does not exist in this account and Region."
        )
    return store


def keys_in_store(rt: Runtime, store: StoreRecord) -> Iterator[KeyRecord]:
    after: str | None = None
    while True:
        batch = rt.storage.list_keys(store.account_id, store.region, after, 500)
        for key in batch:
            if key.custom_key_store_id == store.store_id:
                yield key
        if len(batch) < 500:
            return
        after = batch[-1].key_id


def set_keys_available(rt: Runtime, store: StoreRecord, available: bool) -> None:
    """Inside a transaction: the store's keys become Unavailable, or get their state back."""
    for key in list(keys_in_store(rt, store)):
        if available and key.state == KeyState.UNAVAILABLE.value:
            extra = dict(key.extra)
            state = extra.pop(_SAVED_STATE, KeyState.ENABLED.value)
            rt.storage.update_key(key.with_changes(state=state, extra=extra))
        elif not available and key.state in (KeyState.ENABLED.value, KeyState.DISABLED.value):
            extra = {**key.extra, _SAVED_STATE: key.state}
            rt.storage.update_key(key.with_changes(state=KeyState.UNAVAILABLE.value, extra=extra))
        else:
            continue
        rt.forget_key(key.arn)
