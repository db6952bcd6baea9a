"""What of a request or response may enter the audit log: everything but secrets.

CloudTrail logs a KMS call's parameters with their member names in lowerCamelCase
(``keyId``, ``encryptionContext``, ``numberOfBytes``) and leaves out every plaintext,
ciphertext, message, signature, MAC, key material, import token, shared secret and password.
``redact`` does the same, in two layers:

1. **By name**, at any depth and whatever the value's type: the members in ``DENIED_MEMBERS``
   and any member whose name contains one of ``DENIED_FRAGMENTS`` (``Plaintext``, ``Secret``,
   ``Password``, ``Token``, ``PrivateKey``, ``Credential``) are dropped. This covers
   ``Plaintext``, ``PrivateKeyPlaintext``, ``SharedSecret``, ``RawSecretAccessKey``,
   ``KeyStorePassword``, ``ImportToken``, ``GrantToken(s)``, ``SessionToken`` and
   ``SecretAccessKey`` even when a value arrives as a string.
2. **By type (default deny)**: a member holding ``bytes`` is dropped unless its name is on
   ``ALLOWED_BLOB_MEMBERS`` (empty: no blob of the KMS API is logged, as on CloudTrail); so is
   any value that is not a JSON scalar, mapping or list. A blob member added to the API later
   is therefore never logged by accident.

Encryption contexts (``EncryptionContext``, ``SourceEncryptionContext``,
``DestinationEncryptionContext`` and a grant's ``EncryptionContextSubset`` /
``EncryptionContextEquals``) are kept, their keys verbatim as CloudTrail shows them: they are
not secret and they are what an auditor searches for. Only their string values are kept.

Timestamps (``CreationDate``, ``DeletionDate``, ``ValidTo`` ...) arrive as epoch seconds and
are written as CloudTrail writes them in request and response elements:
``"Aug 10, 2022, 10:38:27 PM"`` (UTC).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Mapping
from typing import Any, Final, cast

__all__ = [
    "ALLOWED_BLOB_MEMBERS",
    "DENIED_FRAGMENTS",
    "DENIED_MEMBERS",
    "camel",
    "redact",
]

# Members never logged, at any depth (KMS model names).
DENIED_MEMBERS: Final = frozenset(
    {
        "AttestationDocument",
        "CiphertextBlob",
        "CiphertextForRecipient",
        "EncryptedKeyMaterial",
        "ImportToken",
        "KeyStorePassword",
        "Mac",
        "Message",
        "Plaintext",
        "PrivateKeyCiphertextBlob",
        "PrivateKeyPlaintext",
        "PublicKey",
        "RawSecretAccessKey",
        "Recipient",
        "SharedSecret",
        "SharedSecretCiphertextBlob",
        "Signature",
        "TrustAnchorCertificate",
        # The whole XKS credential: the model marks its AccessKeyId sensitive as well.
        "XksProxyAuthenticationCredential",
    }
)

# Any member whose name contains one of these is dropped too.
DENIED_FRAGMENTS: Final = ("Plaintext", "Secret", "Password", "Token", "PrivateKey", "Credential")

# Blob members that may be logged (base64). None: CloudTrail logs no blob of the KMS API.
ALLOWED_BLOB_MEMBERS: Final[frozenset[str]] = frozenset()

# Maps whose keys are user data, copied verbatim (string values only).
_CONTEXT_MAPS: Final = frozenset(
    {
        "EncryptionContext",
        "SourceEncryptionContext",
        "DestinationEncryptionContext",
        "EncryptionContextSubset",
        "EncryptionContextEquals",
    }
)

# Members holding a timestamp (epoch seconds), from the model's timestamp shapes.
_TIMESTAMPS: Final = frozenset(
    {
        "CreationDate",
        "DeletionDate",
        "KeyCreationDate",
        "LastUpdatedDate",
        "NextRotationDate",
        "OnDemandRotationStartDate",
        "ParametersValidTo",
        "RotationDate",
        "Timestamp",
        "TrackingStartDate",
        "ValidTo",
    }
)

# Names CloudTrail does not lower-case (an initialism at the start).
_CAMEL_EXCEPTIONS: Final = {"AWSAccountId": "AWSAccountId"}

_DROP: Final = 0
_PLAIN: Final = 1
_CONTEXT: Final = 2
_TIME: Final = 3

# name -> (decision, logged name); filled on first sight of each name.
_NAMES: dict[str, tuple[int, str]] = {}
_NAMES_LIMIT: Final = 4096


def camel(name: str) -> str:
    """The member name as CloudTrail writes it: ``KeyId`` -> ``keyId``."""
    exception = _CAMEL_EXCEPTIONS.get(name)
    if exception is not None:
        return exception
    return name[:1].lower() + name[1:]


def _classify(name: str) -> tuple[int, str]:
    found = _NAMES.get(name)
    if found is not None:
        return found
    if name in DENIED_MEMBERS or any(f in name for f in DENIED_FRAGMENTS):
        decision = _DROP
    elif name in _CONTEXT_MAPS:
        decision = _CONTEXT
    elif name in _TIMESTAMPS:
        decision = _TIME
    else:
        decision = _PLAIN
    result = (decision, camel(name))
    if len(_NAMES) < _NAMES_LIMIT:  # names come from validated shapes; bound it anyway
        _NAMES[name] = result
    return result


_MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                  "Dec")  # fmt: skip


def cloudtrail_date(epoch: float) -> str:
    """CloudTrail's rendering of a timestamp member: ``Aug 10, 2022, 10:38:27 PM`` (UTC). A value
    no calendar holds (a caller's ``1e20``) is written as the number it is."""
    try:
        t = time.gmtime(epoch)
    except (OverflowError, OSError, ValueError):
        return repr(epoch)
    hour = t.tm_hour % 12 or 12
    half = "AM" if t.tm_hour < 12 else "PM"
    return (
        f"{_MONTHS[t.tm_mon - 1]} {t.tm_mday}, {t.tm_year}, "
        f"{hour}:{t.tm_min:02d}:{t.tm_sec:02d} {half}"
    )


def _context(value: object) -> dict[str, str] | None:
    # type() first: isinstance against the Mapping ABC costs thousands of instructions.
    if value is None or (type(value) is not dict and not isinstance(value, Mapping)):
        return None
    return {k: v for k, v in value.items() if type(k) is str and type(v) is str}


def _value(name: str, value: object) -> tuple[bool, Any]:
    """(keep, logged value) for a member's value; ``name`` is the model name."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return True, value
    if kind is float:
        return True, value
    if kind is dict:  # before the ABC check, which costs thousands of instructions
        return True, _structure(cast(dict[Any, Any], value))
    if isinstance(value, Mapping):
        return True, _structure(value)
    if isinstance(value, list | tuple):
        items = []
        for item in value:
            keep, logged = _value(name, item)
            if keep:
                items.append(logged)
        return True, items
    if isinstance(value, bytes | bytearray | memoryview):
        if name in ALLOWED_BLOB_MEMBERS:
            return True, base64.b64encode(value).decode("ascii")
        return False, None
    return False, None  # default deny: unknown types are not logged


def _structure(params: Mapping[Any, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    names = _NAMES
    for name, value in params.items():
        entry = names.get(name)
        if entry is None:
            if type(name) is not str:
                continue
            entry = _classify(name)
        decision, logged_name = entry
        if decision == _PLAIN:
            kind = type(value)
            if kind is str or kind is int or kind is bool or kind is float or value is None:
                out[logged_name] = value
            else:
                keep, logged = _value(name, value)
                if keep:
                    out[logged_name] = logged
        elif decision == _CONTEXT:
            context = _context(value)
            if context is not None:
                out[logged_name] = context
        elif decision == _TIME:
            if type(value) in (int, float):
                out[logged_name] = cloudtrail_date(value)
            elif type(value) is str:
                out[logged_name] = value
        # _DROP: not logged
    return out


def redact(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The loggable part of a request or response; ``None`` when nothing is left."""
    if not params:
        return None
    out = _structure(params)
    return out or None
