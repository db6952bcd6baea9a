#!/usr/bin/env python3
"""Generate the golden symmetric ciphertext blobs in ``tests/vectors/ciphertext/``.

The blobs are made by the real service code (``service.encryption.encrypt`` through a
``Runtime``) over a ``MemoryStorage``, but with a fixed root key and fixed key material: the
``KeyRecord`` and ``MaterialRecord`` rows are built here and the material is wrapped with the
fixed root, instead of going through ``CreateKey``'s random material. The IVs are random, so
every run produces different blobs; that is why the file, once committed, is never regenerated:
``tests/unit/test_ciphertext_golden.py`` checks that every later release still decrypts it.

Usage (from the repository root)::

    .venv/bin/python scripts/make_golden_ciphertexts.py            # refuses to overwrite
    .venv/bin/python scripts/make_golden_ciphertexts.py --output /tmp/new.json
    .venv/bin/python scripts/make_golden_ciphertexts.py --force    # only for a NEW format file
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openkms.clock import FixedClock
from openkms.domain.arn import key_arn
from openkms.domain.key import KeyRecord
from openkms.rootoftrust.memory import MemoryRoot
from openkms.service import encryption
from openkms.service.context import Principal, RequestContext
from openkms.service.key_policies import default_policy
from openkms.service.runtime import Runtime
from openkms.storage.memory import MemoryStorage
from openkms.storage.records import MaterialRecord

FORMAT_VERSION = 1
DEFAULT_OUTPUT = (
    Path(__file__).resolve().parents[1] / "tests" / "vectors" / "ciphertext" / "golden-v1.json"
)
CREATED_AT = 1_700_000_000.0
PARTITION = "aws"


def derived(label: str, length: int = 32) -> bytes:
    """Fixed, documented bytes: SHA-256 of a label (nothing secret, nothing random)."""
    return hashlib.sha256(f"openkms golden ciphertext v1: {label}".encode()).digest()[:length]


ROOT_KEY = derived("root key")


@dataclass
class GoldenKey:
    name: str
    account_id: str
    region: str
    key_id: str
    # (material id hex, material bytes, state); the last CURRENT one is the key's current one.
    materials: list[tuple[str, bytes, str]] = field(default_factory=list)

    @property
    def arn(self) -> str:
        return key_arn(PARTITION, self.region, self.account_id, self.key_id)


def golden_keys() -> list[GoldenKey]:
    standard = GoldenKey(
        "standard",
        "111122223333",
        "us-east-1",
        "1234abcd-12ab-34cd-56ef-1234567890ab",
        [(derived("standard material id").hex(), derived("standard material"), "CURRENT")],
    )
    rotated = GoldenKey(
        "rotated",
        "111122223333",
        "us-east-1",
        "0987dcba-09fe-87dc-65ba-ab0987654321",
        [
            (derived("rotated material id 1").hex(), derived("rotated material 1"), "NON_CURRENT"),
            (derived("rotated material id 2").hex(), derived("rotated material 2"), "CURRENT"),
        ],
    )
    multi_region = GoldenKey(
        "multi-region-id",
        "444455556666",
        "eu-west-1",
        "mrk-" + derived("mrk id", 16).hex(),
        [(derived("mrk material id").hex(), derived("mrk material"), "CURRENT")],
    )
    return [standard, rotated, multi_region]


def _ctx(key: GoldenKey) -> RequestContext:
    principal = Principal(
        account_id=key.account_id,
        arn=f"arn:{PARTITION}:iam::{key.account_id}:root",
        kind="root",
        access_key_id="AKIAGOLDENGOLDENGOLD",
        user_id=key.account_id,
    )
    return RequestContext(principal, key.region, str(uuid.uuid4()), CREATED_AT, "Encrypt")


def _record(key: GoldenKey, current_material_id: str) -> KeyRecord:
    return KeyRecord(
        arn=key.arn,
        key_id=key.key_id,
        account_id=key.account_id,
        region=key.region,
        key_spec="SYMMETRIC_DEFAULT",
        key_usage="ENCRYPT_DECRYPT",
        origin="AWS_KMS",
        key_manager="CUSTOMER",
        description=f"golden {key.name}",
        state="Enabled",
        created_at=CREATED_AT,
        policy=default_policy(PARTITION, key.account_id),
        current_material_id=current_material_id,
    )


def _install(rt: Runtime, key: GoldenKey) -> dict[str, Any]:
    """Inserts the key and its wrapped materials; returns its description for the file."""
    current = [m for m in key.materials if m[2] == "CURRENT"][-1][0]
    rt.storage.insert_key(_record(key, current))
    materials = []
    for material_id, material, state in key.materials:
        wrapped = rt.wrap_material(key.arn, material_id, material)
        rt.storage.put_material(MaterialRecord(key.arn, material_id, wrapped, CREATED_AT, state))
        materials.append(
            {
                "material_id": material_id,
                "material_hex": material.hex(),
                "state": state,
                "wrapped_b64": base64.b64encode(wrapped).decode(),
            }
        )
    return {
        "name": key.name,
        "arn": key.arn,
        "account_id": key.account_id,
        "region": key.region,
        "key_id": key.key_id,
        "current_material_id": current,
        "materials": materials,
    }


def _use_material(rt: Runtime, key: GoldenKey, material_id: str) -> None:
    """Makes ``material_id`` the key's current material (to seal under an older version)."""
    rt.storage.update_key(_record(key, material_id))
    rt.forget_key(key.arn)


