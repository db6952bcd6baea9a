"""Root-key rotation: every wrapped secret re-wrapped under a new root key (file -> file,
file -> HSM, HSM -> HSM) while servers keep serving, resumable after a crash.

The procedure (docs/hsm.md) has two passes around one restart:

1. ``rewrap`` (``openkms rootkey rotate --to-...``), servers running on the old root A: every
   secret becomes a *dual blob* holding its A-wrapping and its B-wrapping (the new root), so
   servers on A and servers on B both read it. Servers on A still write A-only secrets; a sweep
   picks up those written during the pass. At the end the stored check value becomes B's (a
   server can no longer start on A) and the rotation waits for the restart.
2. The operator restarts the servers on B. Each one sees the rotation in storage and also opens
   A from the descriptor the rotation recorded (a file path, or module/token/key label: never a
   secret), so the few secrets that servers on A wrote after the pass still read.
3. ``finish`` (``openkms rootkey rotate --finish``), every server on B: each secret becomes a
   B-only blob (the dual blob's B half, or A's secret re-wrapped). Then A can be destroyed.

Progress is kept in storage meta (``root_rotation``: the phase and both roots' descriptors and
check values; ``root_rotation_cursor``: the last secret done), written in the same transaction
as the secrets, so a crashed run resumes where it stopped. Each secret is read again and
rewritten inside a short transaction, so a concurrent change by a server is never overwritten
by a stale copy.

``DualRoot`` is the root every server runs behind (``http.wiring.open_root``): it wraps with
the current root and unwraps plain blobs with the current root, then the previous one, and dual
blobs with whichever of its roots the blob has a half for.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from openkms.rootoftrust.aad import (
    CUSTOM_KEY_STORE_KIND,
    CUSTOM_KEY_STORE_SECRETS,
    IMPORT_TOKEN_KIND,
    STS_SESSION_KIND,
    STS_SESSION_SCOPE,
    access_key_aad,
    custom_key_store_secret_aad,
    import_token_aad,
    material_aad,
    sts_session_aad,
)
from openkms.rootoftrust.base import RootOfTrust, RootOfTrustError

DUAL_MAGIC = b"\xd2"
ROOT_CHECK_META = "root_key_check_value"  # the name http.wiring.check_root uses
ROTATION_META = "root_rotation"
CURSOR_META = "root_rotation_cursor"

PHASE_REWRAP = "rewrap"
PHASE_RESTART = "restart"
PHASE_DONE = "done"
PHASE_ABORTED = "aborted"
ACTIVE_PHASES = (PHASE_REWRAP, PHASE_RESTART)

_CATEGORIES = ("material", "access-key", "sts-session", "kms-import", "custom-key-store")
IMPORT_KIND = IMPORT_TOKEN_KIND
STORE_KIND = CUSTOM_KEY_STORE_KIND
_STORE_SECRETS = CUSTOM_KEY_STORE_SECRETS


class RotationError(Exception):
    """The rotation cannot start or go on as asked; the message says why and what to do."""


# --- dual blobs ----------------------------------------------------------------------------------
def dual_blob(parts: list[tuple[str, bytes]]) -> bytes:
    """``0xD2 | count | count x (len(check) u8 | check | len(blob) u32 | blob)``."""
    out = bytearray(DUAL_MAGIC)
    out.append(len(parts))
    for check, blob in parts:
        encoded = check.encode("ascii")
        out.append(len(encoded))
        out += encoded
        out += struct.pack(">I", len(blob))
        out += blob
    return bytes(out)


def parse_dual(blob: bytes) -> dict[str, bytes] | None:
    """The halves of a dual blob by root check value; None for a plain blob."""
    if blob[:1] != DUAL_MAGIC:
        return None
    try:
        count = blob[1]
        pos = 2
        parts: dict[str, bytes] = {}
        for _ in range(count):
            size = blob[pos]
            check = blob[pos + 1 : pos + 1 + size].decode("ascii")
            pos += 1 + size
            (length,) = struct.unpack(">I", blob[pos : pos + 4])
            pos += 4
            part = blob[pos : pos + length]
            if len(part) != length:
                raise RootOfTrustError("unwrap failed")
            parts[check] = part
            pos += length
    except (IndexError, struct.error, UnicodeDecodeError):
        raise RootOfTrustError("unwrap failed") from None
    if pos != len(blob) or not parts:
        raise RootOfTrustError("unwrap failed")
    return parts


class DualRoot:
    """The current root, plus the previous one while a rotation waits to be finished."""

    def __init__(self, current: RootOfTrust, previous: RootOfTrust | None = None) -> None:
        self.current = current
        self.previous = previous
        self.name = current.name

    def __repr__(self) -> str:
        return f"DualRoot(current={self.current!r}, previous={self.previous!r})"

    def _roots(self) -> list[RootOfTrust]:
        return [self.current] if self.previous is None else [self.current, self.previous]

    def wrap(self, plaintext: bytes, aad: bytes) -> bytes:
        return self.current.wrap(plaintext, aad)

    def unwrap(self, wrapped: bytes, aad: bytes) -> bytes:
        parts = parse_dual(wrapped)
        for root in self._roots():
            blob = wrapped if parts is None else parts.get(root.check_value())
            if blob is None:
                continue
            try:
                return root.unwrap(blob, aad)
            except RootOfTrustError:
                continue
        raise RootOfTrustError("unwrap failed")

    def check_value(self) -> str:
        return self.current.check_value()

    def healthy(self) -> bool:
        probe = getattr(self.current, "healthy", None)
        return bool(probe()) if callable(probe) else True


# --- what a rotation knows about its roots -------------------------------------------------------
def file_descriptor(path: Path) -> dict[str, Any]:
    return {"kind": "file", "path": str(path.resolve())}


def pkcs11_descriptor(module: str, token_label: str, key_label: str) -> dict[str, Any]:
    return {"kind": "pkcs11", "module": module, "token_label": token_label, "key_label": key_label}


def describe(descriptor: dict[str, Any]) -> str:
    if descriptor.get("kind") == "file":
        return f"file {descriptor['path']}"
    if descriptor.get("kind") == "pkcs11":
        return f"PKCS#11 key {descriptor['key_label']!r} in token {descriptor['token_label']!r}"
    return str(descriptor.get("kind", "unknown"))


def open_described(
    descriptor: dict[str, Any], *, passphrase: str | None, pin: str | None
) -> RootOfTrust:
    """Opens the root a descriptor names (raises if it cannot be opened)."""
    kind = descriptor.get("kind")
    if kind == "file":
        from openkms.rootoftrust.file import load_root_key_file

        return load_root_key_file(Path(descriptor["path"]), passphrase)
    if kind == "pkcs11":
        from openkms.rootoftrust.pkcs11 import Pkcs11Root

        return Pkcs11Root(
            descriptor["module"], descriptor["token_label"], descriptor["key_label"], pin
        )
    raise RotationError(f"a root of kind {kind!r} cannot be reopened from storage")


@dataclass
class RotationState:
    phase: str
    source: dict[str, Any]
    target: dict[str, Any]
    source_check: str
    target_check: str
    started_at: float
    updated_at: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return orjson.dumps(dataclasses.asdict(self)).decode()

    @classmethod
    def from_json(cls, text: str) -> RotationState:
        data = orjson.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @property
    def active(self) -> bool:
        return self.phase in ACTIVE_PHASES


def load_state(storage: Any) -> RotationState | None:
    text = storage.get_meta(ROTATION_META)
    return RotationState.from_json(text) if text else None


def server_root(
    current: RootOfTrust,
    state_text: str | None,
    open_previous: Callable[[dict[str, Any]], RootOfTrust],
    warn: Callable[[str], None] = lambda message: None,
) -> DualRoot:
    """The root a server runs on: ``current``, and the rotation's source root when a rotation
    waits for ``--finish`` and ``current`` is its target."""
    if not state_text:
        return DualRoot(current)
    state = RotationState.from_json(state_text)
    if state.phase != PHASE_RESTART:
        return DualRoot(current)
    try:
        current_check = current.check_value()
    except Exception:  # a sealed root without a known check value
        return DualRoot(current)
    if current_check != state.target_check:
        return DualRoot(current)
    try:
        previous = open_previous(state.source)
    except Exception as exc:
        warn(
            f"root-key rotation waits for 'openkms rootkey rotate --finish', but its previous "
            f"root ({describe(state.source)}) cannot be opened ({type(exc).__name__}: {exc}); "
            "secrets written under it after the rotation pass cannot be read until then"
        )
        return DualRoot(current)
    if previous.check_value() != state.source_check:
        warn(
            f"the previous root ({describe(state.source)}) is not the one the rotation started "
            "from; it is not used"
        )
        return DualRoot(current)
    return DualRoot(current, previous)


# --- the secrets ---------------------------------------------------------------------------------
@dataclass(frozen=True, order=True, slots=True)
class Item:
    order: int
    key: tuple[str, ...]

    @property
    def category(self) -> str:
        return _CATEGORIES[self.order]

    def label(self) -> str:
        return f"{self.category}:{'/'.join(self.key)}"


def _document_scopes(storage: Any, kind: str) -> list[str]:
    """Every scope that holds documents of ``kind``."""
    return sorted(storage.list_document_scopes(kind))


def _documents(storage: Any, kind: str, scope: str) -> Iterator[str]:
    after: str | None = None
    while True:
        batch = storage.list_documents(kind, scope, after=after, limit=500)
        for name, _ in batch:
            yield name
        if len(batch) < 500:
            return
        after = batch[-1][0]


def enumerate_items(storage: Any) -> list[Item]:
    """Every wrapped secret in storage, in a stable order."""
    items: list[Item] = []
    for ident, _ in storage.iter_wrapped_secrets():
        if ident.startswith("access-key:"):
            items.append(Item(1, (ident[len("access-key:") :],)))
        elif "#" in ident:
            arn, _, material_id = ident.rpartition("#")
            items.append(Item(0, (arn, material_id)))
        else:
            raise RotationError(f"a wrapped secret of an unknown kind: {ident}")
    for name in _documents(storage, STS_SESSION_KIND, STS_SESSION_SCOPE):
        items.append(Item(2, (name,)))
    for scope in _document_scopes(storage, IMPORT_KIND):
        for name in _documents(storage, IMPORT_KIND, scope):
            items.append(Item(3, (scope, name)))
    for account in _document_scopes(storage, STORE_KIND):
        for store_id in _documents(storage, STORE_KIND, account):
            for field_name in _STORE_SECRETS:
                items.append(Item(4, (account, store_id, field_name)))
    return sorted(set(items))


@dataclass
class _Record:
    blob: bytes
    aad: bytes
    write: Callable[[bytes], None]


def _load(storage: Any, item: Item) -> _Record | None:
    """The secret's wrapped blob, its AAD, and how to store a new blob (inside a transaction)."""
    if item.category == "material":
        arn, material_id = item.key
        # The key's row first: inside a transaction it is locked (PostgreSQL: FOR UPDATE), as
        # every server-side change to a key's material locks it, so no change is lost.
        if storage.get_key(arn) is None:
            return None
        material = storage.get_material(arn, material_id)
        if material is None:
            return None
        return _Record(
            material.wrapped,
            material_aad(arn, material_id),
            lambda b: storage.put_material(dataclasses.replace(material, wrapped=b)),
        )
    if item.category == "access-key":
        (akid,) = item.key
        access = storage.get_access_key(akid)
        if access is None:
            return None
        return _Record(
            access.wrapped_secret,
            access_key_aad(akid),
            lambda b: storage.put_access_key(dataclasses.replace(access, wrapped_secret=b)),
        )
    if item.category == "sts-session":
        (akid,) = item.key
        return _document_record(
            storage,
            STS_SESSION_KIND,
            STS_SESSION_SCOPE,
            akid,
            "wrapped_secret",
            sts_session_aad(akid),
            "b64",
        )
    if item.category == "custom-key-store":
        account, store_id, field_name = item.key
        aad = custom_key_store_secret_aad(account, store_id, _STORE_SECRETS[field_name])
        return _document_record(storage, STORE_KIND, account, store_id, field_name, aad, "b64")
    scope, name = item.key
    return _document_record(
        storage, IMPORT_KIND, scope, name, "wrapped_private", import_token_aad(scope, name), "hex"
    )


