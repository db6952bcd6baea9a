"""ARNs and key references.

``key_ref`` is unresolved input (key id, key ARN, alias name, alias ARN); resolution against
storage happens in the service layer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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
