"""Settings: the only module that reads the environment and configuration files.

The command line builds a ``Settings`` and hands it to each server worker process as JSON in
``OPENKMS_SETTINGS_JSON``; everything else takes a ``Settings`` as a parameter.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

ENV_SETTINGS = "OPENKMS_SETTINGS_JSON"
ENV_ROOT_KEY = "OPENKMS_ROOT_KEY"
ENV_ROOT_KEY_PASSPHRASE = "OPENKMS_ROOT_KEY_PASSPHRASE"  # noqa: S105 - a variable name


class SettingsError(ValueError):
    """A setting is invalid; the message names it."""


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: str = "./.openkms"
    host: str = "127.0.0.1"
    port: int = 4566
    workers: int = 1
    dev: bool = False
    accept_any_credentials: bool = False
    account_id: str = "000000000000"
    partition: str = "aws"
    database: str | None = None  # default: <data_dir>/openkms.db
    root_key_file: str | None = None  # default: <data_dir>/root.key
    max_body_bytes: int = 1_048_576
    max_clock_skew_seconds: int = 900
    cache_ttl_seconds: float = 1.0
    scheduler_interval_seconds: float = 60.0
    usage_flush_seconds: float = 1.0
    log_level: str = "warning"
    # Audit log: a file (default <data_dir>/audit.log; "" to turn it off) and/or stdout.
    audit_log: str | None = None
    audit_stdout: bool = False
    audit_fail_closed: bool = True
    audit_max_bytes: int = 64 * 1024 * 1024
    audit_backups: int = 10

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    @property
    def database_path(self) -> str:
        return self.database or str(self.data_path / "openkms.db")

    @property
    def root_key_path(self) -> Path:
        return Path(self.root_key_file) if self.root_key_file else self.data_path / "root.key"

    @property
    def audit_path(self) -> str:
        return str(self.data_path / "audit.log") if self.audit_log is None else self.audit_log

    def validate(self) -> Settings:
        if not 0 < self.port < 65536 and self.port != 0:
            raise SettingsError(f"port: {self.port} is not a TCP port")
        if self.workers < 1:
            raise SettingsError("workers: must be at least 1")
        if len(self.account_id) != 12 or not self.account_id.isdigit():
            raise SettingsError("account_id: must be 12 digits")
        if self.accept_any_credentials and not is_loopback(self.host):
            raise SettingsError(
                "accept_any_credentials: refused unless the server binds to a loopback address"
            )
        if self.audit_max_bytes < 4096:
            raise SettingsError("audit_max_bytes: must be at least 4096")
        if self.max_body_bytes < 1024:
            raise SettingsError("max_body_bytes: must be at least 1024")
        return self

    def to_json(self) -> str:
        return orjson.dumps(dataclasses.asdict(self)).decode()

    @classmethod
    def from_json(cls, text: str) -> Settings:
        data: dict[str, Any] = orjson.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise SettingsError(f"unknown settings: {', '.join(sorted(unknown))}")
        return cls(**data).validate()

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def settings_from_env() -> Settings:
    text = os.environ.get(ENV_SETTINGS)
    return Settings().validate() if text is None else Settings.from_json(text)


def root_key_from_env() -> str | None:
    return os.environ.get(ENV_ROOT_KEY)


def root_key_passphrase_from_env() -> str | None:
    return os.environ.get(ENV_ROOT_KEY_PASSPHRASE)