def _document_record(
    storage: Any, kind: str, scope: str, name: str, field_name: str, aad: bytes, encoding: str
) -> _Record | None:
    text = storage.get_document(kind, scope, name)
    if text is None:
        return None
    doc = orjson.loads(text)
    value = doc.get(field_name)
    if not isinstance(value, str):
        return None
    try:
        blob = base64.b64decode(value) if encoding == "b64" else bytes.fromhex(value)
    except (ValueError, binascii.Error):
        return None

    def write(new: bytes) -> None:
        doc[field_name] = base64.b64encode(new).decode("ascii") if encoding == "b64" else new.hex()
        storage.put_document(kind, scope, name, orjson.dumps(doc).decode(), time.time())

    return _Record(blob, aad, write)


# --- the passes ----------------------------------------------------------------------------------
# A transform returns the new blob, None when the secret needs nothing, or raises RootOfTrustError
# when no root at hand can read it.
Transform = Callable[[bytes, bytes], bytes | None]


def _rewrap_transform(source: RootOfTrust, target: RootOfTrust) -> Transform:
    source_check, target_check = source.check_value(), target.check_value()

    def transform(blob: bytes, aad: bytes) -> bytes | None:
        parts = parse_dual(blob)
        if parts is not None and target_check in parts:
            return None
        old = blob if parts is None else parts.get(source_check)
        if old is None:
            raise RootOfTrustError("unwrap failed")
        plaintext = source.unwrap(old, aad)
        return dual_blob([(target_check, target.wrap(plaintext, aad)), (source_check, old)])

    return transform


