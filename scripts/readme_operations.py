#!/usr/bin/env python3
"""Prints the README's operations table from the dispatch table and the model.

Notes for partially implemented operations live in NOTES; tests/unit/test_readme_operations.py
fails when the README and the dispatch table disagree."""

from __future__ import annotations

from openkms.protocol.model import operation_names
from openkms.protocol.operations import implemented

NOTES = {
    "CreateKey": (
        "every key spec but SM2; every origin (AWS_CLOUDHSM and EXTERNAL_KEY_STORE in custom key "
        "stores); multi-Region"
    ),
    "CreateCustomKeyStore": "XKS connectivity PUBLIC_ENDPOINT only",
    "GenerateRandom": "from a CloudHSM custom key store's token too; no Recipient",
    "Decrypt": "no Recipient (Nitro attestation)",
    "GenerateDataKey": "no Recipient (Nitro attestation)",
    "GenerateDataKeyPair": "no Recipient (Nitro attestation); every pair spec but SM2",
    "DeriveSharedSecret": "no Recipient (Nitro attestation)",
}


def table() -> str:
    done = implemented()
    lines = ["| operation | status |", "|---|---|"]
    for name in operation_names():
        if name in done:
            status = "implemented" + (f" ({NOTES[name]})" if name in NOTES else "")
        else:
            status = "not yet: answers UnsupportedOperationException naming the operation"
        lines.append(f"| {name} | {status} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
