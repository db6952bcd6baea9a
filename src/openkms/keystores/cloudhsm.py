"""AWS_CLOUDHSM custom key stores, served by a PKCS#11 token of the operator's.

A CloudHsmClusterId maps (``custom_key_store_clusters``) to a PKCS#11 module and a token label;
the store's KeyStorePassword is the token's user PIN. Each KMS key of the store is an AES-256
secret key generated inside the token (sensitive, not extractable, usable only to encrypt and
decrypt), found by its label; Encrypt and Decrypt run in the token with CKM_AES_GCM and the
caller's AAD. Calls go through the module's lock and its shared session per token (see
``openkms.rootoftrust.pkcs11``). The PIN lives only in this object and never appears in a repr,
a log line or an error.
"""

from __future__ import annotations

import os
import threading
from typing import Any, cast

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.mechanisms import GCMParams

from openkms.config import ClusterConfig
from openkms.keystores import StoreConnectionError
from openkms.rootoftrust.pkcs11 import (
    _PIN_ERRORS,
    KEY_TEMPLATE,
    Pkcs11ConfigError,
    _AesKey,
    _library,
    _Pin,
)

TAG_BITS = 128

_DATA_ERRORS: tuple[type[Exception], ...] = (
    pkcs11.EncryptedDataInvalid,
    pkcs11.EncryptedDataLenRange,
    pkcs11.DataInvalid,
    pkcs11.DataLenRange,
    # SoftHSM2 answers a GCM tag mismatch with CKR_GENERAL_ERROR.
    pkcs11.GeneralError,
    pkcs11.FunctionFailed,
)


class HsmDataError(Exception):
    """The token refused the data (a ciphertext that does not authenticate)."""


class HsmUnavailable(Exception):
    """The token, or the key in it, cannot be used now."""


class CloudHsmStore:
    """One custom key store's view of its token."""

    def __init__(self, cluster: ClusterConfig, pin: str) -> None:
        self.cluster = cluster
        self._pin = _Pin(pin)
        self._handles: dict[str, tuple[int, _AesKey]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"CloudHsmStore(cluster={self.cluster.cluster_id!r})"

    def _library(self) -> Any:
        try:
            return _library(self.cluster.module)
        except Pkcs11ConfigError as exc:
            raise StoreConnectionError("CLUSTER_NOT_FOUND", str(exc)) from None

    def connect(self) -> None:
        """Logs in to the token afresh with the store's PIN (so a wrong PIN is noticed):
        StoreConnectionError with AWS's ConnectionErrorCode when that fails."""
        library = self._library()
        with library.lock:
            library.drop(self.cluster.token_label)
            self._handles.clear()
            try:
                session = library.session(self.cluster.token_label, self._pin.value)
                mechanisms = session.token.slot.get_mechanisms()
            except pkcs11.PinLocked:
                raise StoreConnectionError(
                    "USER_LOCKED_OUT", "The token's user is locked."
                ) from None
            except _PIN_ERRORS:
                raise StoreConnectionError(
                    "INVALID_CREDENTIALS", "The token refused the key store password."
                ) from None
            except (pkcs11.PKCS11Error, Pkcs11ConfigError) as exc:
                library.drop(self.cluster.token_label)
                raise StoreConnectionError(
                    "CLUSTER_NOT_FOUND",
                    f"The token {self.cluster.token_label!r} is not available "
                    f"({type(exc).__name__}).",
                ) from None
            if Mechanism.AES_GCM not in mechanisms:
                raise StoreConnectionError(
                    "INTERNAL_ERROR", "The token does not offer CKM_AES_GCM."
                )

    def _session(self, library: Any) -> pkcs11.Session:
        try:
            return cast(pkcs11.Session, library.session(self.cluster.token_label, self._pin.value))
        except (pkcs11.PKCS11Error, Pkcs11ConfigError):
            library.drop(self.cluster.token_label)
            raise HsmUnavailable(
                f"The token of cluster {self.cluster.cluster_id} is not available."
            ) from None

    def _key(self, library: Any, label: str) -> _AesKey:
        cached = self._handles.get(label)
        if cached is not None and cached[0] == library.generation:
            return cached[1]
        session = self._session(library)
        try:
            key = session.get_key(object_class=ObjectClass.SECRET_KEY, label=label)
        except pkcs11.NoSuchKey:
            raise HsmUnavailable(f"The token holds no key labelled {label!r}.") from None
        except pkcs11.PKCS11Error:
            library.drop(self.cluster.token_label)
            raise HsmUnavailable("The token is not available.") from None
        aes = cast(_AesKey, key)
        self._handles[label] = (library.generation, aes)
        return aes

    def generate_key(self, label: str) -> None:
        library = self._library()
        with library.lock:
            session = self._session(library)
            try:
                session.generate_key(
                    KeyType.AES,
                    256,
                    label=label,
                    id=os.urandom(16),
                    store=True,
                    template=KEY_TEMPLATE,
                )
            except pkcs11.PKCS11Error:
                library.drop(self.cluster.token_label)
                raise HsmUnavailable("The token could not generate the key.") from None

    def delete_key(self, label: str) -> None:
        library = self._library()
        with library.lock:
            self._handles.pop(label, None)
            session = self._session(library)
            try:
                for obj in session.get_objects(
                    {Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.LABEL: label}
                ):
                    obj.destroy()
            except pkcs11.PKCS11Error:
                library.drop(self.cluster.token_label)
                raise HsmUnavailable("The token could not delete the key.") from None

    def _crypt(self, label: str, encrypting: bool, data: bytes, iv: bytes, aad: bytes) -> bytes:
        library = self._library()
        params = GCMParams(iv, aad, TAG_BITS)
        with library.lock:
            for attempt in range(2):
                key = self._key(library, label)
                try:
                    if encrypting:
                        out = key.encrypt(data, mechanism=Mechanism.AES_GCM, mechanism_param=params)
                    else:
                        out = key.decrypt(data, mechanism=Mechanism.AES_GCM, mechanism_param=params)
                    return bytes(out)
                except _DATA_ERRORS:
                    if not encrypting:
                        raise HsmDataError("The ciphertext does not authenticate.") from None
                    raise HsmUnavailable("The token refused to encrypt.") from None
                except pkcs11.PKCS11Error:
                    self._handles.pop(label, None)
                    library.drop(self.cluster.token_label)
                    if attempt:
                        break
            raise HsmUnavailable("The token is not available.")

    def encrypt(self, label: str, plaintext: bytes, iv: bytes, aad: bytes) -> bytes:
        """AES-256-GCM ciphertext || tag, computed in the token."""
        return self._crypt(label, True, plaintext, iv, aad)

    def decrypt(self, label: str, sealed: bytes, iv: bytes, aad: bytes) -> bytes:
        return self._crypt(label, False, sealed, iv, aad)

    def random(self, count: int) -> bytes:
        """Random bytes from the token's generator."""
        library = self._library()
        with library.lock:
            session = self._session(library)
            try:
                return bytes(session.generate_random(count * 8))
            except pkcs11.PKCS11Error:
                library.drop(self.cluster.token_label)
                raise HsmUnavailable("The token could not generate random bytes.") from None