def _finish_transform(source: RootOfTrust | None, target: RootOfTrust) -> Transform:
    target_check = target.check_value()
    source_check = source.check_value() if source is not None else None

    def readable(root: RootOfTrust, blob: bytes, aad: bytes) -> bytes | None:
        try:
            return root.unwrap(blob, aad)
        except RootOfTrustError:
            return None

    def transform(blob: bytes, aad: bytes) -> bytes | None:
        parts = parse_dual(blob)
        old: bytes | None
        if parts is None:
            if readable(target, blob, aad) is not None:
                return None
            old = blob
        else:
            new = parts.get(target_check)
            if new is not None and readable(target, new, aad) is not None:
                return new
            old = parts.get(source_check) if source_check is not None else None
        if source is None or old is None:
            raise RootOfTrustError("unwrap failed")
        return target.wrap(source.unwrap(old, aad), aad)

    return transform


def _abort_transform(source_check: str) -> Transform:
    def transform(blob: bytes, aad: bytes) -> bytes | None:
        parts = parse_dual(blob)
        if parts is None:
            return None
        old = parts.get(source_check)
        if old is None:
            raise RootOfTrustError("unwrap failed")
        return old

    return transform


@dataclass
class PassReport:
    seen: int = 0
    changed: int = 0
    unreadable: list[str] = field(default_factory=list)


