"""A root of trust in a PKCS#11 token (an HSM; SoftHSM2 in the tests), through python-pkcs11.

The root key is an AES-256 secret key generated inside the token, sensitive and not extractable,
found by its label (and generated when asked to and absent). Every secret is wrapped and
unwrapped by the token with CKM_AES_GCM and the caller's AAD:

    blob = 0x02 | iv(12) | AES-256-GCM(plaintext) || tag(16)     AAD = 0x02 | aad

The 96-bit IV is random with its top bit set; the all-zero IV is reserved for the check value,
a GMAC over a fixed label (the tag of an empty GCM encryption), so the check value is computed
by the token too and reveals nothing about the key.

Sessions: PKCS#11 libraries opened by python-pkcs11 are initialized without OS locking
(``C_Initialize(NULL)``), which tells a library such as SoftHSM2 that the application will not
call it from two threads at once. So every call into one module goes through one lock, and one
session per token is shared by every root on that token in the process (a pool of sessions
behind that lock measured no faster: docs/hsm.md). A call that fails because the session, the
key handle or the token went away drops the session and is retried once on a fresh one
(re-initializing the library when the token is not found, as SoftHSM2 only rescans its tokens
then); if that fails too the call raises ``RootOfTrustUnavailable`` (HTTP 503), and later calls
try again, at most once per ``retry_after`` seconds, until the token is back.

The PIN is kept only in this object and never appears in a repr, a log line or an error.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, cast

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.mechanisms import GCMParams

from openkms.config import SettingsError
from openkms.rootoftrust.base import RootOfTrustError, RootOfTrustUnavailable

_VERSION = b"\x02"
_IV_LEN = 12
_TAG_LEN = 16
_CHECK_IV = bytes(_IV_LEN)  # reserved for the check value: wrap IVs have the top bit set
_CHECK_LABEL = b"openkms root key check value"
CHECK_PREFIX = "pkcs11:"

# Failures that say the blob (or the plaintext) is bad, not the token.
_DATA_ERRORS: tuple[type[Exception], ...] = (
    pkcs11.EncryptedDataInvalid,
    pkcs11.EncryptedDataLenRange,
    pkcs11.DataInvalid,
    pkcs11.DataLenRange,
)
# Failures that may be either: SoftHSM2 answers a GCM tag mismatch with CKR_GENERAL_ERROR. The
# token is then probed (the check value computed again): if it works, the blob was bad.
_AMBIGUOUS_ERRORS: tuple[type[Exception], ...] = (pkcs11.GeneralError, pkcs11.FunctionFailed)
_PIN_ERRORS: tuple[type[Exception], ...] = (
    pkcs11.PinIncorrect,
    pkcs11.PinInvalid,
    pkcs11.PinLenRange,
    pkcs11.PinExpired,
    pkcs11.PinLocked,
    pkcs11.UserPinNotInitialized,
)

# The template of a generated root key: kept inside the token, usable only to encrypt and
# decrypt, never readable in clear nor exportable under another key.
KEY_TEMPLATE: dict[Attribute, Any] = {
    Attribute.TOKEN: True,
    Attribute.PRIVATE: True,
    Attribute.SENSITIVE: True,
    Attribute.EXTRACTABLE: False,
    Attribute.ENCRYPT: True,
    Attribute.DECRYPT: True,
    Attribute.WRAP: False,
    Attribute.UNWRAP: False,
    Attribute.SIGN: False,
    Attribute.VERIFY: False,
    Attribute.DERIVE: False,
    Attribute.MODIFIABLE: False,
}


class _AesKey(Protocol):
    """What this module uses of a python-pkcs11 secret key (its mixins are not typed)."""

    key_type: KeyType
    key_length: int

    def __getitem__(self, attribute: Attribute) -> Any: ...

    def encrypt(self, data: bytes, *, mechanism: Mechanism, mechanism_param: Any) -> bytes: ...

    def decrypt(self, data: bytes, *, mechanism: Mechanism, mechanism_param: Any) -> bytes: ...


class Pkcs11ConfigError(SettingsError):
    """The module, token, key or PIN is not usable as configured (not a passing outage)."""


class _Library:
    """One loaded PKCS#11 module: its lock, and one shared session per token label."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = threading.RLock()
        try:
            self.lib = pkcs11.lib(path)
        except pkcs11.PKCS11Error as exc:
            raise Pkcs11ConfigError(f"pkcs11_module: cannot load {path}: {exc}") from None
        # Bumped whenever a session is dropped or the library re-initialized: every root then
        # finds its key again before its next call.
        self.generation = 0
        self._sessions: dict[str, pkcs11.Session] = {}

    def session(self, token_label: str, pin: str | None) -> pkcs11.Session:
        session = self._sessions.get(token_label)
        if session is None:
            session = self._open(token_label, pin)
            self._sessions[token_label] = session
        return session

    def _open(self, token_label: str, pin: str | None) -> pkcs11.Session:
        token = self._find_token(token_label)
        try:
            return token.open(rw=True, user_pin=pin)
        except pkcs11.UserAlreadyLoggedIn:
            # Login is per application and token: another session of this process is logged in.
            return token.open(rw=True)

    def _find_token(self, token_label: str) -> pkcs11.Token:
        for attempt in range(2):
            try:
                return self.lib.get_token(token_label=token_label)
            except pkcs11.MultipleTokensReturned:
                raise Pkcs11ConfigError(
                    f"pkcs11_token_label: more than one token is labelled {token_label!r}"
                ) from None
            except pkcs11.PKCS11Error:
                if attempt:
                    raise
            # A token that was away (or is new) is seen only after C_Finalize/C_Initialize.
            self.reinitialize()
        raise AssertionError("unreachable")

    def drop(self, token_label: str) -> None:
        session = self._sessions.pop(token_label, None)
        self.generation += 1
        if session is not None:
            with contextlib.suppress(pkcs11.PKCS11Error):  # the session may be gone already
                session.close()

    def reinitialize(self) -> None:
        self._sessions.clear()
        self.generation += 1
        with contextlib.suppress(pkcs11.PKCS11Error):
            self.lib.finalize()
        self.lib.initialize()


