"""Root-key rotation: every kind of wrapped secret (key material, access keys, STS sessions,
import wrapping keys) re-wrapped file -> file, file -> HSM and HSM -> HSM; dual blobs readable
by both roots in between; resumable after a crash; the check value moved at the end."""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import load_der_public_key

from openkms.clock import FixedClock
from openkms.errors import KMSInternalException
from openkms.http.wiring import RootKeyMismatch, check_root
from openkms.iam.sessions import issue_session, load_session
from openkms.rootoftrust.aad import access_key_aad, custom_key_store_secret_aad
from openkms.rootoftrust.base import RootOfTrust, RootOfTrustError
from openkms.rootoftrust.file import create_root_key_file, load_root_key_file
from openkms.rootoftrust.memory import MemoryRoot
from openkms.rootoftrust.rotate import (
    CURSOR_META,
    ROOT_CHECK_META,
    DualRoot,
    RotationError,
    abort,
    dual_blob,
    enumerate_items,
    file_descriptor,
    finish,
    load_state,
    parse_dual,
    rotate,
    scan,
    server_root,
)
from openkms.service import encryption, imports, keys
from openkms.service.accounts import create_account
from openkms.service.context import Principal, RequestContext
from openkms.service.runtime import Runtime
from openkms.storage.memory import MemoryStorage
from openkms.storage.sqlite import SqliteStorage

T0 = 1_700_000_000.0


# --- dual blobs --------------------------------------------------------------------------------
def test_dual_blob_round_trip_and_damage() -> None:
    blob = dual_blob([("new", b"N" * 40), ("old", b"O" * 30)])
    assert parse_dual(blob) == {"new": b"N" * 40, "old": b"O" * 30}
    assert parse_dual(b"\x01plain") is None
    for bad in (blob[:-1], blob + b"x", b"\xd2", b"\xd2\x00", blob[:5]):
        with pytest.raises(RootOfTrustError):
            parse_dual(bad)


def test_dual_root_reads_both_kinds_of_blob() -> None:
    old, new = MemoryRoot(), MemoryRoot()
    dual = dual_blob([(new.check_value(), new.wrap(b"s", b"a")), (old.check_value(), b"junk")])
    assert DualRoot(new).unwrap(dual, b"a") == b"s"
    assert (
        DualRoot(old).unwrap(
            dual_blob([(new.check_value(), b"junk"), (old.check_value(), old.wrap(b"s", b"a"))]),
            b"a",
        )
        == b"s"
    )
    with pytest.raises(RootOfTrustError):
        DualRoot(MemoryRoot()).unwrap(dual, b"a")
    # Plain blobs: current, then previous.
    both = DualRoot(new, old)
    assert both.unwrap(old.wrap(b"p", b"a"), b"a") == b"p"
    assert both.unwrap(new.wrap(b"q", b"a"), b"a") == b"q"
    with pytest.raises(RootOfTrustError):
        old.unwrap(both.wrap(b"w", b"a"), b"a")  # new secrets are the new root's only
    assert both.check_value() == new.check_value() and both.name == new.name


# --- a populated database ---------------------------------------------------------------------
@dataclass
class World:
    storage: Any
    root: RootOfTrust
    clock: FixedClock = field(default_factory=lambda: FixedClock(T0))
    account_id: str = ""
    access_key_id: str = ""
    secret_access_key: str = ""
    session_key_id: str = ""
    session_secret: str = ""
    ciphertexts: dict[str, bytes] = field(default_factory=dict)  # plaintext -> blob
    pending_import: tuple[str, bytes, bytes] | None = None  # key id, token, public key

    def runtime(self, root: RootOfTrust | None = None) -> Runtime:
        """A fresh runtime (empty caches) on ``root``."""
        return Runtime(self.storage, DualRoot(root or self.root), self.clock)

    def ctx(self, operation: str = "test") -> RequestContext:
        principal = Principal(
            self.account_id,
            f"arn:aws:iam::{self.account_id}:root",
            "root",
            self.access_key_id,
            self.account_id,
        )
        return RequestContext(
            principal, "us-east-1", str(uuid.uuid4()), self.clock.now(), operation
        )

    def add_symmetric_key(self, root: RootOfTrust | None = None) -> None:
        rt = self.runtime(root)
        key_id = keys.create_key(rt, self.ctx(), {})["KeyMetadata"]["KeyId"]
        plaintext = os.urandom(24)
        blob = encryption.encrypt(rt, self.ctx(), {"KeyId": key_id, "Plaintext": plaintext})
        self.ciphertexts[plaintext.hex()] = blob["CiphertextBlob"]


