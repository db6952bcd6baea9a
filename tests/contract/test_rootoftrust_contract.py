"""One contract, every root of trust."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from openkms.rootoftrust.base import RootOfTrust, RootOfTrustError
from openkms.rootoftrust.file import (
    RootKeyFileError,
    create_root_key_file,
    load_root_key_file,
    open_or_create,
    root_from_env_value,
)
from openkms.rootoftrust.memory import MemoryRoot


def _file_root(tmp: Path) -> RootOfTrust:
    return open_or_create(tmp / "root.key")


def _sealed_root(tmp: Path) -> RootOfTrust:
    create_root_key_file(tmp / "sealed.key", "correct horse")
    return load_root_key_file(tmp / "sealed.key", "correct horse")


def _pkcs11_root(tmp: Path) -> RootOfTrust:
    # SoftHSM2 in this process's private SOFTHSM2_CONF directory: a token of its own per test,
    # and in it a root key the token generates.
    from openkms.rootoftrust.pkcs11 import Pkcs11Root
    from tests.contract.softhsm import new_key_label, softhsm_for_process

    hsm = softhsm_for_process()
    token = hsm.init_token()
    return Pkcs11Root(hsm.module, token.label, new_key_label(), token.pin, create=True)


def _shamir_root(tmp: Path) -> RootOfTrust:
    from openkms.rootoftrust.shamir import SealedRoot, split_key

    key = os.urandom(32)
    root = SealedRoot()
    for share in split_key(key, 2, 3)[:2]:
        root.submit_share(share)
    return root


def _dual_root(tmp: Path) -> RootOfTrust:
    # What every server runs behind: the current root, plus the previous one mid-rotation.
    from openkms.rootoftrust.rotate import DualRoot

    return DualRoot(MemoryRoot(), MemoryRoot())


BACKENDS: dict[str, Callable[[Path], RootOfTrust]] = {
    "memory": lambda tmp: MemoryRoot(),
    "file": _file_root,
    "file-sealed": _sealed_root,
    "pkcs11": _pkcs11_root,
    "shamir-unsealed": _shamir_root,
    "rotation-dual": _dual_root,
}


@pytest.fixture(params=sorted(BACKENDS))
def root(request: pytest.FixtureRequest, tmp_path: Path) -> RootOfTrust:
    return BACKENDS[request.param](tmp_path)


def test_round_trip(root: RootOfTrust) -> None:
    secret = os.urandom(32)
    wrapped = root.wrap(secret, b"aad")
    assert secret not in wrapped
    assert root.unwrap(wrapped, b"aad") == secret


def test_wrong_aad_fails(root: RootOfTrust) -> None:
    wrapped = root.wrap(b"k" * 32, b"key-a")
    with pytest.raises(RootOfTrustError):
        root.unwrap(wrapped, b"key-b")


@pytest.mark.parametrize("position", [0, 1, 13, -1])
def test_tampering_fails(root: RootOfTrust, position: int) -> None:
    wrapped = bytearray(root.wrap(b"k" * 32, b"aad"))
    wrapped[position] ^= 1
    with pytest.raises(RootOfTrustError):
        root.unwrap(bytes(wrapped), b"aad")


def test_truncated_fails(root: RootOfTrust) -> None:
    with pytest.raises(RootOfTrustError):
        root.unwrap(root.wrap(b"k", b"aad")[:10], b"aad")


def test_another_root_cannot_unwrap(root: RootOfTrust) -> None:
    wrapped = root.wrap(b"k" * 32, b"aad")
    with pytest.raises(RootOfTrustError):
        MemoryRoot().unwrap(wrapped, b"aad")
    assert MemoryRoot().check_value() != root.check_value()


def test_repr_hides_the_key(root: RootOfTrust) -> None:
    assert "check_value" in repr(root) or "Root" in repr(root)


def test_file_is_private_and_stable(tmp_path: Path) -> None:
    path = tmp_path / "root.key"
    first = open_or_create(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert open_or_create(path).check_value() == first.check_value()


def test_file_refuses_group_readable(tmp_path: Path) -> None:
    path = tmp_path / "root.key"
    create_root_key_file(path)
    path.chmod(0o644)
    with pytest.raises(RootKeyFileError, match="group or others"):
        load_root_key_file(path)


def test_sealed_file_needs_the_passphrase(tmp_path: Path) -> None:
    path = tmp_path / "sealed.key"
    create_root_key_file(path, "pw")
    with pytest.raises(RootKeyFileError, match="passphrase"):
        load_root_key_file(path)
    with pytest.raises(RootKeyFileError, match="wrong passphrase"):
        load_root_key_file(path, "not it")
    assert b"openkms-root-key v1 argon2id" in path.read_bytes()


def test_create_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "root.key"
    create_root_key_file(path)
    with pytest.raises(FileExistsError):
        create_root_key_file(path)


def test_env_value() -> None:
    import base64

    key = os.urandom(32)
    assert root_from_env_value(base64.b64encode(key).decode()).check_value()
    with pytest.raises(RootKeyFileError):
        root_from_env_value("not base64!")
    with pytest.raises(RootKeyFileError):
        root_from_env_value(base64.b64encode(b"short").decode())
