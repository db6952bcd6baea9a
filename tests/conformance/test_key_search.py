"""The key search extensions over the wire (``OpenKMS.SearchKeys``, ``OpenKMS.CountKeysByState``):
SigV4-signed JSON 1.1 requests against a real server of this module's own, keys made by boto3."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from botocore.client import BaseClient

from tests.conftest import Server, make_client
from tests.search_support import call, search, search_server

__all__ = ["search_server"]


def _keys(kms: BaseClient) -> dict[str, str]:
    made = {
        "payroll": kms.create_key(Description="Payroll database")["KeyMetadata"]["KeyId"],
        "logs": kms.create_key(Description="logs")["KeyMetadata"]["KeyId"],
        "tagged": kms.create_key(
            Description="x", Tags=[{"TagKey": "team", "TagValue": "Needle-Ops"}]
        )["KeyMetadata"]["KeyId"],
        "signing": kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")[
            "KeyMetadata"
        ]["KeyId"],
    }
    kms.disable_key(KeyId=made["logs"])
    kms.create_alias(AliasName="alias/billing-app", TargetKeyId=made["signing"])
    return made


def test_search_and_count(search_server: Server) -> None:
    kms = make_client(search_server)
    made = _keys(kms)
    assert search(search_server, Text="payroll")["Keys"] == [made["payroll"]]
    assert search(search_server, Text="NEEDLE")["Keys"] == [made["tagged"]]
    assert search(search_server, Text="billing")["Keys"] == [made["signing"]]
    assert search(search_server, KeyState="Disabled")["Keys"] == [made["logs"]]
    assert search(search_server, KeyUsage="SIGN_VERIFY", KeySpec="ECC_NIST_P256")["Keys"] == [
        made["signing"]
    ]
    assert search(search_server, MultiRegion=True)["Keys"] == []
    # Paging: one key a page, every key once.
    every = search(search_server, Limit=1)
    assert sorted(every["Keys"]) == sorted(made.values()) and every["Pages"] >= 4
    status, counted = call(search_server, "OpenKMS.CountKeysByState", {})
    assert status == 200
    assert counted == {"KeyStates": {"Disabled": 1, "Enabled": 3}, "Truncated": False}
    # Changes show at once: the index is written with the key.
    kms.enable_key(KeyId=made["logs"])
    kms.update_key_description(KeyId=made["logs"], Description="now Payroll too")
    kms.untag_resource(KeyId=made["tagged"], TagKeys=["team"])
    assert search(search_server, KeyState="Disabled")["Keys"] == []
    assert sorted(search(search_server, Text="payroll")["Keys"]) == sorted(
        [made["payroll"], made["logs"]]
    )
    assert search(search_server, Text="needle")["Keys"] == []
    kms.schedule_key_deletion(KeyId=made["payroll"], PendingWindowInDays=7)
    assert search(search_server, KeyState="PendingDeletion")["Keys"] == [made["payroll"]]


def test_errors_are_awss(search_server: Server) -> None:
    status, answer = call(search_server, "OpenKMS.SearchKeys", {"Limit": 0})
    assert status == 400 and answer["__type"] == "ValidationException"
    assert "at 'limit' failed to satisfy constraint" in answer["message"]
    status, answer = call(search_server, "OpenKMS.SearchKeys", {"Marker": "bogus"})
    assert (status, answer["__type"]) == (400, "InvalidMarkerException")
    status, answer = call(search_server, "OpenKMS.SearchKeys", b"[1, 2]")
    assert (status, answer["__type"]) == (400, "SerializationException")
    status, answer = call(search_server, "OpenKMS.SearchKeys", b"{not json")
    assert (status, answer["__type"]) == (400, "SerializationException")
    status, answer = call(search_server, "OpenKMS.SearchKeys", {"KeyState": 5})
    assert (status, answer["__type"]) == (400, "SerializationException")
    # Only the two names: anything else under the prefix is an unknown operation.
    for target in ("OpenKMS.DeleteEverything", "OpenKMS.", "openkms.SearchKeys",
                   "TrentService.OpenKMS.SearchKeys"):  # fmt: skip
        status, answer = call(search_server, target, {})
        assert status == 400 and answer["__type"] == "UnknownOperationException", target
    # Signed for another service: refused like any KMS target would be.
    status, answer = call(search_server, "OpenKMS.SearchKeys", {}, service="s3")
    assert status == 400 and answer["__type"] == "InvalidSignatureException"


def _records(data_dir: Path) -> list[dict[str, Any]]:
    out = []
    for path in sorted(data_dir.glob("audit*.log*")):
        for line in path.read_bytes().splitlines():
            entry = json.loads(line)
            if "eventVersion" in entry:
                out.append(entry)
    return out


def test_searches_are_audited(search_server: Server) -> None:
    status, _ = call(search_server, "OpenKMS.SearchKeys", {"Text": "audit-me-please"})
    assert status == 200
    deadline = time.monotonic() + 5
    while True:
        found = [
            r
            for r in _records(search_server.data_dir)
            if r.get("eventName") == "OpenKMS.SearchKeys"
            and (r.get("requestParameters") or {}).get("text") == "audit-me-please"
        ]
        if found or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert found, "no audit record"
    assert found[0]["readOnly"] is True
    assert found[0]["eventSource"] == "kms.amazonaws.com"
