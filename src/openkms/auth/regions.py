"""The Regions a SigV4 credential scope may name: those of the server's partition.

AWS answers a request scoped to a Region it does not have with ``InvalidSignatureException``
"Credential should be scoped to a valid region, not '<region>'.". openkms serves every Region
of one partition from one endpoint, so the list is the partition's: read from botocore's
``partitions.json`` (or, for older botocore, ``endpoints.json``), which the AWS SDKs use to
resolve endpoints. Pseudo-Regions such as ``aws-global`` are left out: the SDKs sign IAM with
``us-east-1``. A ``regions`` setting replaces the list.

botocore is not imported (it is large); only its data file is read, once per process.
"""

from __future__ import annotations

import importlib.util
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["RegionDataError", "parse_region_list", "partition_regions"]

_REGION_NAME = re.compile(r"^[a-z]{2}(-[a-z0-9]+)+-[0-9]+$")


class RegionDataError(RuntimeError):
    """botocore's partition data cannot be read."""


def _botocore_data() -> Path:
    spec = importlib.util.find_spec("botocore")
    if spec is None or spec.origin is None:
        raise RegionDataError("botocore is not installed: set the regions setting")
    return Path(spec.origin).parent / "data"


def _partitions() -> list[dict[str, Any]]:
    data = _botocore_data()
    for name in ("partitions.json", "endpoints.json"):
        path = data / name
        if path.is_file():
            try:
                loaded = json.loads(path.read_text("utf-8"))
            except (OSError, ValueError) as exc:
                raise RegionDataError(f"{path}: {exc}") from exc
            partitions = loaded.get("partitions")
            if isinstance(partitions, list):
                return [p for p in partitions if isinstance(p, dict)]
    raise RegionDataError(f"no partitions.json or endpoints.json in {data}")


@lru_cache(maxsize=8)
def partition_regions(partition: str) -> frozenset[str]:
    """The Regions of ``partition`` (``aws``: us-east-1, eu-west-1, ...). For a partition
    botocore does not know, the Regions of every partition."""
    found: set[str] = set()
    every: set[str] = set()
    for entry in _partitions():
        name = entry.get("id") or entry.get("partition")
        regions = entry.get("regions")
        if not isinstance(regions, dict):
            continue
        real = {r for r in regions if isinstance(r, str) and _REGION_NAME.match(r)}
        every |= real
        if name == partition:
            found |= real
    return frozenset(found or every)


def parse_region_list(text: str) -> frozenset[str]:
    """``"us-east-1, eu-west-1"`` -> the set; ValueError for an empty list or a bad name."""
    names = {part.strip() for part in text.split(",") if part.strip()}
    if not names:
        raise ValueError("no Region given")
    bad = sorted(n for n in names if not _REGION_NAME.match(n))
    if bad:
        raise ValueError(f"not Region names: {', '.join(bad)}")
    return frozenset(names)