_LIBRARIES: dict[str, _Library] = {}
_LIBRARIES_LOCK = threading.Lock()


def _library(path: str) -> _Library:
    resolved = os.path.realpath(path)
    with _LIBRARIES_LOCK:
        library = _LIBRARIES.get(resolved)
        if library is None:
            if not os.path.exists(resolved):
                raise Pkcs11ConfigError(f"pkcs11_module: {path} does not exist")
            library = _Library(resolved)
            _LIBRARIES[resolved] = library
        return library


def reinitialize_module(path: str) -> None:
    """Finalize and initialize a loaded module (every session of it ends): for tests and for
    operators who swapped the token under a running process."""
    library = _library(path)
    with library.lock:
        library.reinitialize()


def _new_iv() -> bytes:
    iv = bytearray(os.urandom(_IV_LEN))
    iv[0] |= 0x80
    return bytes(iv)


def _gcm(iv: bytes, aad: bytes) -> GCMParams:
    return GCMParams(iv, aad, _TAG_LEN * 8)


class _Pin:
    """Holds the PIN; prints as <redacted>."""

    __slots__ = ("value",)

    def __init__(self, value: str | None) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "<redacted>"


class Pkcs11Root:
    name = "pkcs11"

    def __init__(
        self,
        module: str,
        token_label: str,
        key_label: str,
        pin: str | None,
        *,
        create: bool = False,
        retry_after: float = 1.0,
    ) -> None:
        self._library = _library(module)
        self.module = self._library.path
        self.token_label = token_label
        self.key_label = key_label
        self._pin = _Pin(pin)
        self._retry_after = retry_after
        self._key: _AesKey | None = None
        self._generation = -1
        self._next_attempt = 0.0
        self._fatal: str | None = None
        self.created = False
        self._check = ""
        with self._library.lock:
            try:
                key = self._find_key(create=create)
                self._check = self._check_of(key)
            except _PIN_ERRORS:
                raise Pkcs11ConfigError(
                    f"the token {token_label!r} refused the PIN (pkcs11_pin_file or "
                    "OPENKMS_PKCS11_PIN)"
                ) from None
            except pkcs11.PKCS11Error as exc:
                self._library.drop(token_label)
                raise RootOfTrustUnavailable(
                    f"the PKCS#11 token {token_label!r} cannot be used: {type(exc).__name__}"
                ) from None
            self._key = key
            self._generation = self._library.generation

    def __repr__(self) -> str:
        return (
            f"Pkcs11Root(token_label={self.token_label!r}, key_label={self.key_label!r}, "
            f"check_value={self._check!r})"
        )

    # -- the key -------------------------------------------------------------------------------
    def _find_key(self, *, create: bool) -> _AesKey:
        session = self._library.session(self.token_label, self._pin.value)
        mechanisms = session.token.slot.get_mechanisms()
        if Mechanism.AES_GCM not in mechanisms:
            raise Pkcs11ConfigError(
                f"the token {self.token_label!r} does not offer CKM_AES_GCM (see docs/hsm.md)"
            )
        try:
            key = session.get_key(object_class=ObjectClass.SECRET_KEY, label=self.key_label)
        except pkcs11.NoSuchKey:
            if not create:
                raise Pkcs11ConfigError(
                    f"the token {self.token_label!r} holds no key labelled {self.key_label!r} "
                    "(set pkcs11_create_key, or OPENKMS_PKCS11_CREATE_KEY=1, to generate it)"
                ) from None
            key = session.generate_key(
                KeyType.AES,
                256,
                label=self.key_label,
                id=os.urandom(16),
                store=True,
                template=KEY_TEMPLATE,
            )
            self.created = True
        except pkcs11.MultipleObjectsReturned:
            raise Pkcs11ConfigError(
                f"more than one key is labelled {self.key_label!r} in token {self.token_label!r}"
            ) from None
        assert isinstance(key, pkcs11.SecretKey)
        aes = cast(_AesKey, key)
        self._require(aes)
        return aes

    def _require(self, key: _AesKey) -> None:
        problems = []
        if key.key_type != KeyType.AES or key.key_length != 256:
            problems.append("is not an AES-256 key")
        for attribute, wanted, what in (
            (Attribute.SENSITIVE, True, "is not sensitive"),
            (Attribute.EXTRACTABLE, False, "is extractable"),
            (Attribute.ENCRYPT, True, "cannot encrypt"),
            (Attribute.DECRYPT, True, "cannot decrypt"),
        ):
            try:
                value = key[attribute]
            except pkcs11.PKCS11Error:
                value = None
            if value is not wanted:
                problems.append(what)
        if problems:
            raise Pkcs11ConfigError(
                f"the key {self.key_label!r} in token {self.token_label!r} cannot be a root key: "
                + ", ".join(problems)
            )

    def describe(self) -> dict[str, Any]:
        """Non-secret facts about the key, for ``openkms rootkey status``."""
        with self._library.lock:
            key = self._ensure_key()
            facts: dict[str, Any] = {
                "module": self.module,
                "token_label": self.token_label,
                "key_label": self.key_label,
                "check_value": self._check,
            }
            for attribute in (
                Attribute.SENSITIVE,
                Attribute.EXTRACTABLE,
                Attribute.ALWAYS_SENSITIVE,
                Attribute.NEVER_EXTRACTABLE,
                Attribute.LOCAL,
            ):
                try:
                    facts[attribute.name.lower()] = bool(key[attribute])
                except pkcs11.PKCS11Error:
                    facts[attribute.name.lower()] = None
            return facts

    @staticmethod
    def _check_of(key: _AesKey) -> str:
        tag = key.encrypt(
            b"", mechanism=Mechanism.AES_GCM, mechanism_param=_gcm(_CHECK_IV, _CHECK_LABEL)
        )
        return CHECK_PREFIX + bytes(tag).hex()[:16]

    def _ensure_key(self) -> _AesKey:
        """The key handle, reopening the session if it was dropped. Under the library lock."""
        if self._fatal is not None:
            raise RootOfTrustUnavailable(self._fatal)
        if self._key is not None and self._generation == self._library.generation:
            return self._key
        self._key = None
        if time.monotonic() < self._next_attempt:
            raise RootOfTrustUnavailable(f"the PKCS#11 token {self.token_label!r} is unavailable")
        try:
            key = self._find_key(create=False)
            check = self._check_of(key)
        except _PIN_ERRORS:
            # Trying again could lock the token: stop until restarted.
            self._fatal = (
                f"the token {self.token_label!r} refused the PIN; restart with the right one"
            )
            raise RootOfTrustUnavailable(self._fatal) from None
        except (pkcs11.PKCS11Error, Pkcs11ConfigError) as exc:
            self._library.drop(self.token_label)
            self._next_attempt = time.monotonic() + self._retry_after
            raise RootOfTrustUnavailable(
                f"the PKCS#11 token {self.token_label!r} is unavailable ({type(exc).__name__})"
            ) from None
        if check != self._check:
            self._next_attempt = time.monotonic() + self._retry_after
            raise RootOfTrustUnavailable(
                f"the key labelled {self.key_label!r} in token {self.token_label!r} is not the "
                f"root key this process started with (check value {check}, expected {self._check})"
            )
        self._key = key
        self._generation = self._library.generation
        return key

    def _invalidate(self) -> None:
        self._key = None
        self._library.drop(self.token_label)

    def _probe(self, key: _AesKey) -> bool:
        try:
            return self._check_of(key) == self._check
        except pkcs11.PKCS11Error:
            return False

    def _call(self, operation: Callable[[_AesKey], bytes], *, unwrapping: bool) -> bytes:
        with self._library.lock:
            for _ in range(2):
                key = self._ensure_key()
                try:
                    return bytes(operation(key))
                except _DATA_ERRORS:
                    if unwrapping:
                        raise RootOfTrustError("unwrap failed") from None
                    raise RootOfTrustUnavailable("the PKCS#11 token refused to wrap") from None
                except pkcs11.PKCS11Error as exc:
                    if unwrapping and isinstance(exc, _AMBIGUOUS_ERRORS) and self._probe(key):
                        raise RootOfTrustError("unwrap failed") from None
                    self._invalidate()
            raise RootOfTrustUnavailable(f"the PKCS#11 token {self.token_label!r} is unavailable")

    # -- RootOfTrust ---------------------------------------------------------------------------
    def wrap(self, plaintext: bytes, aad: bytes) -> bytes:
        iv = _new_iv()
        params = _gcm(iv, _VERSION + aad)
        body = self._call(
            lambda key: key.encrypt(plaintext, mechanism=Mechanism.AES_GCM, mechanism_param=params),
            unwrapping=False,
        )
        return _VERSION + iv + body

    def unwrap(self, wrapped: bytes, aad: bytes) -> bytes:
        if len(wrapped) < 1 + _IV_LEN + _TAG_LEN or wrapped[:1] != _VERSION:
            raise RootOfTrustError("unwrap failed")
        iv = wrapped[1 : 1 + _IV_LEN]
        if not iv[0] & 0x80:
            raise RootOfTrustError("unwrap failed")
        params = _gcm(iv, _VERSION + aad)
        body = wrapped[1 + _IV_LEN :]
        return self._call(
            lambda key: key.decrypt(body, mechanism=Mechanism.AES_GCM, mechanism_param=params),
            unwrapping=True,
        )

    def check_value(self) -> str:
        return self._check

    def healthy(self) -> bool:
        """True when the token answers with this root key now (for /readyz)."""
        with self._library.lock:
            try:
                key = self._ensure_key()
            except RootOfTrustUnavailable:
                return False
            if self._probe(key):
                return True
            self._invalidate()
            return False

    def close(self) -> None:
        """Forgets the key handle (the session stays for other roots on the same token)."""
        with self._library.lock:
            self._key = None
