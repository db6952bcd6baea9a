"""The golden ciphertext blobs of tests/vectors/ciphertext/ still decrypt, and their bytes are
laid out exactly as docs/formats/ciphertext.md says.

Three independent checks per blob: the service's Decrypt (what clients get), a from-scratch
reading of the documented layout, and a from-scratch AES-GCM decryption with the documented AAD.
"""

from __future__ import annotations

import base64
import json
import struct
import uuid
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from openkms.clock import FixedClock
from openkms.domain import ciphertext
from openkms.domain.key import KeyRecord
from openkms.errors import IncorrectKeyException, InvalidCiphertextException
from openkms.rootoftrust.aad import material_aad
from openkms.rootoftrust.memory import MemoryRoot
from openkms.service import encryption
from openkms.service.context import Principal, RequestContext
from openkms.service.key_policies import default_policy
from openkms.service.runtime import Runtime
from openkms.storage.memory import MemoryStorage
from openkms.storage.records import MaterialRecord

GOLDEN = Path(__file__).resolve().parents[1] / "vectors" / "ciphertext" / "golden-v1.json"


@cache
def golden() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(GOLDEN.read_text("utf-8"))
    return data


def vectors() -> list[dict[str, Any]]:
    return list(golden()["vectors"])


def keys_by_arn() -> dict[str, dict[str, Any]]:
    return {k["arn"]: k for k in golden()["keys"]}


def b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def reference_context(context: Mapping[str, str] | None) -> bytes:
    """The canonical encryption context, written from the documentation, not from the code."""
    if not context:
        return b""
    pairs = sorted((k.encode("utf-8"), v.encode("utf-8")) for k, v in context.items())
    out = struct.pack(">H", len(pairs))
    for key, value in pairs:
        out += struct.pack(">H", len(key)) + key + struct.pack(">H", len(value)) + value
    return out


def parse_documented(blob: bytes) -> dict[str, Any]:
    """Reads a blob by the documented offsets."""
    n = blob[13]
    return {
        "version": blob[0],
        "account_id": blob[1:13].decode("ascii"),
        "key_id_length": n,
        "key_id": blob[14 : 14 + n].decode("ascii"),
        "material_id": blob[14 + n : 46 + n].hex(),
        "header": blob[: 46 + n],
        "iv": blob[46 + n : 58 + n],
        "sealed": blob[58 + n :],
    }


def runtime() -> Runtime:
    """A runtime holding the golden keys, their wrapped material inserted as recorded."""
    data = golden()
    rt = Runtime(MemoryStorage(), MemoryRoot(bytes.fromhex(data["root_key_hex"])), FixedClock())
    for key in data["keys"]:
        rt.storage.insert_key(
            KeyRecord(
                arn=key["arn"],
                key_id=key["key_id"],
                account_id=key["account_id"],
                region=key["region"],
                key_spec="SYMMETRIC_DEFAULT",
                key_usage="ENCRYPT_DECRYPT",
                origin="AWS_KMS",
                key_manager="CUSTOMER",
                description="golden",
                state="Enabled",
                created_at=1_700_000_000.0,
                policy=default_policy("aws", key["account_id"]),
                current_material_id=key["current_material_id"],
            )
        )
        for material in key["materials"]:
            rt.storage.put_material(
                MaterialRecord(
                    key_arn=key["arn"],
                    material_id=material["material_id"],
                    wrapped=b64(material["wrapped_b64"]),
                    created_at=1_700_000_000.0,
                    state=material["state"],
                )
            )
    return rt


def ctx_for(vector: dict[str, Any]) -> RequestContext:
    account_id = keys_by_arn()[vector["key_arn"]]["account_id"]
    principal = Principal(
        account_id=account_id,
        arn=f"arn:aws:iam::{account_id}:root",
        kind="root",
        access_key_id="AKIAGOLDENGOLDENGOLD",
        user_id=account_id,
    )
    return RequestContext(
        principal, vector["region"], str(uuid.uuid4()), 1_700_000_000.0, "Decrypt"
    )


