"""The vendored Secrets Manager service model (botocore 1.44.8's
``secretsmanager/2017-10-17/service-2.json``, documentation removed; ``make model-drift``
compares it with newer releases). Read at first use; nothing at runtime imports botocore."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

MODEL_FILE = "secretsmanager-2017-10-17.json"
TARGET_PREFIX = "secretsmanager"
EVENT_SOURCE = "secretsmanager.amazonaws.com"


@lru_cache(maxsize=1)
def load_model() -> dict[str, Any]:
    folder = resources.files("openkms.secretsmanager").joinpath("data")
    model: dict[str, Any] = json.loads(folder.joinpath(MODEL_FILE).read_text("utf-8"))
    return model


def operation_names() -> list[str]:
    return sorted(load_model()["operations"])


def operation_errors(operation: str) -> list[str]:
    op = load_model()["operations"][operation]
    return [str(e["shape"]) for e in op.get("errors", [])]


@lru_cache(maxsize=1)
def sensitive_members() -> frozenset[str]:
    """Names of the members whose shape the model marks sensitive (SecretString,
    SecretBinary, RandomPassword ...): never in an audit record or a log."""
    shapes = load_model()["shapes"]
    found: set[str] = set()
    for shape in shapes.values():
        for name, member in shape.get("members", {}).items():
            if shapes.get(member["shape"], {}).get("sensitive"):
                found.add(name)
    return frozenset(found)


# The operations that only read: audited as readOnly and served on the event loop (the HTTP app
# runs the rest, which write and wait for the disk, on its thread beside the loop).
READ_ONLY: frozenset[str] = frozenset(
    {
        "BatchGetSecretValue",
        "DescribeSecret",
        "GetRandomPassword",
        "GetResourcePolicy",
        "GetSecretValue",
        "ListResourcePolicies",
        "ListSecretVersionIds",
        "ListSecrets",
        "ValidateResourcePolicy",
    }
)
