"""One audit record per API call, in the shape of an AWS CloudTrail event for KMS.

``build_record`` returns a plain ``dict`` ready for ``sink.write``; ``record_parts`` returns
the same record of an authenticated call already serialized, for ``sink.write_parts`` (the
request path's form: most of the record's start is the same for one caller and second). Field
by field it follows CloudTrail's record contents and the KMS examples (``ct-encrypt``,
``ct-decrypt``, ``ct-generatedatakey``, ``ct-createkey``):

* ``eventVersion`` ``"1.08"``, ``eventSource`` ``"kms.amazonaws.com"``, ``eventType``
  ``"AwsApiCall"``, ``managementEvent`` ``true``, ``eventCategory`` ``"Management"``.
* ``eventTime``: ISO 8601 in UTC to the second (``2022-08-10T22:38:27Z``).
* ``userIdentity``: ``Root`` / ``IAMUser`` / ``AssumedRole`` (with ``sessionContext``), or
  ``Unknown`` when the caller could not be authenticated (``ctx`` is ``None``).
* ``requestParameters``: the request, redacted (``openkms.audit.redaction``), member names in
  lowerCamelCase; ``null`` when nothing is left.
* ``responseElements``: ``null`` for failed calls, read-only calls and the cryptographic
  operations (CloudTrail logs no plaintext, ciphertext, signature, MAC or public key: its
  Encrypt, Decrypt and GenerateDataKey examples show ``"responseElements": null``); for the
  calls that change something (``CreateKey``, ``ScheduleKeyDeletion``, ``CreateGrant`` ...)
  the redacted response (``keyMetadata`` ...).
* ``errorCode`` / ``errorMessage``: present only for a failed call, as on CloudTrail.
* ``resources``: ``[{"accountId", "type": "AWS::KMS::Key", "ARN"}]`` for each key ARN the
  call touched (aliases get ``AWS::KMS::Alias``); absent when there is none.
* ``requestID``, a fresh ``eventID`` (uuid4), ``readOnly``, ``recipientAccountId``.

What a record copies from the request as it came (``eventName`` of an unknown target,
``userAgent``, ``errorMessage``, the access key id of an unauthenticated caller) is cut to a
bound (``FIELD_LIMITS``) and marked ``...[truncated N chars]``, so that a stranger cannot make a
record large.

Records are treated as immutable once built: parts of them (``userIdentity``) are shared
between records of the same principal.
"""

from __future__ import annotations

import binascii
import os
import time
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, Final

import orjson

from openkms.audit.redaction import redact
from openkms.context import Principal, RequestContext

__all__ = [
    "CRYPTOGRAPHIC_OPERATIONS",
    "EVENT_SOURCE",
    "EVENT_VERSION",
    "FIELD_LIMITS",
    "build_record",
    "event_id",
    "event_time",
    "is_read_only",
    "record_parts",
    "user_identity",
]

EVENT_VERSION: Final = "1.08"
EVENT_SOURCE: Final = "kms.amazonaws.com"

# Characters kept of what a record copies verbatim from the request.
FIELD_LIMITS: Final = {
    "eventName": 128,
    "userAgent": 1024,
    "errorMessage": 1024,
    "accessKeyId": 128,
}


