"""``build_runtime``: the single place where clock, storage, root of trust and access control
are built from Settings and wired together."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from openkms.audit import AuditSink, FileAuditSink, MultiSink, StdoutAuditSink
from openkms.clock import Clock, SystemClock
from openkms.config import Settings, root_key_from_env, root_key_passphrase_from_env
from openkms.rootoftrust.base import RootOfTrust
from openkms.rootoftrust.file import open_or_create, root_from_env_value
from openkms.service.runtime import Runtime, RuntimeSettings
from openkms.storage.base import Storage
from openkms.storage.sqlite import SqliteStorage

ROOT_CHECK_META = "root_key_check_value"


class RootKeyMismatch(RuntimeError):
    """The database was written under another root key."""


def open_root(settings: Settings) -> RootOfTrust:
    from_env = root_key_from_env()
    if from_env:
        return root_from_env_value(from_env)
    return open_or_create(settings.root_key_path, root_key_passphrase_from_env())


def open_storage(settings: Settings) -> Storage:
    settings.data_path.mkdir(parents=True, exist_ok=True)
    return SqliteStorage(settings.database_path)


def check_root(storage: Storage, root: RootOfTrust) -> None:
    stored = storage.get_meta(ROOT_CHECK_META)
    if stored is None:
        storage.set_meta(ROOT_CHECK_META, root.check_value())
    elif stored != root.check_value():
        raise RootKeyMismatch(
            "the root key does not match the one this database was written with "
            f"(check value {root.check_value()}, expected {stored})"
        )


def open_audit_sink(settings: Settings) -> AuditSink | None:
    """The audit sinks the settings ask for; each worker process opens its own file."""
    sinks: list[AuditSink] = []
    if settings.audit_path:
        path = Path(settings.audit_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        sinks.append(
            FileAuditSink(
                path,
                max_bytes=settings.audit_max_bytes,
                backups=settings.audit_backups,
                fail_closed=settings.audit_fail_closed,
            )
        )
    if settings.audit_stdout:
        sinks.append(StdoutAuditSink(fail_closed=settings.audit_fail_closed))
    if not sinks:
        return None
    return sinks[0] if len(sinks) == 1 else MultiSink(sinks)


@dataclass(frozen=True, slots=True)
class Wired:
    settings: Settings
    storage: Storage
    root: RootOfTrust
    runtime: Runtime


def build_runtime(settings: Settings, clock: Clock | None = None) -> Wired:
    storage = open_storage(settings)
    root = open_root(settings)
    check_root(storage, root)
    runtime = Runtime(
        storage,
        root,
        clock or SystemClock(),
        settings=RuntimeSettings(
            partition=settings.partition, cache_ttl_seconds=settings.cache_ttl_seconds
        ),
    )
    return Wired(settings, storage, root, runtime)
