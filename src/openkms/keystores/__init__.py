"""Custom key stores' back ends: ``cloudhsm`` (a PKCS#11 token of the operator's, standing in for
an AWS CloudHSM cluster) and ``xks`` (a client of AWS's External Key Store proxy API).

The operator's configuration of them (``KeyStoreSettings``) comes from two settings:
``custom_key_store_clusters`` (a TOML file mapping each CloudHsmClusterId to a PKCS#11 module
and token) and ``xks_proxy_ca_file`` (the CA bundle that XKS proxies' certificates must chain
to; the system's trust store when unset). docs/custom-key-stores.md describes both.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Protocol

# The cluster file is parsed with the other settings (config.py reads every file).
from openkms.config import ClusterConfig, Settings, read_clusters_file, settings_from_env

DEFAULT_XKS_TIMEOUT_SECONDS = 5.0


class StoreConnectionError(Exception):
    """The store cannot be reached or refused us: ``code`` is AWS's ConnectionErrorCode."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class KeyStoreSettings:
    clusters: dict[str, ClusterConfig] = field(default_factory=dict)
    xks_ca_file: str | None = None
    xks_timeout_seconds: float = DEFAULT_XKS_TIMEOUT_SECONDS


def settings_for(settings: Settings) -> KeyStoreSettings:
    clusters = (
        read_clusters_file(settings.custom_key_store_clusters)
        if settings.custom_key_store_clusters
        else {}
    )
    return KeyStoreSettings(clusters=clusters, xks_ca_file=settings.xks_proxy_ca_file)


_EXTENSION = "keystore_settings"
_LOCK = threading.Lock()


class ExtensibleRuntime(Protocol):
    """A Runtime: ``extensions`` holds state that optional subsystems keep per runtime."""

    extensions: dict[str, object]


def keystore_settings(owner: ExtensibleRuntime) -> KeyStoreSettings:
    """The key store settings of ``owner`` (a Runtime), read from this process's settings on
    first use (the server hands them to each worker in OPENKMS_SETTINGS_JSON)."""
    found = owner.extensions.get(_EXTENSION)
    if isinstance(found, KeyStoreSettings):
        return found
    with _LOCK:
        found = owner.extensions.get(_EXTENSION)
        if not isinstance(found, KeyStoreSettings):
            found = settings_for(settings_from_env())
            owner.extensions[_EXTENSION] = found
        return found


def attach_keystore_settings(owner: ExtensibleRuntime, settings: KeyStoreSettings) -> None:
    """For tests and embedders: use ``settings`` for ``owner`` instead of the environment's."""
    owner.extensions[_EXTENSION] = settings
