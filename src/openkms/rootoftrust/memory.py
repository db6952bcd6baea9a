"""An ephemeral root of trust for tests: a random key that lives as long as the object."""

from __future__ import annotations

import os

from openkms.rootoftrust.aesgcm_root import AesGcmRoot


class MemoryRoot(AesGcmRoot):
    name = "memory"

    def __init__(self, root_key: bytes | None = None) -> None:
        super().__init__(root_key if root_key is not None else os.urandom(32))
