"""No secret reaches the disk: plaintexts, data keys, unwrapped key material, secret access keys
and the root key never appear in the SQLite database, its write-ahead log, or the server's logs,
in raw, base64 or hex form. Plus the purge of keys whose deletion window has ended.
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from openkms.clock import FixedClock
from openkms.errors import InvalidCiphertextException, NotFoundException
from openkms.rootoftrust.base import RootOfTrustError
from openkms.rootoftrust.file import load_root_key_file
from openkms.rootoftrust.memory import MemoryRoot
from openkms.service import aliases, data_keys, encryption, keys, tags
from openkms.service.accounts import IssuedAccessKey, create_account
from openkms.service.context import Principal, RequestContext
from openkms.service.runtime import Runtime
from openkms.storage.memory import MemoryStorage
from openkms.storage.sqlite import SqliteStorage

DAY = 86_400
T0 = 1_700_000_000  # a whole second, so deletion dates are exact


# --- the search ---------------------------------------------------------------------------------
def encodings(secret: bytes) -> dict[str, bytes]:
    """The forms in which a secret could leak."""
    forms = {
        "raw": secret,
        "base64": base64.b64encode(secret),
        "base64-unpadded": base64.b64encode(secret).rstrip(b"="),
        "base64url": base64.urlsafe_b64encode(secret).rstrip(b"="),
        "hex": secret.hex().encode(),
        "HEX": secret.hex().upper().encode(),
    }
    return forms


@dataclass
class Secrets:
    """Named secrets to look for."""

    items: dict[str, bytes] = field(default_factory=dict)

    def add(self, name: str, value: bytes) -> None:
        assert len(value) >= 8, f"{name}: too short to search for without false alarms"
        self.items[name] = value

    def add_access_key(self, issued: IssuedAccessKey) -> None:
        self.add(f"secret access key {issued.access_key_id}", issued.secret_access_key.encode())
        self.add(
            f"secret access key bytes {issued.access_key_id}",
            base64.b64decode(issued.secret_access_key),
        )

    def leaks(self, blobs: dict[str, bytes]) -> list[str]:
        found = []
        for name, secret in self.items.items():
            for form, needle in encodings(secret).items():
                for where, data in blobs.items():
                    if needle in data:
                        found.append(f"{name} ({form}) in {where}")
        return found


def read_files(paths: Iterable[Path]) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in paths if p.is_file()}


# --- a runtime over SQLite ---------------------------------------------------------------------
def principal_ctx(account_id: str, now: float, operation: str = "test") -> RequestContext:
    principal = Principal(
        account_id=account_id,
        arn=f"arn:aws:iam::{account_id}:root",
        kind="root",
        access_key_id="AKIATESTTESTTESTTEST",
        user_id=account_id,
    )
    return RequestContext(principal, "us-east-1", str(uuid.uuid4()), now, operation)


@dataclass
class World:
    rt: Runtime
    storage: SqliteStorage
    db: Path
    root_key: bytes
    clock: FixedClock
    account: IssuedAccessKey
    secrets: Secrets

    def ctx(self, operation: str = "test") -> RequestContext:
        return principal_ctx(self.account.account_id, self.clock.now(), operation)

    def db_files(self) -> dict[str, bytes]:
        return read_files(self.db.parent.glob(self.db.name + "*"))


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    db = tmp_path / "openkms.db"
    root_key = os.urandom(32)
    storage = SqliteStorage(db)
    clock = FixedClock(T0)
    rt = Runtime(storage, MemoryRoot(root_key), clock)
    account = create_account(storage, rt.root, clock)
    secrets = Secrets()
    secrets.add("root key", root_key)
    secrets.add_access_key(account)
    try:
        yield World(rt, storage, db, root_key, clock, account, secrets)
    finally:
        storage.close()


def exercise(world: World) -> list[str]:
    """Creates keys and uses them every way the foundation can; records each secret seen.
    Returns the key ARNs."""
    rt, secrets = world.rt, world.secrets
    arns = []
    for n in range(3):
        meta = keys.create_key(
            rt,
            world.ctx("CreateKey"),
            {"Description": f"key {n}", "Tags": [{"TagKey": "n", "TagValue": str(n)}]},
        )["KeyMetadata"]
        arns.append(meta["Arn"])
        aliases.create_alias(
            rt, world.ctx(), {"AliasName": f"alias/secret-test-{n}", "TargetKeyId": meta["KeyId"]}
        )
        for i in range(3):
            plaintext = os.urandom(24) + f"PLAINTEXT-{n}-{i}-".encode() + os.urandom(8)
            secrets.add(f"plaintext {n}.{i}", plaintext)
            context = {"purpose": f"test {i}"} if i else None
            req: dict[str, Any] = {"KeyId": meta["KeyId"], "Plaintext": plaintext}
            if context:
                req["EncryptionContext"] = context
            blob = encryption.encrypt(rt, world.ctx("Encrypt"), req)["CiphertextBlob"]
            # The ciphertext is stored by nobody; re-encrypting it must not leak either.
            dest = arns[0]
            encryption.re_encrypt(
                rt,
                world.ctx("ReEncrypt"),
                {
                    "CiphertextBlob": blob,
                    "DestinationKeyId": dest,
                    **({"SourceEncryptionContext": context} if context else {}),
                },
            )
        for spec in ("AES_256", "AES_128"):
            resp = data_keys.generate_data_key(
                rt, world.ctx("GenerateDataKey"), {"KeyId": meta["KeyId"], "KeySpec": spec}
            )
            secrets.add(f"data key {n} {spec}", resp["Plaintext"])
        resp = data_keys.generate_data_key_without_plaintext(
            rt,
            world.ctx("GenerateDataKeyWithoutPlaintext"),
            {"KeyId": meta["KeyId"], "NumberOfBytes": 64},
        )
        hidden = encryption.decrypt(
            rt, world.ctx("Decrypt"), {"CiphertextBlob": resp["CiphertextBlob"]}
        )
        secrets.add(f"data key without plaintext {n}", hidden["Plaintext"])
        world.clock.advance(1)
    rt.flush_usage()
    for arn in arns:
        for record in rt.storage.list_materials(arn):
            secrets.add(f"key material {record.material_id}", rt.unwrap_material(record))
    return arns


def test_sqlite_files_hold_no_secrets(world: World) -> None:
    arns = exercise(world)
    files = world.db_files()
    wal = files.get("openkms.db-wal", b"")
    assert wal, "the write-ahead log should hold the recent writes (WAL mode)"
    # The scan reads real data: non-secret values are there to be found.
    everything = b"".join(files.values())
    for arn in arns:
        assert arn.encode() in everything
    for record in world.rt.storage.list_materials(arns[0]):
        assert record.wrapped in everything
    leaks = world.secrets.leaks(files)
    assert not leaks, leaks


def test_sqlite_files_hold_no_secrets_after_checkpoint(world: World) -> None:
    exercise(world)
    world.storage.close()  # checkpoints the log into the database file
    files = read_files(world.db.parent.glob("openkms.db*"))
    assert files["openkms.db"]
    leaks = world.secrets.leaks(files)
    assert not leaks, leaks


def test_wrapped_secrets_open_only_with_their_binding(world: World) -> None:
    exercise(world)
    wrapped = list(world.storage.iter_wrapped_secrets())
    assert any(name.startswith("access-key:") for name, _ in wrapped)
    other_root = MemoryRoot(os.urandom(32))
    for name, blob in wrapped:
        for secret in world.secrets.items.values():
            assert secret not in blob, name
        with pytest.raises(RootOfTrustError):
            other_root.unwrap(blob, b"anything")


def test_reprs_hide_secrets(world: World) -> None:
    arns = exercise(world)
    record = world.rt.storage.list_materials(arns[0])[0]
    material = world.rt.unwrap_material(record)
    texts = [
        repr(world.account),
        repr(record),
        repr(world.rt.root),
        repr(world.rt.symmetric_key(world.rt.storage.get_key(arns[0]), record.material_id)),
        repr(world.storage.get_access_key(world.account.access_key_id)),
    ]
    for text in texts:
        assert world.account.secret_access_key not in text
        for form in encodings(material).values():
            assert form.decode("latin-1") not in text
        for form in encodings(world.root_key).values():
            assert form.decode("latin-1") not in text


# --- end to end: a real server's data directory ---------------------------------------------------
def test_server_data_directory_holds_no_secrets(server_factory) -> None:
    running = server_factory.start()
    data_dir: Path = running.server.data_dir
    kms = running.client()
    secrets = Secrets()
    secrets.add("secret access key", running.account["SecretAccessKey"].encode())
    key_ids = [kms.create_key(Description="scan me")["KeyMetadata"]["KeyId"] for _ in range(2)]
    for n, key_id in enumerate(key_ids):
        for i in range(3):
            plaintext = os.urandom(20) + f"E2E-PLAINTEXT-{n}-{i}".encode()
            secrets.add(f"plaintext {n}.{i}", plaintext)
            blob = kms.encrypt(KeyId=key_id, Plaintext=plaintext, EncryptionContext={"i": str(i)})[
                "CiphertextBlob"
            ]
            kms.decrypt(CiphertextBlob=blob, EncryptionContext={"i": str(i)})
        resp = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")
        secrets.add(f"data key {n}", resp["Plaintext"])
        resp = kms.generate_data_key(KeyId=key_id, NumberOfBytes=100)
        secrets.add(f"data key {n} (100 bytes)", resp["Plaintext"])
        secrets.add(f"random {n}", kms.generate_random(NumberOfBytes=48)["Plaintext"])
    # Failures too: a rejected plaintext and a failed decryption must not be logged.
    oversized = b"E2E-OVERSIZED-SECRET-" + os.urandom(4096)
    secrets.add("oversized plaintext", oversized[:64])
    unvalidated = running.client(parameter_validation=False)
    with pytest.raises(kms.exceptions.ClientError):
        unvalidated.encrypt(KeyId=key_ids[0], Plaintext=oversized)
    with pytest.raises(kms.exceptions.ClientError):
        kms.decrypt(CiphertextBlob=b"\x01" + b"1" * 12 + os.urandom(100))

    def scanned() -> dict[str, bytes]:
        files = read_files(p for p in data_dir.iterdir() if p.name != "root.key")
        assert "openkms.db" in files
        assert "server.stderr.log" in files
        return files

    while_running = scanned()
    assert running.stop() in (0, -15)
    after_stop = scanned()

    leaks = secrets.leaks(while_running) + secrets.leaks(after_stop)
    assert not leaks, leaks

    # Now the key material and the root key themselves, learnt offline from the data directory.
    root_fields = (data_dir / "root.key").read_text("ascii").split()
    assert root_fields[:3] == ["openkms-root-key", "v1", "plain"]
    material_secrets = Secrets()
    material_secrets.add("root key", base64.b64decode(root_fields[3]))
    storage = SqliteStorage(data_dir / "openkms.db")
    try:
        rt = Runtime(storage, load_root_key_file(data_dir / "root.key"), FixedClock())
        for key_id in key_ids:
            arn = f"arn:aws:kms:us-east-1:{running.account['AccountId']}:key/{key_id}"
            records = storage.list_materials(arn)
            assert records
            for record in records:
                material_secrets.add(f"material {record.material_id}", rt.unwrap_material(record))
    finally:
        storage.close()
    leaks = material_secrets.leaks(while_running) + material_secrets.leaks(after_stop)
    assert not leaks, leaks


# --- purge_due_keys ------------------------------------------------------------------------------
@pytest.fixture(params=["memory", "sqlite"])
def purge_world(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[Runtime, FixedClock]]:
    storage: Any = (
        MemoryStorage() if request.param == "memory" else SqliteStorage(tmp_path / "p.db")
    )
    clock = FixedClock(T0)
    try:
        yield Runtime(storage, MemoryRoot(), clock), clock
    finally:
        storage.close()


ACCOUNT = "111122223333"


def test_purge_at_the_end_of_the_window(purge_world: tuple[Runtime, FixedClock]) -> None:
    rt, clock = purge_world

    def ctx() -> RequestContext:
        return principal_ctx(ACCOUNT, clock.now())

    doomed = keys.create_key(rt, ctx(), {"Tags": [{"TagKey": "t", "TagValue": "v"}]})["KeyMetadata"]
    kept = keys.create_key(rt, ctx(), {})["KeyMetadata"]
    cancelled = keys.create_key(rt, ctx(), {})["KeyMetadata"]
    aliases.create_alias(rt, ctx(), {"AliasName": "alias/doomed", "TargetKeyId": doomed["KeyId"]})
    aliases.create_alias(rt, ctx(), {"AliasName": "alias/doomed-2", "TargetKeyId": doomed["KeyId"]})
    aliases.create_alias(rt, ctx(), {"AliasName": "alias/kept", "TargetKeyId": kept["KeyId"]})
    tags.tag_resource(
        rt, ctx(), {"KeyId": doomed["KeyId"], "Tags": [{"TagKey": "u", "TagValue": "w"}]}
    )
    blob = encryption.encrypt(rt, ctx(), {"KeyId": doomed["KeyId"], "Plaintext": b"x"})[
        "CiphertextBlob"
    ]
    resp = keys.schedule_key_deletion(
        rt, ctx(), {"KeyId": doomed["KeyId"], "PendingWindowInDays": 7}
    )
    assert resp["DeletionDate"] == T0 + 7 * DAY
    keys.schedule_key_deletion(rt, ctx(), {"KeyId": cancelled["KeyId"], "PendingWindowInDays": 7})
    keys.cancel_key_deletion(rt, ctx(), {"KeyId": cancelled["KeyId"]})

    clock.set(T0 + 7 * DAY - 1)
    assert keys.purge_due_keys(rt, clock.now()) == []
    meta = keys.describe_key(rt, ctx(), {"KeyId": doomed["KeyId"]})["KeyMetadata"]
    assert meta["KeyState"] == "PendingDeletion"
    assert (
        keys.describe_key(rt, ctx(), {"KeyId": "alias/doomed"})["KeyMetadata"]["Arn"]
        == doomed["Arn"]
    )

    clock.set(T0 + 7 * DAY)
    assert keys.purge_due_keys(rt, clock.now()) == [doomed["Arn"]]

    for ref in (doomed["KeyId"], doomed["Arn"], "alias/doomed", "alias/doomed-2"):
        with pytest.raises(NotFoundException):
            keys.describe_key(rt, ctx(), {"KeyId": ref})
    assert rt.storage.get_key(doomed["Arn"]) is None
    assert rt.storage.get_tags(doomed["Arn"]) == {}
    assert rt.storage.list_materials(doomed["Arn"]) == []
    assert rt.storage.get_alias(ACCOUNT, "us-east-1", "alias/doomed") is None
    remaining = rt.storage.list_aliases(ACCOUNT, "us-east-1", None, None, 100)
    assert [a.alias_name for a in remaining] == ["alias/kept"]
    listed = keys.list_keys(rt, ctx(), {})["Keys"]
    assert doomed["KeyId"] not in {k["KeyId"] for k in listed}
    # Its ciphertexts are now unrecoverable: the blob names a key that no longer exists.
    with pytest.raises(InvalidCiphertextException):
        encryption.decrypt(rt, ctx(), {"CiphertextBlob": blob})

    # The others are untouched.
    assert keys.describe_key(rt, ctx(), {"KeyId": kept["KeyId"]})["KeyMetadata"]["KeyState"] == (
        "Enabled"
    )
    assert (
        keys.describe_key(rt, ctx(), {"KeyId": cancelled["KeyId"]})["KeyMetadata"]["KeyState"]
        == "Disabled"
    )
    assert (
        keys.describe_key(rt, ctx(), {"KeyId": "alias/kept"})["KeyMetadata"]["Arn"] == kept["Arn"]
    )

    # Purging again finds nothing more, even much later.
    clock.set(T0 + 365 * DAY)
    assert keys.purge_due_keys(rt, clock.now()) == []


def test_purge_of_a_thirty_day_window(purge_world: tuple[Runtime, FixedClock]) -> None:
    rt, clock = purge_world
    ctx = principal_ctx(ACCOUNT, clock.now())
    key = keys.create_key(rt, ctx, {})["KeyMetadata"]
    keys.schedule_key_deletion(rt, ctx, {"KeyId": key["KeyId"]})
    assert keys.purge_due_keys(rt, T0 + 30 * DAY - 1) == []
    assert keys.purge_due_keys(rt, T0 + 7 * DAY) == []
    assert keys.purge_due_keys(rt, T0 + 30 * DAY) == [key["Arn"]]


def test_purge_happens_once_per_key(purge_world: tuple[Runtime, FixedClock]) -> None:
    rt, clock = purge_world
    ctx = principal_ctx(ACCOUNT, clock.now())
    arns = []
    for _ in range(3):
        key = keys.create_key(rt, ctx, {})["KeyMetadata"]
        keys.schedule_key_deletion(rt, ctx, {"KeyId": key["KeyId"], "PendingWindowInDays": 7})
        arns.append(key["Arn"])
    assert sorted(keys.purge_due_keys(rt, T0 + 8 * DAY)) == sorted(arns)
    assert keys.purge_due_keys(rt, T0 + 9 * DAY) == []