def _import_params(rt: Runtime, world: World, key_id: str) -> dict[str, Any]:
    return imports.get_parameters_for_import(
        rt,
        world.ctx(),
        {"KeyId": key_id, "WrappingAlgorithm": "RSAES_OAEP_SHA_256", "WrappingKeySpec": "RSA_2048"},
    )


def _wrap_material(public_key: bytes, material: bytes) -> bytes:
    public = load_der_public_key(public_key)
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    return public.encrypt(material, oaep)  # type: ignore[union-attr]


def populate(world: World) -> None:
    issued = create_account(world.storage, world.root, world.clock)
    world.account_id = issued.account_id
    world.access_key_id = issued.access_key_id
    world.secret_access_key = issued.secret_access_key
    for _ in range(3):
        world.add_symmetric_key()
    rt = world.runtime()
    # An asymmetric key too: its private key is wrapped material.
    keys.create_key(rt, world.ctx(), {"KeySpec": "RSA_2048", "KeyUsage": "ENCRYPT_DECRYPT"})
    # Imported material, and an import token still outstanding.
    external = keys.create_key(rt, world.ctx(), {"Origin": "EXTERNAL"})["KeyMetadata"]["KeyId"]
    params = _import_params(rt, world, external)
    material = os.urandom(32)
    imports.import_key_material(
        rt,
        world.ctx(),
        {
            "KeyId": external,
            "ImportToken": params["ImportToken"],
            "EncryptedKeyMaterial": _wrap_material(params["PublicKey"], material),
            "ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE",
        },
    )
    blob = encryption.encrypt(rt, world.ctx(), {"KeyId": external, "Plaintext": b"imported"})
    world.ciphertexts[b"imported".hex()] = blob["CiphertextBlob"]
    pending = keys.create_key(rt, world.ctx(), {"Origin": "EXTERNAL"})["KeyMetadata"]["KeyId"]
    params = _import_params(rt, world, pending)
    world.pending_import = (pending, params["ImportToken"], params["PublicKey"])
    # An STS session.
    session = issue_session(
        world.storage,
        world.root,
        account_id=world.account_id,
        partition="aws",
        role_arn=f"arn:aws:iam::{world.account_id}:role/r",
        role_id="AROAEXAMPLE",
        role_name="r",
        session_name="s",
        source_arn=f"arn:aws:iam::{world.account_id}:root",
        now=T0,
        duration_seconds=3600,
        session_policy=None,
        tags=(),
        transitive_tag_keys=(),
    )
    world.session_key_id = session.record.access_key_id
    world.session_secret = session.secret_access_key
    world.storage.set_meta(ROOT_CHECK_META, world.root.check_value())


def assert_everything_reads(world: World, root: RootOfTrust) -> None:
    """Every secret of ``world`` opens with ``root`` alone (fresh caches)."""
    rt = world.runtime(root)
    for plaintext, blob in world.ciphertexts.items():
        out = encryption.decrypt(rt, world.ctx(), {"CiphertextBlob": blob})
        assert out["Plaintext"].hex() == plaintext
    record = world.storage.get_access_key(world.access_key_id)
    assert rt.root.unwrap(record.wrapped_secret, access_key_aad(world.access_key_id)) == (
        world.secret_access_key.encode()
    )
    session = load_session(world.storage, world.session_key_id)
    assert session is not None and session.secret(rt.root) == world.session_secret.encode()
    assert scan(world.storage, root)["unreadable"] == 0