Progress = Callable[[str, int, int], None]


def _cursor(storage: Any) -> Item | None:
    text = storage.get_meta(CURSOR_META)
    if not text:
        return None
    data = orjson.loads(text)
    return Item(int(data[0]), tuple(str(k) for k in data[1:]))


def _run_pass(
    storage: Any,
    transform: Transform,
    *,
    name: str,
    batch_size: int,
    resume: bool,
    progress: Progress | None,
    fail_after: int | None = None,
) -> PassReport:
    """One pass over every secret, ``batch_size`` secrets per transaction, the cursor saved with
    each batch. ``fail_after`` stops (raises) after that many batches: for crash tests."""
    start = _cursor(storage) if resume else None
    items = [i for i in enumerate_items(storage) if start is None or i > start]
    report = PassReport()
    batches = 0
    for offset in range(0, len(items), batch_size):
        batch = items[offset : offset + batch_size]
        with storage.transaction():
            for item in batch:
                record = _load(storage, item)
                report.seen += 1
                if record is None:
                    continue
                try:
                    new = transform(record.blob, record.aad)
                except RootOfTrustError:
                    report.unreadable.append(item.label())
                    continue
                if new is not None and new != record.blob:
                    record.write(new)
                    report.changed += 1
            last = batch[-1]
            storage.set_meta(CURSOR_META, orjson.dumps([last.order, *last.key]).decode())
        batches += 1
        if progress is not None:
            progress(name, offset + len(batch), len(items))
        if fail_after is not None and batches >= fail_after:
            raise RotationError(f"stopped after {batches} batches (fail_after)")
    return report


def _save(storage: Any, state: RotationState) -> None:
    state.updated_at = time.time()
    storage.set_meta(ROTATION_META, state.to_json())


def _merge(state: RotationState, phase: str, report: PassReport) -> None:
    state.counts[phase] = state.counts.get(phase, 0) + report.changed
    for label in report.unreadable:
        if label not in state.unreadable and len(state.unreadable) < 1000:
            state.unreadable.append(label)


MAX_SWEEPS = 10


