"""ARNs and key references.

``key_ref`` is unresolved input (key id, key ARN, alias name, alias ARN); resolution against
storage happens in the service layer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_MRK = re.compile(r"^mrk-[0-9a-f]{32}$")


def key_arn(partition: str, region: str, account_id: str, key_id: str) -> str:
    return f"arn:{partition}:kms:{region}:{account_id}:key/{key_id}"


def alias_arn(partition: str, region: str, account_id: str, alias_name: str) -> str:
    return f"arn:{partition}:kms:{region}:{account_id}:{alias_name}"


def is_key_id(value: str) -> bool:
    return bool(_UUID.match(value) or _MRK.match(value))


@dataclass(frozen=True, slots=True)
class KeyRef:
    """A parsed key reference. ``kind`` is 'id', 'key-arn', 'alias' or 'alias-arn'."""

    kind: str
    key_id: str | None = None
    alias_name: str | None = None
    region: str | None = None
    account_id: str | None = None


@dataclass(frozen=True, slots=True)
class Arn:
    partition: str
    service: str
    region: str
    account_id: str
    resource: str


def parse_arn(value: str) -> Arn | None:
    parts = value.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        return None
    return Arn(parts[1], parts[2], parts[3], parts[4], parts[5])


def parse_key_ref(value: str) -> KeyRef | None:
    """None when the reference cannot name a key at all (the caller answers NotFound)."""
    if value.startswith("alias/"):
        return KeyRef("alias", alias_name=value)
    if value.startswith("arn:"):
        arn = parse_arn(value)
        if arn is None or arn.service != "kms":
            return None
        if arn.resource.startswith("key/"):
            return KeyRef(
                "key-arn", key_id=arn.resource[4:], region=arn.region, account_id=arn.account_id
            )
        if arn.resource.startswith("alias/"):
            return KeyRef(
                "alias-arn", alias_name=arn.resource, region=arn.region, account_id=arn.account_id
            )
        return None
    return KeyRef("id", key_id=value)


# key reference -> (parsed, whether it holds a well-formed key id). Clients name the same few keys
# on every request, and parsing one (a dataclass, two regular expressions) cost more than the rest
# of the key's lookup. KeyRef is immutable, so entries are shared; the cache is bounded in count
# and in the length of what it keeps (a reference is caller-chosen text).
_REFS: dict[str, tuple[KeyRef | None, bool]] = {}
_REFS_LIMIT: Final = 4096
_REF_MAX_CHARS: Final = 256


def parsed_key_ref(value: str) -> tuple[KeyRef | None, bool]:
    """``(parse_key_ref(value), is_key_id(its key_id))``; the second is False for an alias."""
    hit = _REFS.get(value)
    if hit is not None:
        return hit
    ref = parse_key_ref(value)
    result = (ref, ref is not None and ref.key_id is not None and is_key_id(ref.key_id))
    if len(value) <= _REF_MAX_CHARS:
        if len(_REFS) >= _REFS_LIMIT:
            _REFS.clear()
        _REFS[value] = result
    return result