def finish_pending_import(world: World, root: RootOfTrust) -> None:
    """The import token issued before the rotation still works after it."""
    assert world.pending_import is not None
    key_id, token, public = world.pending_import
    rt = world.runtime(root)
    imports.import_key_material(
        rt,
        world.ctx(),
        {
            "KeyId": key_id,
            "ImportToken": token,
            "EncryptedKeyMaterial": _wrap_material(public, os.urandom(32)),
            "ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE",
        },
    )


# --- roots --------------------------------------------------------------------------------------
RootMaker = Callable[[Path, str], tuple[RootOfTrust, dict[str, Any]]]


def _file(tmp: Path, name: str) -> tuple[RootOfTrust, dict[str, Any]]:
    path = tmp / f"{name}.key"
    create_root_key_file(path)
    return load_root_key_file(path), file_descriptor(path)


def _hsm(tmp: Path, name: str) -> tuple[RootOfTrust, dict[str, Any]]:
    from openkms.rootoftrust.pkcs11 import Pkcs11Root
    from openkms.rootoftrust.rotate import pkcs11_descriptor
    from tests.contract.softhsm import new_key_label, shared_token, softhsm_for_process

    hsm, token = softhsm_for_process(), shared_token()
    root = Pkcs11Root(hsm.module, token.label, new_key_label(), token.pin, create=True)
    return root, pkcs11_descriptor(root.module, token.label, root.key_label)


PAIRS: dict[str, tuple[RootMaker, RootMaker]] = {
    "file-to-file": (_file, _file),
    "file-to-hsm": (_file, _hsm),
    "hsm-to-hsm": (_hsm, _hsm),
}


