"""Finding audit records: by key, principal, operation and time.

``search_files`` reads audit log files (files of one chain in chain order, whatever order they
are given in) and yields the lines of the audit records that match every filter given, as they
are stored (JSON, chain member included). Headers and notices are never yielded; lines that do
not parse are skipped (``openkms audit verify`` reports them).
"""

from __future__ import annotations

import datetime
import math
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from openkms.audit.chain import order_files

__all__ = ["Filters", "key_candidates", "matches", "parse_time", "search_files"]

# Members of requestParameters that name a key.
_KEY_MEMBERS = ("keyId", "sourceKeyId", "destinationKeyId", "targetKeyId")


def parse_time(value: str) -> float:
    """Epoch seconds from ISO 8601 (``2024-05-01``, ``2024-05-01T10:00:00Z``, with an offset;
    no zone means UTC) or from a number of epoch seconds."""
    text = value.strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"{value!r} is neither ISO 8601 nor epoch seconds") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


@dataclass(frozen=True, slots=True)
class Filters:
    """Every filter that is set must match. ``key``: a key id, key ARN, alias name or alias
    ARN; ``principal``: a substring of ``userIdentity.arn``; ``operations``: event names
    (case-insensitive); ``since`` / ``until``: epoch seconds, both inclusive (eventTime has
    whole seconds)."""

    key: str | None = None
    principal: str | None = None
    operations: frozenset[str] | None = None
    since: float | None = None
    until: float | None = None

    def time_bounds(self) -> tuple[str | None, str | None]:
        low = None if self.since is None else _iso(math.ceil(self.since))
        high = None if self.until is None else _iso(math.floor(self.until))
        return low, high


def key_candidates(record: Mapping[str, Any]) -> set[str]:
    """Every way the record names a key: resource ARNs, keyId-like parameters, the keyMetadata
    of a response, each also as its resource part (``key/<id>``, ``alias/<name>``) and bare
    key id."""
    names: list[object] = []
    resources = record.get("resources")
    if isinstance(resources, list):
        names.extend(r["ARN"] for r in resources if isinstance(r, dict) and "ARN" in r)
    params = record.get("requestParameters")
    if isinstance(params, dict):
        names.extend(params[m] for m in _KEY_MEMBERS if m in params)
    response = record.get("responseElements")
    if isinstance(response, dict):
        metadata = response.get("keyMetadata")
        if isinstance(metadata, dict):
            names.extend(metadata.get(m) for m in ("keyId", "arn") if m in metadata)
    found: set[str] = set()
    for name in names:
        if not isinstance(name, str):
            continue
        found.add(name)
        if name.startswith("arn:"):
            resource = name.split(":", 5)[-1]
            found.add(resource)
            if resource.startswith("key/"):
                found.add(resource[4:])
    return found


def matches(record: Mapping[str, Any], filters: Filters) -> bool:
    if "eventVersion" not in record:
        return False
    if filters.operations is not None:
        name = record.get("eventName")
        if not isinstance(name, str) or name.lower() not in filters.operations:
            return False
    if filters.principal is not None:
        identity = record.get("userIdentity")
        arn = identity.get("arn") if isinstance(identity, dict) else None
        if not isinstance(arn, str) or filters.principal not in arn:
            return False
    low, high = filters.time_bounds()
    if low is not None or high is not None:
        when = record.get("eventTime")
        if not isinstance(when, str):
            return False
        if (low is not None and when < low) or (high is not None and when > high):
            return False
    return filters.key is None or filters.key in key_candidates(record)


def search_files(paths: Iterable[str | Path], filters: Filters) -> Iterator[bytes]:
    """The stored lines (with their newline) of the matching records."""
    normalized = Filters(
        key=filters.key,
        principal=filters.principal,
        operations=None
        if filters.operations is None
        else frozenset(o.lower() for o in filters.operations),
        since=filters.since,
        until=filters.until,
    )
    for _, files in order_files(paths):
        for path in files:
            with open(path, "rb") as handle:
                for line in handle:
                    if not line.endswith(b"\n") or b'"eventVersion"' not in line:
                        continue
                    try:
                        record = orjson.loads(line)
                    except orjson.JSONDecodeError:
                        continue
                    if isinstance(record, dict) and matches(record, normalized):
                        yield line