def bounded(text: str, limit: int) -> str:
    """``text`` if it is at most ``limit`` characters, else its start and a marker."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}...[truncated {len(text) - limit} chars]"

# Operations that use key material. CloudTrail logs them with readOnly true and
# responseElements null.
CRYPTOGRAPHIC_OPERATIONS: Final = frozenset(
    {
        "Decapsulate",
        "Decrypt",
        "DeriveSharedSecret",
        "Encapsulate",
        "Encrypt",
        "GenerateDataKey",
        "GenerateDataKeyPair",
        "GenerateDataKeyPairWithoutPlaintext",
        "GenerateDataKeyWithoutPlaintext",
        "GenerateMac",
        "GenerateRandom",
        "ReEncrypt",
        "Sign",
        "Verify",
        "VerifyMac",
    }
)


@lru_cache(maxsize=1)
def _read_only_operations() -> frozenset[str]:
    # Imported late: the dispatch table pulls in the whole service layer, which the audit
    # command line does not need.
    from openkms.protocol.extensions import EXTENSIONS
    from openkms.protocol.operations import READ_ONLY

    # The extensions (key search) only read.
    return READ_ONLY | CRYPTOGRAPHIC_OPERATIONS | frozenset(EXTENSIONS)


def is_read_only(operation: str) -> bool:
    """CloudTrail's ``readOnly`` for an operation: the read-only management operations
    (``protocol.operations.READ_ONLY``) and every cryptographic operation."""
    return operation in _read_only_operations()


# --- eventID -------------------------------------------------------------------------------------
# Ids are made 64 at a time and handed out with list.pop, which is atomic (no two threads get
# the same id, without a lock). A batch is one os.urandom read laid out as 64 texts by strided
# slice copies (one C call per character position, not per id) and split: ~2 k instructions
# per id under callgrind against ~6.4 k for a 128-bit integer's arithmetic and formatting.
_BATCH: Final = 64
_STRIDE: Final = 37  # 36 characters and a space
# (hex digit of the 32, its place in "xxxxxxxx-xxxx-4xxx-Vxxx-xxxxxxxxxxxx")
_PLACES: Final = tuple(
    (digit, digit + (digit >= 8) + (digit >= 12) + (digit >= 16) + (digit >= 20))
    for digit in range(32)
    if digit not in (12, 16)
)
_TEMPLATE: Final = b"00000000-0000-4000-8000-000000000000 " * _BATCH
# The variant digit of a version 4 UUID is one of 8, 9, a, b: the random digit's two low bits.
_VARIANT: Final = bytes.maketrans(b"0123456789abcdef", b"89ab89ab89ab89ab")
_ids: list[str] = []


def _batch() -> list[str]:
    digits = binascii.hexlify(os.urandom(16 * _BATCH))
    out = bytearray(_TEMPLATE)
    for digit, place in _PLACES:
        out[place::_STRIDE] = digits[digit::32]
    out[19::_STRIDE] = digits[16::32].translate(_VARIANT)
    return out.decode("ascii").split()


def _after_fork() -> None:
    _ids.clear()  # a forked worker must not hand out the ids left in its parent's batch


os.register_at_fork(after_in_child=_after_fork)


def event_id() -> str:
    """A random (version 4) UUID string, far cheaper than ``str(uuid.uuid4())``.

    Event ids must be unique, not secret: 122 bits from ``os.urandom``, like ``uuid4``."""
    try:
        return _ids.pop()
    except IndexError:
        fresh = _batch()
        mine = fresh.pop()
        _ids.extend(fresh)
        return mine


# --- eventTime ----------------------------------------------------------------------------------
_last_second: int = -1
_last_text: str = ""


def event_time(epoch: float) -> str:
    """``2022-08-10T22:38:27Z``: CloudTrail's eventTime, to the second (truncated)."""
    global _last_second, _last_text
    second = int(epoch // 1)
    if second != _last_second:
        text = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))
        _last_second, _last_text = second, text  # a benign race: both values are right
        return text
    return _last_text


# --- userIdentity --------------------------------------------------------------------------------
_IDENTITIES: dict[tuple[str, ...], dict[str, Any]] = {}
_IDENTITIES_LIMIT: Final = 4096


def _role_of(arn: str, account: str) -> tuple[str, str]:
    """Role ARN and role name of ``arn:aws:sts::123:assumed-role/Name/Session``."""
    parts = arn.split(":", 5)
    partition = parts[1] if len(parts) == 6 else "aws"
    path = parts[5].split("/") if len(parts) == 6 else []
    name = path[1] if len(path) >= 3 and path[0] == "assumed-role" else ""
    return f"arn:{partition}:iam::{account}:role/{name}", name


def user_identity(principal: Principal | None, access_key_id: str = "") -> dict[str, Any]:
    """The ``userIdentity`` element for a principal (``None``: not authenticated)."""
    if principal is None:
        return {
            "type": "Unknown",
            "principalId": "",
            "arn": "",
            "accountId": "",
            "accessKeyId": bounded(access_key_id, FIELD_LIMITS["accessKeyId"]),
        }
    # Keyed by a tuple of strings (their hashes are cached), not by the dataclass, whose
    # generated __hash__ costs a microsecond.
    key = (
        principal.arn,
        principal.access_key_id,
        principal.user_id,
        principal.kind,
        principal.account_id,
    )
    cached = _IDENTITIES.get(key)
    if cached is not None:
        return cached
    identity: dict[str, Any] = {
        "principalId": principal.user_id,
        "arn": principal.arn,
        "accountId": principal.account_id,
        "accessKeyId": principal.access_key_id,
    }
    kind = principal.kind
    if kind == "root":
        identity = {"type": "Root", **identity}
    elif kind == "assumed-role":
        role_arn, role_name = _role_of(principal.arn, principal.account_id)
        identity = {
            "type": "AssumedRole",
            **identity,
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": principal.user_id.split(":", 1)[0],
                    "arn": role_arn,
                    "accountId": principal.account_id,
                    "userName": role_name,
                },
                "attributes": {"mfaAuthenticated": "false"},
            },
        }
    else:
        identity = {
            "type": "IAMUser",
            **identity,
            "userName": principal.arn.rsplit("/", 1)[-1] if "/" in principal.arn else "",
        }
    if len(_IDENTITIES) >= _IDENTITIES_LIMIT:
        _IDENTITIES.clear()
    _IDENTITIES[key] = identity
    return identity