def rotate(
    storage: Any,
    source: RootOfTrust,
    target: RootOfTrust,
    source_descriptor: dict[str, Any],
    target_descriptor: dict[str, Any],
    *,
    batch_size: int = 100,
    progress: Progress | None = None,
    fail_after: int | None = None,
) -> RotationState:
    """Pass 1 (start or resume): every secret readable by ``source`` and ``target``; then the
    stored check value is ``target``'s and the rotation waits for the restart and ``finish``."""
    source_check, target_check = source.check_value(), target.check_value()
    if source_check == target_check:
        raise RotationError("the new root key is the current one")
    state = load_state(storage)
    if state is not None and state.active:
        if state.phase != PHASE_REWRAP:
            raise RotationError(
                f"a rotation to {describe(state.target)} waits for the servers to restart on it "
                "and for 'openkms rootkey rotate --finish'"
            )
        if (state.source_check, state.target_check) != (source_check, target_check):
            raise RotationError(
                f"a rotation to {describe(state.target)} (check value {state.target_check}) is "
                "in progress: resume it with the same new root, or undo it with --abort"
            )
        resume = True
    else:
        stored = storage.get_meta(ROOT_CHECK_META)
        if stored is not None and stored != source_check:
            raise RotationError(
                f"the current root (check value {source_check}) is not the one this database "
                f"was written with ({stored})"
            )
        now = time.time()
        state = RotationState(
            PHASE_REWRAP, source_descriptor, target_descriptor, source_check, target_check, now
        )
        with storage.transaction():
            _save(storage, state)
            storage.set_meta(CURSOR_META, "")
        resume = False
    transform = _rewrap_transform(source, target)
    report = _run_pass(
        storage,
        transform,
        name="rewrap",
        batch_size=batch_size,
        resume=resume,
        progress=progress,
        fail_after=fail_after,
    )
    _merge(state, PHASE_REWRAP, report)
    # Servers on the old root keep writing old-only secrets: sweep until a pass finds none.
    for _ in range(MAX_SWEEPS):
        sweep = _run_pass(
            storage, transform, name="sweep", batch_size=batch_size, resume=False, progress=None
        )
        _merge(state, PHASE_REWRAP, sweep)
        if sweep.changed == 0:
            break
    with storage.transaction():
        state.phase = PHASE_RESTART
        _save(storage, state)
        storage.set_meta(CURSOR_META, "")
        storage.set_meta(ROOT_CHECK_META, target_check)
    return state


def finish(
    storage: Any,
    target: RootOfTrust,
    source: RootOfTrust | None,
    *,
    batch_size: int = 100,
    progress: Progress | None = None,
    fail_after: int | None = None,
) -> RotationState:
    """Pass 2, once every server runs on the new root: every secret wrapped by ``target`` only.
    Without ``source`` the secrets only it could read are reported and left as they are."""
    state = load_state(storage)
    if state is None or state.phase != PHASE_RESTART:
        raise RotationError("no rotation waits to be finished")
    if target.check_value() != state.target_check:
        raise RotationError(
            f"the new root given (check value {target.check_value()}) is not the rotation's "
            f"({state.target_check})"
        )
    if source is not None and source.check_value() != state.source_check:
        raise RotationError(
            f"the old root given (check value {source.check_value()}) is not the rotation's "
            f"({state.source_check})"
        )
    resume = bool(storage.get_meta(CURSOR_META))
    report = _run_pass(
        storage,
        _finish_transform(source, target),
        name="finish",
        batch_size=batch_size,
        resume=resume,
        progress=progress,
        fail_after=fail_after,
    )
    _merge(state, PHASE_DONE, report)
    with storage.transaction():
        state.phase = PHASE_DONE
        _save(storage, state)
        storage.set_meta(CURSOR_META, "")
    return state


def abort(
    storage: Any,
    source: RootOfTrust,
    *,
    batch_size: int = 100,
    progress: Progress | None = None,
) -> RotationState:
    """Undoes pass 1 (only before its end): every dual blob back to its old-root half."""
    state = load_state(storage)
    if state is None or state.phase != PHASE_REWRAP:
        raise RotationError("no rotation can be aborted (only one still in its first pass)")
    if source.check_value() != state.source_check:
        raise RotationError("the root given is not the one the rotation started from")
    report = _run_pass(
        storage,
        _abort_transform(state.source_check),
        name="abort",
        batch_size=batch_size,
        resume=False,
        progress=progress,
    )
    _merge(state, PHASE_ABORTED, report)
    with storage.transaction():
        state.phase = PHASE_ABORTED
        _save(storage, state)
        storage.set_meta(CURSOR_META, "")
    return state


def scan(storage: Any, root: RootOfTrust) -> dict[str, int]:
    """How many secrets ``root`` reads, how many are dual blobs, how many it cannot read."""
    counts = {"secrets": 0, "dual": 0, "unreadable": 0}
    for item in enumerate_items(storage):
        record = _load(storage, item)
        if record is None:
            continue
        counts["secrets"] += 1
        if parse_dual(record.blob) is not None:
            counts["dual"] += 1
        try:
            DualRoot(root).unwrap(record.blob, record.aad)
        except RootOfTrustError:
            counts["unreadable"] += 1
    return counts