def decrypt_request(vector: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    req: dict[str, Any] = {"CiphertextBlob": b64(vector["ciphertext_b64"])}
    if vector["encryption_context"] is not None:
        req["EncryptionContext"] = vector["encryption_context"]
    req.update(overrides)
    return req


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [str(v["name"]) for v in items]


# --- the file itself ------------------------------------------------------------------------------
def test_golden_file_covers_what_it_must() -> None:
    data = golden()
    assert data["format_version"] == ciphertext.VERSION == 1
    vs = vectors()
    assert len({v["name"] for v in vs}) == len(vs), "vector names must be unique"
    contexts = [v["encryption_context"] for v in vs]
    assert None in contexts
    assert {} in contexts
    assert any(c and len(c) > 1 for c in contexts)
    sizes = {len(bytes.fromhex(v["plaintext_hex"])) for v in vs}
    assert {1, 16, 4096} <= sizes
    assert any(k["key_id"].startswith("mrk-") for k in data["keys"])
    rotated = [k for k in data["keys"] if len(k["materials"]) > 1]
    assert rotated, "a key with two material versions"
    used = {v["material_id"] for v in vs}
    assert {m["material_id"] for m in rotated[0]["materials"]} <= used


# --- decryption through the service -------------------------------------------------------------
@pytest.mark.parametrize("vector", vectors(), ids=ids(vectors()))
def test_decrypts_through_the_service(vector: dict[str, Any]) -> None:
    resp = encryption.decrypt(runtime(), ctx_for(vector), decrypt_request(vector))
    assert resp["Plaintext"] == bytes.fromhex(vector["plaintext_hex"])
    assert resp["KeyId"] == vector["key_arn"]
    assert resp["KeyMaterialId"] == vector["material_id"]
    assert resp["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"


@pytest.mark.parametrize("vector", vectors(), ids=ids(vectors()))
def test_decrypts_with_its_key_id_named(vector: dict[str, Any]) -> None:
    key = keys_by_arn()[vector["key_arn"]]
    rt = runtime()
    for ref in (key["key_id"], key["arn"]):
        resp = encryption.decrypt(rt, ctx_for(vector), decrypt_request(vector, KeyId=ref))
        assert resp["Plaintext"] == bytes.fromhex(vector["plaintext_hex"])


def test_named_key_must_be_the_blobs_key() -> None:
    vector = next(
        v for v in vectors() if v["key_arn"].endswith("1234abcd-12ab-34cd-56ef-1234567890ab")
    )
    other = next(
        k
        for k in golden()["keys"]
        if k["arn"] != vector["key_arn"] and k["region"] == vector["region"]
    )
    with pytest.raises(IncorrectKeyException):
        encryption.decrypt(
            runtime(), ctx_for(vector), decrypt_request(vector, KeyId=other["key_id"])
        )


@pytest.mark.parametrize("vector", vectors()[:6], ids=ids(vectors()[:6]))
def test_changed_context_or_bytes_fail(vector: dict[str, Any]) -> None:
    rt = runtime()
    ctx = ctx_for(vector)
    context = vector["encryption_context"] or {}
    with pytest.raises(InvalidCiphertextException):
        encryption.decrypt(
            rt, ctx, decrypt_request(vector, EncryptionContext={**context, "x": "y"})
        )
    blob = bytearray(b64(vector["ciphertext_b64"]))
    for index in (0, 5, 13, 20, len(blob) - 30, len(blob) - 1):
        damaged = bytearray(blob)
        damaged[index] ^= 0x01
        with pytest.raises(InvalidCiphertextException):
            encryption.decrypt(rt, ctx, decrypt_request(vector, CiphertextBlob=bytes(damaged)))


def test_empty_context_and_no_context_are_the_same() -> None:
    rt = runtime()
    for vector in vectors():
        if vector["encryption_context"] not in (None, {}):
            continue
        req = decrypt_request(vector)
        req.pop("EncryptionContext", None)
        for extra in ({}, {"EncryptionContext": {}}):
            resp = encryption.decrypt(rt, ctx_for(vector), {**req, **extra})
            assert resp["Plaintext"] == bytes.fromhex(vector["plaintext_hex"])


# --- the documented layout ----------------------------------------------------------------------
@pytest.mark.parametrize("vector", vectors(), ids=ids(vectors()))
def test_header_bytes_are_as_documented(vector: dict[str, Any]) -> None:
    blob = b64(vector["ciphertext_b64"])
    key = keys_by_arn()[vector["key_arn"]]
    parsed = parse_documented(blob)
    assert parsed["version"] == 0x01
    assert parsed["account_id"] == key["account_id"]
    assert parsed["account_id"].isdigit() and len(parsed["account_id"]) == 12
    assert parsed["key_id_length"] == len(key["key_id"])
    assert parsed["key_id"] == key["key_id"]
    assert parsed["material_id"] == vector["material_id"]
    assert len(parsed["iv"]) == 12
    plaintext = bytes.fromhex(vector["plaintext_hex"])
    assert len(parsed["sealed"]) == len(plaintext) + 16
    assert len(blob) == 74 + len(key["key_id"]) + len(plaintext)
    # The code's own parser agrees with the documentation.
    decoded = ciphertext.decode(blob)
    assert (decoded.account_id, decoded.key_id, decoded.material_id) == (
        parsed["account_id"],
        parsed["key_id"],
        parsed["material_id"],
    )
    assert (decoded.header, decoded.iv, decoded.sealed) == (
        parsed["header"],
        parsed["iv"],
        parsed["sealed"],
    )
    assert (
        ciphertext.encode_header(key["account_id"], key["key_id"], vector["material_id"])
        == (parsed["header"])
    )


@pytest.mark.parametrize("vector", vectors(), ids=ids(vectors()))
def test_decrypts_from_the_specification_alone(vector: dict[str, Any]) -> None:
    """AES-256-GCM with the documented AAD (header ‖ canonical context), no openkms code."""
    blob = b64(vector["ciphertext_b64"])
    key = keys_by_arn()[vector["key_arn"]]
    material = next(m for m in key["materials"] if m["material_id"] == vector["material_id"])
    parsed = parse_documented(blob)
    aad = parsed["header"] + reference_context(vector["encryption_context"])
    plaintext = AESGCM(bytes.fromhex(material["material_hex"])).decrypt(
        parsed["iv"], parsed["sealed"], aad
    )
    assert plaintext == bytes.fromhex(vector["plaintext_hex"])


def test_reference_context_matches_the_code() -> None:
    from openkms.crypto.encryption_context import canonical_context

    for vector in vectors():
        context = vector["encryption_context"]
        assert canonical_context(context) == reference_context(context)


# --- key material at rest -------------------------------------------------------------------------
def test_wrapped_material_is_as_documented() -> None:
    """``0x01 ‖ nonce(12) ‖ AES-256-GCM`` under the root key, AAD ``0x01 ‖ "openkms:key-material:
    v1:<key ARN>:<material id>"``."""
    root = AESGCM(bytes.fromhex(golden()["root_key_hex"]))
    for key in golden()["keys"]:
        for material in key["materials"]:
            wrapped = b64(material["wrapped_b64"])
            assert wrapped[0] == 0x01
            aad = f"openkms:key-material:v1:{key['arn']}:{material['material_id']}".encode()
            assert material_aad(key["arn"], material["material_id"]) == aad
            raw = root.decrypt(wrapped[1:13], wrapped[13:], b"\x01" + aad)
            assert raw.hex() == material["material_hex"]
            assert len(raw) == 32


def test_wrapped_material_unwraps_through_the_runtime() -> None:
    rt = runtime()
    for key in golden()["keys"]:
        for material in key["materials"]:
            record = rt.storage.get_material(key["arn"], material["material_id"])
            assert record is not None
            assert rt.unwrap_material(record).hex() == material["material_hex"]