# --- resources -------------------------------------------------------------------------------
_RESOURCES: dict[tuple[str, str], dict[str, str]] = {}
_RESOURCES_LIMIT: Final = 16384


def _resource(arn: str, default_account: str) -> dict[str, str]:
    key = (arn, default_account)
    found = _RESOURCES.get(key)
    if found is not None:
        return found
    parts = arn.split(":", 5)
    account = parts[4] if len(parts) == 6 and parts[4] else default_account
    resource = parts[5] if len(parts) == 6 else ""
    if len(parts) == 6 and parts[2] == "secretsmanager":
        kind = "AWS::SecretsManager::Secret"
    else:
        kind = "AWS::KMS::Alias" if resource.startswith("alias/") else "AWS::KMS::Key"
    found = {"accountId": account, "type": kind, "ARN": arn}
    if len(_RESOURCES) >= _RESOURCES_LIMIT:
        _RESOURCES.clear()
    _RESOURCES[key] = found
    return found


_TAILS: dict[tuple[str, str, bool], bytes] = {}
# The rest of a usual record (record_parts): its parameters, its request id (both serialized
# by orjson), its event id (hex digits and dashes) and the _tail of its key.
_USUAL_REST: Final = (
    b',"requestParameters":%b,"responseElements":null,"requestID":%b,"eventID":"%b"%b'
)


def _tail(arn: str, account_id: str, read_only: bool) -> bytes:
    """The members after ``eventID`` of a record on one resource, serialized as ``_add_rest``
    adds them (``,"readOnly":...}``): the same for every call on that key."""
    key = (arn, account_id, read_only)
    found = _TAILS.get(key)
    if found is not None:
        return found
    members = {
        "readOnly": read_only,
        "resources": [_resource(arn, account_id)],
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account_id,
        "eventCategory": "Management",
    }
    found = b"," + orjson.dumps(members)[1:]
    if len(_TAILS) >= _RESOURCES_LIMIT:
        _TAILS.clear()
    _TAILS[key] = found
    return found


def build_record(
    *,
    ctx: RequestContext | None,
    operation: str,
    request_params: Mapping[str, Any] | None,
    response: Mapping[str, Any] | None,
    error_code: str | None,
    error_message: str | None,
    request_id: str,
    event_time: float,
    region: str,
    source_ip: str,
    user_agent: str,
    read_only: bool,
    resources: Sequence[str],
    account_id: str,
    access_key_id: str = "",
    additional_event_data: Mapping[str, Any] | None = None,
    event_source: str = EVENT_SOURCE,
) -> dict[str, Any]:
    """A CloudTrail-shaped record of one call (see the module docstring).

    ``request_params`` and ``response`` are the validated request and the handler's result,
    blobs as ``bytes``; neither is kept: what is logged is a redacted copy. ``access_key_id``
    names the key an unauthenticated caller presented (``ctx`` is ``None``);
    ``additional_event_data`` (``{"keyMaterialId": ...}``) is logged as given.
    """
    record = _head(
        None if ctx is None else ctx.principal,
        access_key_id,
        _event_time(event_time),
        event_source,
        operation,
        region,
        source_ip,
        user_agent,
    )
    _add_rest(
        record,
        operation,
        request_params,
        response,
        error_code,
        error_message,
        request_id,
        read_only,
        resources,
        account_id,
        additional_event_data,
    )
    return record


# The serialized start of an authenticated caller's record, up to its requestParameters: the
# same bytes for one principal, second, operation, Region, source address and user agent.
# Kept per those values (bounded), so that the same bytes object comes back each time:
# ``chain.seal_parts`` then finds the SHA-256 state after it by the object's cached hash.
_PREFIXES: dict[tuple[str, ...], bytes] = {}
_PREFIXES_LIMIT: Final = 512