PLAINTEXT_SIZES = (1, 15, 16, 17, 32, 100, 1024, 4096)
CONTEXTS: list[tuple[str, dict[str, str] | None]] = [
    ("none", None),
    ("empty", {}),
    ("one-pair", {"purpose": "golden"}),
    (
        "several-pairs",
        # Sorted by UTF-8 bytes: 'Zulu' < 'alpha' < 'beta' < 'empty' < 'éclair'.
        {"beta": "2", "alpha": "1", "Zulu": "upper", "éclair": "crème", "empty": ""},
    ),
]


def _plaintext(size: int, label: str) -> bytes:
    out = b""
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{label}:{counter}".encode()).digest()
        counter += 1
    return out[:size]


def _vector(
    rt: Runtime,
    key: GoldenKey,
    name: str,
    plaintext: bytes,
    context: dict[str, str] | None,
) -> dict[str, Any]:
    req: dict[str, Any] = {"KeyId": key.key_id, "Plaintext": plaintext}
    if context is not None:
        req["EncryptionContext"] = context
    resp = encryption.encrypt(rt, _ctx(key), req)
    assert resp["KeyId"] == key.arn
    blob: bytes = resp["CiphertextBlob"]
    # Prove the vector before writing it down.
    back = encryption.decrypt(
        rt,
        _ctx(key),
        {"CiphertextBlob": blob, **({"EncryptionContext": context} if context else {})},
    )
    assert back["Plaintext"] == plaintext
    return {
        "name": name,
        "key_arn": key.arn,
        "region": key.region,
        "material_id": back["KeyMaterialId"],
        "encryption_context": context,
        "plaintext_hex": plaintext.hex(),
        "ciphertext_b64": base64.b64encode(blob).decode(),
    }


def build() -> dict[str, Any]:
    rt = Runtime(MemoryStorage(), MemoryRoot(ROOT_KEY), FixedClock(CREATED_AT))
    standard, rotated, multi_region = golden_keys()
    described = [_install(rt, k) for k in (standard, rotated, multi_region)]
    vectors: list[dict[str, Any]] = []
    for size in PLAINTEXT_SIZES:
        for ctx_name, context in CONTEXTS:
            name = f"standard-{size}b-context-{ctx_name}"
            vectors.append(_vector(rt, standard, name, _plaintext(size, name), context))
    old_id, new_id = rotated.materials[0][0], rotated.materials[1][0]
    _use_material(rt, rotated, old_id)
    name = "rotated-old-material"
    vectors.append(_vector(rt, rotated, name, _plaintext(48, name), {"version": "old"}))
    _use_material(rt, rotated, new_id)
    name = "rotated-current-material"
    vectors.append(_vector(rt, rotated, name, _plaintext(48, name), {"version": "new"}))
    for ctx_name, context in CONTEXTS[::2]:
        name = f"multi-region-id-context-{ctx_name}"
        vectors.append(_vector(rt, multi_region, name, _plaintext(64, name), context))
    return {
        "description": (
            "openkms symmetric ciphertext blobs, format version 1 (docs/formats/ciphertext.md). "
            "Generated once by scripts/make_golden_ciphertexts.py; every release must decrypt "
            "them. Never regenerate this file."
        ),
        "format_version": FORMAT_VERSION,
        "root_key_hex": ROOT_KEY.hex(),
        "keys": described,
        "vectors": vectors,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument(
        "--force", action="store_true", help="overwrite an existing file (never for a released one)"
    )
    args = parser.parse_args(argv)
    if args.output.exists() and not args.force:
        print(
            f"{args.output} exists; golden files are never regenerated (use --output for a new "
            "file, --force only for a format version that was never released)",
            file=sys.stderr,
        )
        return 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(build(), indent=2, ensure_ascii=False) + "\n", "utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
