"""The vendored AWS KMS service model (botocore's ``kms/2014-11-01/service-2.json``).

The copy lives in ``protocol/data`` with its documentation strings removed; the server reads it
at start for validation and the dispatch table check. Nothing at runtime imports botocore.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

MODEL_FILE = "kms-2014-11-01.json"
TARGET_PREFIX = "TrentService"


@lru_cache(maxsize=1)
def load_model() -> dict[str, Any]:
    text = resources.files("openkms.protocol").joinpath("data", MODEL_FILE).read_text("utf-8")
    model: dict[str, Any] = json.loads(text)
    return model


def operation_names() -> list[str]:
    return sorted(load_model()["operations"])


def shapes() -> dict[str, Any]:
    result: dict[str, Any] = load_model()["shapes"]
    return result


def input_shape_name(operation: str) -> str | None:
    op = load_model()["operations"][operation]
    inp = op.get("input")
    return None if inp is None else str(inp["shape"])


def operation_errors(operation: str) -> list[str]:
    op = load_model()["operations"][operation]
    return [str(e["shape"]) for e in op.get("errors", [])]
