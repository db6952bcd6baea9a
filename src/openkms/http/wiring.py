"""``build_runtime``: the single place where clock, storage, root of trust and access control
are built from Settings and wired together."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from openkms.audit import AuditSink, FileAuditSink, MultiSink, StdoutAuditSink
from openkms.clock import Clock, SystemClock
from openkms.config import (
    Settings,
    local_endpoint,
    pkcs11_pin,
    root_key_from_env,
    root_key_passphrase_from_env,
    with_root_env,
)
from openkms.private_files import private_directory, private_file, tighten
from openkms.rootoftrust.base import RootOfTrust
from openkms.rootoftrust.file import open_or_create, root_from_env_value
from openkms.service.runtime import Runtime, RuntimeSettings
from openkms.storage.base import Storage
from openkms.storage.sqlite import SqliteStorage

ROOT_CHECK_META = "root_key_check_value"
log = logging.getLogger("openkms.wiring")


class RootKeyMismatch(RuntimeError):
    """The database was written under another root key."""


def open_base_root(settings: Settings) -> RootOfTrust:
    """The root of trust the settings name (file, OPENKMS_ROOT_KEY, or a PKCS#11 token)."""
    settings = with_root_env(settings).validate_root_of_trust()
    if settings.root_of_trust == "pkcs11":
        from openkms.rootoftrust.pkcs11 import Pkcs11Root

        assert settings.pkcs11_module and settings.pkcs11_token_label
        assert settings.pkcs11_key_label
        return Pkcs11Root(
            settings.pkcs11_module,
            settings.pkcs11_token_label,
            settings.pkcs11_key_label,
            pkcs11_pin(settings),
            create=settings.pkcs11_create_key,
        )
    from_env = root_key_from_env()
    if from_env:
        return root_from_env_value(from_env)
    return open_or_create(settings.root_key_path, root_key_passphrase_from_env())


def open_root(settings: Settings) -> RootOfTrust:
    """The server's root of trust: the configured one (or a sealed one, with ``sealed``) behind
    a ``DualRoot``, which reads the blobs a root-key rotation writes and, while a rotation waits
    to be finished, the previous root too (docs/hsm.md)."""
    from openkms.rootoftrust.rotate import ROTATION_META, open_described, server_root

    settings = with_root_env(settings).validate_root_of_trust()
    storage = open_storage(settings)
    try:
        stored_check = storage.get_meta(ROOT_CHECK_META)
        rotation = storage.get_meta(ROTATION_META)
    finally:
        storage.close()
    current: RootOfTrust
    if settings.sealed:
        from openkms.rootoftrust.shamir import SealedRoot

        current = SealedRoot(stored_check)
    else:
        current = open_base_root(settings)
    return server_root(
        current,
        rotation,
        lambda d: open_described(
            d, passphrase=root_key_passphrase_from_env(), pin=pkcs11_pin(settings)
        ),
        warn=log.warning,
    )


def open_storage(settings: Settings) -> Storage:
    """PostgreSQL for a ``postgresql://`` or ``postgres://`` database setting (several nodes
    share it), else SQLite at the database path (default <data_dir>/openkms.db)."""
    private_directory(settings.data_path)
    if settings.database and settings.database.startswith(("postgresql://", "postgres://")):
        # Imported here: psycopg is needed only by those who choose PostgreSQL.
        from openkms.storage.postgres import PostgresStorage

        return PostgresStorage(settings.database)
    database = Path(settings.database_path)
    if str(database) != ":memory:":
        database.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # SQLite gives -wal and -shm the database file's mode: create it 0600 first.
        private_file(database)
    storage = SqliteStorage(database)
    for suffix in ("-wal", "-shm", "-journal"):
        tighten(database.with_name(database.name + suffix), 0o600)
    return storage


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
        if path.parent == settings.data_path:
            private_directory(path.parent)
        else:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        sinks.append(
            FileAuditSink(
                path,
                max_bytes=settings.audit_max_bytes,
                backups=settings.audit_backups,
                fail_closed=settings.audit_fail_closed,
                flush_interval=settings.audit_flush_seconds,
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
            partition=settings.partition,
            cache_ttl_seconds=settings.cache_ttl_seconds,
            rotation_functions=settings.rotation_functions,
            local_endpoint=local_endpoint(settings),
        ),
    )
    return Wired(settings, storage, root, runtime)