@pytest.fixture(params=["sqlite", "memory", "postgres"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "postgres":
        yield from _postgres()
        return
    backend: Any = (
        SqliteStorage(tmp_path / "openkms.db") if request.param == "sqlite" else (MemoryStorage())
    )
    try:
        yield backend
    finally:
        backend.close()


def _postgres() -> Iterator[Any]:
    """A fresh schema in this process's throwaway PostgreSQL cluster (tests/integration/pg.py)."""
    from tests.integration.pg import require_postgres, shared_cluster

    require_postgres()
    from openkms.storage.postgres import PostgresStorage

    global _PG_DATABASE
    cluster = shared_cluster()
    if _PG_DATABASE is None:
        _PG_DATABASE = cluster.create_database()
    url = cluster.create_schema(_PG_DATABASE)
    backend = PostgresStorage(url)
    try:
        yield backend
    finally:
        backend.close()
        cluster.drop_schema(url)


_PG_DATABASE: str | None = None


def _open_previous(roots: dict[str, RootOfTrust]) -> Callable[[dict[str, Any]], RootOfTrust]:
    def open_previous(descriptor: dict[str, Any]) -> RootOfTrust:
        return roots[repr(sorted(descriptor.items()))]

    return open_previous


@pytest.mark.parametrize("pair", sorted(PAIRS))
def test_rotation_end_to_end(pair: str, storage: Any, tmp_path: Path) -> None:
    make_old, make_new = PAIRS[pair]
    old, old_desc = make_old(tmp_path, "old")
    new, new_desc = make_new(tmp_path, "new")
    world = World(storage, old)
    populate(world)
    secrets_before = len(enumerate_items(storage))
    assert {i.category for i in enumerate_items(storage)} == {
        "material",
        "access-key",
        "sts-session",
        "kms-import",
    }

    state = rotate(storage, old, new, old_desc, new_desc, batch_size=3)
    assert state.phase == "restart"
    assert state.counts["rewrap"] == secrets_before and not state.unreadable
    # Pass 1: every secret is a dual blob, readable by the old root and by the new one.
    assert scan(storage, old) == {
        "secrets": secrets_before,
        "dual": secrets_before,
        "unreadable": 0,
    }
    assert_everything_reads(world, old)
    assert_everything_reads(world, new)
    # The database now belongs to the new root: a server on the old one refuses to start.
    assert storage.get_meta(ROOT_CHECK_META) == new.check_value()
    with pytest.raises(RootKeyMismatch):
        check_root(storage, old)
    check_root(storage, new)

    # A server still on the old root writes a secret after the pass: a straggler.
    world.add_symmetric_key(old)
    # The restarted server opens the previous root from the rotation's descriptor and reads it.
    roots = {repr(sorted(old_desc.items())): old}
    server = server_root(new, storage.get_meta("root_rotation"), _open_previous(roots))
    assert server.previous is old
    assert_everything_reads(world, server)
    with pytest.raises(KMSInternalException):
        assert_everything_reads(world, new)  # the straggler needs the old root

    state = finish(storage, new, old, batch_size=4)
    assert state.phase == "done" and not state.unreadable
    counts = scan(storage, new)
    assert counts["dual"] == 0 and counts["unreadable"] == 0
    assert scan(storage, old)["unreadable"] == counts["secrets"]  # nothing is the old root's
    assert_everything_reads(world, new)
    finish_pending_import(world, new)
    # Once done, a server no longer opens the previous root.
    assert (
        server_root(new, storage.get_meta("root_rotation"), _open_previous(roots)).previous is None
    )


def test_rotation_resumes_after_a_crash(tmp_path: Path) -> None:
    storage = SqliteStorage(tmp_path / "openkms.db")
    try:
        old, old_desc = _file(tmp_path, "old")
        new, new_desc = _file(tmp_path, "new")
        world = World(storage, old)
        populate(world)
        total = len(enumerate_items(storage))
        with pytest.raises(RotationError, match="stopped after 2 batches"):
            rotate(storage, old, new, old_desc, new_desc, batch_size=2, fail_after=2)
        state = load_state(storage)
        assert state is not None and state.phase == "rewrap"
        assert storage.get_meta(CURSOR_META)
        assert storage.get_meta(ROOT_CHECK_META) == old.check_value()  # not moved yet
        assert scan(storage, old)["dual"] == 4
        assert_everything_reads(world, old)  # the server on the old root is unaffected

        # Another target is refused while this rotation is unfinished.
        other, other_desc = _file(tmp_path, "other")
        with pytest.raises(RotationError, match="in progress"):
            rotate(storage, old, other, old_desc, other_desc)

        seen: list[int] = []
        state = rotate(
            storage,
            old,
            new,
            old_desc,
            new_desc,
            batch_size=2,
            progress=lambda name, done, n: seen.append(n),
        )
        assert seen and seen[0] == total - 4  # resumed after the cursor, not from the start
        assert state.phase == "restart" and scan(storage, new)["dual"] == total

        # The second pass crashes too, and resumes.
        with pytest.raises(RotationError):
            finish(storage, new, old, batch_size=3, fail_after=1)
        assert load_state(storage).phase == "restart"  # type: ignore[union-attr]
        state = finish(storage, new, old, batch_size=3)
        assert state.phase == "done"
        assert scan(storage, new) == {"secrets": total, "dual": 0, "unreadable": 0}
    finally:
        storage.close()


def test_secrets_written_during_the_pass_are_swept(tmp_path: Path) -> None:
    storage = SqliteStorage(tmp_path / "openkms.db")
    try:
        old, old_desc = _file(tmp_path, "old")
        new, new_desc = _file(tmp_path, "new")
        world = World(storage, old)
        populate(world)
        added: list[bool] = []

        def server_writes(name: str, done: int, total: int) -> None:
            if not added:  # a server on the old root creates a key mid-pass
                added.append(True)
                world.add_symmetric_key(old)

        rotate(storage, old, new, old_desc, new_desc, batch_size=2, progress=server_writes)
        assert added
        counts = scan(storage, new)
        assert counts["unreadable"] == 0 and counts["dual"] == counts["secrets"]
        assert_everything_reads(world, new)
    finally:
        storage.close()


def test_refusals(tmp_path: Path) -> None:
    storage = MemoryStorage()
    old, old_desc = _file(tmp_path, "old")
    new, new_desc = _file(tmp_path, "new")
    world = World(storage, old)
    populate(world)
    with pytest.raises(RotationError, match="is the current one"):
        rotate(storage, old, old, old_desc, old_desc)
    stranger = MemoryRoot()
    with pytest.raises(RotationError, match="not the one this database"):
        rotate(storage, stranger, new, {"kind": "env"}, new_desc)
    with pytest.raises(RotationError, match="no rotation waits"):
        finish(storage, new, old)
    with pytest.raises(RotationError, match="no rotation can be aborted"):
        abort(storage, old)
    rotate(storage, old, new, old_desc, new_desc)
    with pytest.raises(RotationError, match="waits for the servers"):
        rotate(storage, old, new, old_desc, new_desc)
    with pytest.raises(RotationError, match="not the rotation's"):
        finish(storage, old, None)
    with pytest.raises(RotationError, match="no rotation can be aborted"):
        abort(storage, old)


def test_abort_undoes_the_first_pass(tmp_path: Path) -> None:
    storage = MemoryStorage()
    old, old_desc = _file(tmp_path, "old")
    new, new_desc = _file(tmp_path, "new")
    world = World(storage, old)
    populate(world)
    with pytest.raises(RotationError):
        rotate(storage, old, new, old_desc, new_desc, batch_size=3, fail_after=1)
    state = abort(storage, old)
    assert state.phase == "aborted"
    assert scan(storage, old)["dual"] == 0
    assert scan(storage, new)["unreadable"] == scan(storage, new)["secrets"]
    assert storage.get_meta(ROOT_CHECK_META) == old.check_value()
    assert_everything_reads(world, old)
    # A new rotation can start afterwards.
    assert rotate(storage, old, new, old_desc, new_desc).phase == "restart"


def test_finish_without_the_old_root_reports_stragglers(tmp_path: Path) -> None:
    storage = MemoryStorage()
    old, old_desc = _file(tmp_path, "old")
    new, new_desc = _file(tmp_path, "new")
    world = World(storage, old)
    populate(world)
    rotate(storage, old, new, old_desc, new_desc)
    world.add_symmetric_key(old)  # written by a server on the old root after pass 1
    state = finish(storage, new, None)
    assert state.phase == "done"
    assert len(state.unreadable) == 1 and state.unreadable[0].startswith("material:")


def test_a_missing_previous_root_is_warned_about(tmp_path: Path) -> None:
    storage = MemoryStorage()
    old, old_desc = _file(tmp_path, "old")
    new, new_desc = _file(tmp_path, "new")
    World(storage, old).storage.set_meta(ROOT_CHECK_META, old.check_value())
    rotate(storage, old, new, old_desc, new_desc)
    warnings: list[str] = []

    def cannot_open(descriptor: dict[str, Any]) -> RootOfTrust:
        raise FileNotFoundError(descriptor["path"])

    root = server_root(new, storage.get_meta("root_rotation"), cannot_open, warnings.append)
    assert root.previous is None and "cannot be opened" in warnings[0]
    # A server on another root than the rotation's target does not open the previous one.
    assert (
        server_root(MemoryRoot(), storage.get_meta("root_rotation"), cannot_open).previous is None
    )


# --- the command line -----------------------------------------------------------------------------
def _cli(*args: str) -> int:
    from openkms.cli.main import main

    return main(list(args))


def test_cli_rotate_file_to_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [n for n in os.environ if n.startswith("OPENKMS_")]:
        monkeypatch.delenv(name)
    data = tmp_path / "data"
    assert _cli("accounts", "create", "--data-dir", str(data)) == 0
    created = capsys.readouterr().out
    assert "SecretAccessKey" in created
    new_file = tmp_path / "new.key"
    assert _cli("rootkey", "rotate", "--data-dir", str(data), "--to-file", str(new_file)) == 0
    out = capsys.readouterr()
    assert '"Phase": "restart"' in out.out and "--finish" in out.err
    assert new_file.stat().st_mode & 0o777 == 0o600
    # The server would now be refused on the old file.
    assert _cli("accounts", "create", "--data-dir", str(data)) == 2
    assert "does not match" in capsys.readouterr().err
    # On the new file (OPENKMS_ROOT_KEY_FILE), it works, and the rotation can be finished.
    monkeypatch.setenv("OPENKMS_ROOT_KEY_FILE", str(new_file))
    assert _cli("accounts", "create", "--data-dir", str(data)) == 0
    capsys.readouterr()
    assert _cli("rootkey", "rotate", "--data-dir", str(data), "--finish") == 0
    assert '"Phase": "done"' in capsys.readouterr().out
    assert _cli("rootkey", "status", "--data-dir", str(data), "--scan") == 0
    status = capsys.readouterr().out
    assert '"unreadable": 0' in status and '"dual": 0' in status
    assert _cli("rootkey", "rotate", "--data-dir", str(data), "--finish") == 2
    assert "no rotation waits" in capsys.readouterr().err


def test_cli_needs_a_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli("rootkey", "rotate", "--data-dir", str(tmp_path)) == 2
    assert "--to-file" in capsys.readouterr().err


def test_session_secret_survives(tmp_path: Path) -> None:
    # The STS session document keeps every other field as it was.
    storage = MemoryStorage()
    old, old_desc = _file(tmp_path, "old")
    new, new_desc = _file(tmp_path, "new")
    world = World(storage, old)
    populate(world)
    before = load_session(storage, world.session_key_id)
    rotate(storage, old, new, old_desc, new_desc)
    finish(storage, new, old)
    after = load_session(storage, world.session_key_id)
    assert before is not None and after is not None
    assert before.wrapped_secret != after.wrapped_secret
    assert after.secret(new) == world.session_secret.encode()
    assert {k: v for k, v in vars_of(before).items() if k != "wrapped_secret"} == {
        k: v for k, v in vars_of(after).items() if k != "wrapped_secret"
    }
    assert base64.b64decode(after.wrapped_secret)[:1] == b"\x01"


def vars_of(record: object) -> dict[str, Any]:
    import dataclasses

    return dataclasses.asdict(record)  # type: ignore[call-overload]


def test_custom_key_store_secrets_are_rewrapped(tmp_path: Path) -> None:
    from openkms.rootoftrust.rotate import STORE_KIND

    storage = MemoryStorage()
    old, old_desc = _file(tmp_path, "old")
    new, new_desc = _file(tmp_path, "new")
    check_root(storage, old)
    account, store_id = "111122223333", "cks-0123456789abcdef0"
    doc = {
        "store_id": store_id,
        "account_id": account,
        "wrapped_password": base64.b64encode(
            old.wrap(b"cu-password", custom_key_store_secret_aad(account, store_id, "password"))
        ).decode(),
        "wrapped_xks_secret": base64.b64encode(
            old.wrap(b"xks-secret", custom_key_store_secret_aad(account, store_id, "xks-secret"))
        ).decode(),
    }
    import orjson

    storage.put_document(STORE_KIND, account, store_id, orjson.dumps(doc).decode(), 1.0)
    assert {i.category for i in enumerate_items(storage)} == {"custom-key-store"}
    rotate(storage, old, new, old_desc, new_desc)
    finish(storage, new, old)
    stored = orjson.loads(storage.get_document(STORE_KIND, account, store_id) or "{}")
    for field_name, what, secret in (
        ("wrapped_password", "password", b"cu-password"),
        ("wrapped_xks_secret", "xks-secret", b"xks-secret"),
    ):
        blob = base64.b64decode(stored[field_name])
        assert new.unwrap(blob, custom_key_store_secret_aad(account, store_id, what)) == secret
        with pytest.raises(RootOfTrustError):
            old.unwrap(blob, custom_key_store_secret_aad(account, store_id, what))
