"""The default root of trust: a 256-bit key in a file (mode 0600), optionally sealed by a
passphrase (Argon2id), or given through the environment.

File formats (first line decides):
- plain:  ``openkms-root-key v1 plain <base64 key>``
- sealed: ``openkms-root-key v1 argon2id <base64 salt> <base64 nonce> <base64 AES-GCM(key)>``
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from openkms.rootoftrust.aesgcm_root import AesGcmRoot

_MAGIC = "openkms-root-key v1"
# RFC 9106's second recommended option (64 MiB memory), cheap enough for a server start.
_ARGON_ITERATIONS = 3
_ARGON_LANES = 4
_ARGON_MEMORY_KIB = 64 * 1024


class RootKeyFileError(Exception):
    """The root key file is missing, malformed, or the passphrase is wrong."""


class FileRoot(AesGcmRoot):
    name = "file"


def _derive(passphrase: str, salt: bytes) -> bytes:
    kdf = Argon2id(
        salt=salt,
        length=32,
        iterations=_ARGON_ITERATIONS,
        lanes=_ARGON_LANES,
        memory_cost=_ARGON_MEMORY_KIB,
    )
    return kdf.derive(passphrase.encode("utf-8"))


def _encode(key: bytes, passphrase: str | None) -> str:
    if passphrase is None:
        return f"{_MAGIC} plain {base64.b64encode(key).decode()}\n"
    salt = os.urandom(16)
    nonce = os.urandom(12)
    sealed = AESGCM(_derive(passphrase, salt)).encrypt(nonce, key, _MAGIC.encode())
    parts = (base64.b64encode(p).decode() for p in (salt, nonce, sealed))
    return f"{_MAGIC} argon2id {' '.join(parts)}\n"


def _decode(text: str, passphrase: str | None) -> bytes:
    fields = text.strip().split(" ")
    if len(fields) < 4 or " ".join(fields[:2]) != _MAGIC:
        raise RootKeyFileError("the root key file is not an openkms root key")
    try:
        if fields[2] == "plain" and len(fields) == 4:
            key = base64.b64decode(fields[3], validate=True)
        elif fields[2] == "argon2id" and len(fields) == 6:
            if passphrase is None:
                raise RootKeyFileError(
                    "the root key is sealed with a passphrase; set OPENKMS_ROOT_KEY_PASSPHRASE"
                )
            salt, nonce, sealed = (base64.b64decode(f, validate=True) for f in fields[3:])
            try:
                key = AESGCM(_derive(passphrase, salt)).decrypt(nonce, sealed, _MAGIC.encode())
            except InvalidTag as exc:
                raise RootKeyFileError("wrong passphrase for the root key file") from exc
        else:
            raise RootKeyFileError("the root key file has an unknown format")
    except binascii.Error as exc:
        raise RootKeyFileError("the root key file is damaged") from exc
    if len(key) != 32:
        raise RootKeyFileError("the root key file does not hold a 256-bit key")
    return key


def create_root_key_file(path: Path, passphrase: str | None = None) -> None:
    """Write a new random root key; refuses to overwrite an existing file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    key = os.urandom(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(_encode(key, passphrase))
        handle.flush()
        os.fsync(handle.fileno())


def load_root_key_file(path: Path, passphrase: str | None = None) -> FileRoot:
    try:
        text = path.read_text("ascii")
    except FileNotFoundError as exc:
        raise RootKeyFileError(f"root key file {path} does not exist") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise RootKeyFileError(f"root key file {path} cannot be read") from exc
    mode = path.stat().st_mode & 0o077
    if mode:
        raise RootKeyFileError(f"root key file {path} must not be readable by group or others")
    return FileRoot(_decode(text, passphrase))


def root_from_env_value(value: str) -> FileRoot:
    """``OPENKMS_ROOT_KEY``: the base64 of 32 bytes."""
    try:
        key = base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise RootKeyFileError("OPENKMS_ROOT_KEY is not valid base64") from exc
    if len(key) != 32:
        raise RootKeyFileError("OPENKMS_ROOT_KEY must be the base64 of 32 bytes")
    return FileRoot(key)


def open_or_create(path: Path, passphrase: str | None = None) -> FileRoot:
    if not path.exists():
        create_root_key_file(path, passphrase)
    return load_root_key_file(path, passphrase)
