"""Persistence across a restart: each test runs its own server on its own data directory, stops
it, and starts another on the same directory."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from openkms.clock import FixedClock
from openkms.rootoftrust.file import load_root_key_file
from openkms.service import aliases, keys, tags
from openkms.service.context import Principal, RequestContext
from openkms.service.runtime import Runtime
from openkms.storage.sqlite import SqliteStorage
from tests.conformance import expect_error, unique_alias

DAY = 86_400
# SIGTERM: uvicorn shuts down gracefully, then re-raises the signal (-15); 0 is fine too.
GRACEFUL_EXITS = {0, -15}


def test_keys_aliases_tags_and_ciphertexts_survive_a_restart(server_factory) -> None:
    first = server_factory.start()
    kms = first.client()
    key = kms.create_key(Description="survivor", Tags=[{"TagKey": "team", "TagValue": "crypto"}])[
        "KeyMetadata"
    ]
    kms.tag_resource(KeyId=key["KeyId"], Tags=[{"TagKey": "env", "TagValue": "prod"}])
    alias = unique_alias("restart")
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    disabled = kms.create_key()["KeyMetadata"]
    kms.disable_key(KeyId=disabled["KeyId"])
    doomed = kms.create_key()["KeyMetadata"]
    scheduled = kms.schedule_key_deletion(KeyId=doomed["KeyId"], PendingWindowInDays=7)
    blob = kms.encrypt(KeyId=alias, Plaintext=b"before restart", EncryptionContext={"v": "1"})[
        "CiphertextBlob"
    ]
    data_key = kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256")
    last_request = data_key["ResponseMetadata"]["RequestId"]

    assert first.stop() in GRACEFUL_EXITS
    second = server_factory.start(first.server.data_dir, account=first.account)
    assert second.server.endpoint != "" and second.process.running
    kms = second.client()

    # Usage recorded before the graceful shutdown was flushed, not lost.
    usage = kms.get_key_last_usage(KeyId=key["KeyId"])["KeyLastUsage"]
    assert usage["Operation"] == "GenerateDataKey"
    assert usage["KmsRequestId"] == last_request

    meta = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
    assert meta == key | {"Description": "survivor"}
    got_tags = {
        t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=key["KeyId"])["Tags"]
    }
    assert got_tags == {"team": "crypto", "env": "prod"}
    assert kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"] == key["KeyId"]
    assert [a["AliasName"] for a in kms.list_aliases(KeyId=key["KeyId"])["Aliases"]] == [alias]
    assert kms.describe_key(KeyId=disabled["KeyId"])["KeyMetadata"]["KeyState"] == "Disabled"

    decrypted = kms.decrypt(CiphertextBlob=blob, EncryptionContext={"v": "1"})
    assert decrypted["Plaintext"] == b"before restart"
    assert decrypted["KeyMaterialId"] == key["CurrentKeyMaterialId"]
    assert (
        kms.decrypt(CiphertextBlob=data_key["CiphertextBlob"])["Plaintext"]
        == (data_key["Plaintext"])
    )

    # The key scheduled for deletion is still pending, with the same date.
    doomed_meta = kms.describe_key(KeyId=doomed["KeyId"])["KeyMetadata"]
    assert doomed_meta["KeyState"] == "PendingDeletion"
    assert doomed_meta["DeletionDate"] == scheduled["DeletionDate"]
    assert doomed_meta["PendingDeletionWindowInDays"] == 7
    expect_error("KMSInvalidStateException", kms.encrypt, KeyId=doomed["KeyId"], Plaintext=b"x")
    kms.cancel_key_deletion(KeyId=doomed["KeyId"])
    assert kms.describe_key(KeyId=doomed["KeyId"])["KeyMetadata"]["KeyState"] == "Disabled"

    listed = {k["KeyId"] for k in kms.list_keys()["Keys"]}
    assert {key["KeyId"], disabled["KeyId"], doomed["KeyId"]} <= listed


def test_new_keys_after_restart_and_old_credentials(server_factory) -> None:
    first = server_factory.start()
    old_key = first.client().create_key()["KeyMetadata"]
    old_ids = {old_key["KeyId"]} | {
        first.client().create_key()["KeyMetadata"]["KeyId"] for _ in range(3)
    }
    page = first.client().list_keys(Limit=2)
    assert page["Truncated"]
    assert first.stop() in GRACEFUL_EXITS
    second = server_factory.start(first.server.data_dir, account=first.account)
    kms = second.client()
    new_key = kms.create_key()["KeyMetadata"]
    assert new_key["KeyId"] != old_key["KeyId"]
    blob = kms.encrypt(KeyId=old_key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"
    # A pagination marker issued before the restart still works after it.
    rest = {k["KeyId"] for k in kms.list_keys(Marker=page["NextMarker"], Limit=100)["Keys"]}
    first_page = {k["KeyId"] for k in page["Keys"]}
    assert not first_page & rest
    assert old_ids - first_page <= rest


def test_pending_deletion_survives_two_restarts(server_factory) -> None:
    first = server_factory.start()
    kms = first.client()
    key = kms.create_key()["KeyMetadata"]
    resp = kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    assert first.stop() in GRACEFUL_EXITS
    for _ in range(2):
        again = server_factory.start(first.server.data_dir, account=first.account)
        meta = again.client().describe_key(KeyId=key["KeyId"])["KeyMetadata"]
        assert meta["KeyState"] == "PendingDeletion"
        assert meta["DeletionDate"] == resp["DeletionDate"]
        assert again.stop() in GRACEFUL_EXITS


def _ctx(account_id: str, now: float) -> RequestContext:
    principal = Principal(
        account_id=account_id,
        arn=f"arn:aws:iam::{account_id}:root",
        kind="root",
        access_key_id="AKIATESTTESTTESTTEST",
        user_id=account_id,
    )
    return RequestContext(principal, "us-east-1", str(uuid.uuid4()), now, operation="test")


def test_key_past_its_deletion_window_is_purged_when_the_server_starts(server_factory) -> None:
    """A week cannot pass in a test; so the keys are scheduled for deletion, in the server's own
    data directory, by a runtime whose clock is days in the past."""
    data_dir: Path = server_factory.new_data_dir("openkms-purge")
    account = server_factory.create_account(data_dir)
    account_id = account["AccountId"]
    storage = SqliteStorage(data_dir / "openkms.db")
    try:
        root = load_root_key_file(data_dir / "root.key")
        now = time.time()
        clock = FixedClock(now - 8 * DAY)
        rt = Runtime(storage, root, clock)
        ctx = _ctx(account_id, clock.now())
        due = keys.create_key(rt, ctx, {"Tags": [{"TagKey": "t", "TagValue": "v"}]})
        due_id = due["KeyMetadata"]["KeyId"]
        aliases.create_alias(rt, ctx, {"AliasName": "alias/due", "TargetKeyId": due_id})
        keys.schedule_key_deletion(rt, ctx, {"KeyId": due_id, "PendingWindowInDays": 7})
        # Scheduled six days ago for seven days: one day still to go.
        clock.set(now - 6 * DAY)
        ctx = _ctx(account_id, clock.now())
        waiting = keys.create_key(rt, ctx, {})
        waiting_id = waiting["KeyMetadata"]["KeyId"]
        aliases.create_alias(rt, ctx, {"AliasName": "alias/waiting", "TargetKeyId": waiting_id})
        tags.tag_resource(
            rt, ctx, {"KeyId": waiting_id, "Tags": [{"TagKey": "a", "TagValue": "b"}]}
        )
        keys.schedule_key_deletion(rt, ctx, {"KeyId": waiting_id, "PendingWindowInDays": 7})
    finally:
        storage.close()

    running = server_factory.start(data_dir, account=account)
    kms = running.client()
    expect_error("NotFoundException", kms.describe_key, KeyId=due_id)
    expect_error("NotFoundException", kms.describe_key, KeyId="alias/due")
    assert due_id not in {k["KeyId"] for k in kms.list_keys()["Keys"]}
    assert "alias/due" not in {a["AliasName"] for a in kms.list_aliases()["Aliases"]}

    meta = kms.describe_key(KeyId=waiting_id)["KeyMetadata"]
    assert meta["KeyState"] == "PendingDeletion"
    assert kms.describe_key(KeyId="alias/waiting")["KeyMetadata"]["KeyId"] == waiting_id
    assert kms.list_resource_tags(KeyId=waiting_id)["Tags"] == [{"TagKey": "a", "TagValue": "b"}]