def record_parts(
    *,
    ctx: RequestContext,
    operation: str,
    request_params: Mapping[str, Any] | None,
    response: Mapping[str, Any] | None,
    error_code: str | None,
    error_message: str | None,
    request_id: str,
    event_time: float,
    region: str,
    source_ip: str,
    user_agent: str,
    read_only: bool,
    resources: Sequence[str],
    account_id: str,
    additional_event_data: Mapping[str, Any] | None = None,
    event_source: str = EVENT_SOURCE,
) -> tuple[bytes, bytes]:
    """``build_record``'s record of an authenticated call, serialized, in two parts for
    ``sink.write_parts``: ``prefix + rest`` is byte for byte ``orjson.dumps(build_record(...))``
    with the same arguments (the unit tests pin it). The prefix is built once per caller,
    operation, client and second; only the rest is built and serialized per request.

    Raises ``TypeError`` (orjson's) for a value JSON cannot carry, as ``chain.seal`` would."""
    principal = ctx.principal
    when = _event_time(event_time)
    # Keyed by the user agent as the record keeps it (bounded): a long one held as part of a
    # key would let a caller make each of the entries as large as a request's headers.
    agent = bounded(user_agent, FIELD_LIMITS["userAgent"])
    key = (
        principal.arn,
        principal.access_key_id,
        principal.user_id,
        principal.kind,
        principal.account_id,
        when,
        event_source,
        operation,
        region,
        source_ip,
        agent,
    )
    prefix = _PREFIXES.get(key)
    if prefix is None:
        head = _head(principal, "", when, event_source, operation, region, source_ip, user_agent)
        prefix = orjson.dumps(head)[:-1]
        if len(_PREFIXES) >= _PREFIXES_LIMIT:
            _PREFIXES.clear()
        _PREFIXES[key] = prefix
    if (
        error_code is None
        and not additional_event_data
        and len(resources) == 1
        and (read_only or operation in CRYPTOGRAPHIC_OPERATIONS)
    ):
        # The usual record (a cryptographic call on one key that succeeded): only the request's
        # parameters and its two ids differ from one record to the next; what follows them is
        # serialized once per key, account and readOnly (_tail). The same bytes as the dict
        # below gives (the unit tests compare them), without building and walking that dict.
        return prefix, _USUAL_REST % (
            orjson.dumps(redact(request_params)),
            orjson.dumps(request_id),
            event_id().encode(),
            _tail(resources[0], account_id, read_only),
        )
    rest: dict[str, Any] = {}
    _add_rest(
        rest,
        operation,
        request_params,
        response,
        error_code,
        error_message,
        request_id,
        read_only,
        resources,
        account_id,
        additional_event_data,
    )
    return prefix, b"," + orjson.dumps(rest)[1:]


def _head(
    principal: Principal | None,
    access_key_id: str,
    when: str,
    event_source: str,
    operation: str,
    region: str,
    source_ip: str,
    user_agent: str,
) -> dict[str, Any]:
    """The members before ``requestParameters`` (and before ``errorCode``)."""
    return {
        "eventVersion": EVENT_VERSION,
        "userIdentity": user_identity(principal, access_key_id),
        "eventTime": when,
        "eventSource": event_source,
        "eventName": bounded(operation, FIELD_LIMITS["eventName"]),
        "awsRegion": region,
        "sourceIPAddress": source_ip,
        "userAgent": bounded(user_agent, FIELD_LIMITS["userAgent"]),
    }


def _add_rest(
    record: dict[str, Any],
    operation: str,
    request_params: Mapping[str, Any] | None,
    response: Mapping[str, Any] | None,
    error_code: str | None,
    error_message: str | None,
    request_id: str,
    read_only: bool,
    resources: Sequence[str],
    account_id: str,
    additional_event_data: Mapping[str, Any] | None,
) -> None:
    """The members from ``errorCode`` (or ``requestParameters``) on, added to ``record``."""
    failed = error_code is not None
    if failed or read_only or operation in CRYPTOGRAPHIC_OPERATIONS:
        response_elements = None
    else:
        response_elements = redact(response)
    if failed:  # CloudTrail's place for them: before requestParameters
        record["errorCode"] = error_code
        record["errorMessage"] = bounded(error_message or "", FIELD_LIMITS["errorMessage"])
    record["requestParameters"] = redact(request_params)
    record["responseElements"] = response_elements
    if additional_event_data:
        record["additionalEventData"] = dict(additional_event_data)
    record["requestID"] = request_id
    record["eventID"] = event_id()
    record["readOnly"] = read_only
    if resources:
        if len(resources) == 1:
            record["resources"] = [_resource(resources[0], account_id)]
        else:
            record["resources"] = [_resource(a, account_id) for a in dict.fromkeys(resources)]
    record["eventType"] = "AwsApiCall"
    record["managementEvent"] = True
    record["recipientAccountId"] = account_id
    record["eventCategory"] = "Management"


_event_time = event_time  # build_record's parameter shadows the function's name
