"""Golden stored secret values (docs/formats/secret-value.md, format 1): every later release
must still open them, and refuse them under another secret, version or kind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from openkms.errors import InvalidCiphertextException
from openkms.secretsmanager import envelope

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "secrets" / "secret_value_v1.json"


def _vectors() -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = json.loads(VECTORS.read_text())["vectors"]
    return loaded


@pytest.mark.parametrize("vector", _vectors(), ids=lambda v: v["version_id"])
def test_golden_values_open(vector: dict[str, Any]) -> None:
    stored = bytes.fromhex(vector["stored_hex"])
    key = bytes.fromhex(vector["data_key_hex"])
    assert envelope.key_blob_of(stored) == bytes.fromhex(vector["key_blob_hex"])
    value = envelope.open_value(stored, key, vector["secret_arn"], vector["version_id"])
    assert value.string == vector["secret_string"]
    binary = vector["secret_binary_hex"]
    assert value.binary == (None if binary is None else bytes.fromhex(binary))


@pytest.mark.parametrize("vector", _vectors(), ids=lambda v: v["version_id"])
def test_golden_values_are_bound(vector: dict[str, Any]) -> None:
    stored = bytes.fromhex(vector["stored_hex"])
    key = bytes.fromhex(vector["data_key_hex"])
    arn, version = vector["secret_arn"], vector["version_id"]
    flipped_kind = stored[:1] + bytes([3 - stored[1]]) + stored[2:]
    for args in (
        (stored, key, arn + "x", version),
        (stored, key, arn, version + "x"),
        (flipped_kind, key, arn, version),
        (stored[:-1] + bytes([stored[-1] ^ 1]), key, arn, version),
    ):
        with pytest.raises(InvalidCiphertextException):
            envelope.open_value(*args)
