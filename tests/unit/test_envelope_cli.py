"""``openkms encrypt`` / ``openkms decrypt`` in-process, over the in-memory KMS."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from openkms.cli import envelope as cli
from openkms.cli.main import main as openkms_main
from openkms.envelope import api
from tests.unit.test_envelope_support import FakeKMS


@pytest.fixture
def kms(monkeypatch: pytest.MonkeyPatch) -> FakeKMS:
    fake = FakeKMS()
    monkeypatch.setattr(api, "default_client_supplier", lambda *a, **k: lambda _region: fake)
    return fake


def run(*argv: str) -> int:
    return openkms_main(list(argv))


def test_file_round_trip_with_default_names(kms: FakeKMS, tmp_path: Path) -> None:
    key = kms.create_key()
    source = tmp_path / "report.pdf"
    source.write_bytes(os.urandom(5000))
    assert run("encrypt", "--key", key, "-c", "a=b", "--quiet", str(source)) == 0
    encrypted = tmp_path / "report.pdf.encrypted"
    assert encrypted.exists()
    original = source.read_bytes()
    source.unlink()
    assert run("decrypt", "--require-context", "a=b", str(encrypted)) == 0
    assert source.read_bytes() == original
    assert (source.stat().st_mode & 0o777) == 0o600  # decrypted files are private


def test_output_directory_and_no_overwrite(kms: FakeKMS, tmp_path: Path) -> None:
    key = kms.create_key()
    source = tmp_path / "a.txt"
    source.write_bytes(b"alpha")
    out = tmp_path / "out"
    out.mkdir()
    assert run("encrypt", "--key", key, "-o", str(out), str(source)) == 0
    assert (out / "a.txt.encrypted").exists()
    assert run("encrypt", "--key", key, "--no-overwrite", "-o", str(out), str(source)) == 2
    assert run("decrypt", "-o", str(tmp_path / "x"), str(out / "a.txt.encrypted")) == 0
    assert (tmp_path / "x").read_bytes() == b"alpha"


def test_directory_in_place(kms: FakeKMS, tmp_path: Path, capsys: Any) -> None:
    key = kms.create_key()
    (tmp_path / "d" / "e").mkdir(parents=True)
    for name in ("one", "e/two", "e/three"):
        (tmp_path / "d" / name).write_bytes(name.encode())
    assert run("encrypt", "--key", key, "--cache-max-age", "30", str(tmp_path / "d")) == 0
    assert kms.calls["GenerateDataKey"] == 1  # cached across the three files
    assert "3 file(s)" in capsys.readouterr().err
    # A second run skips what it wrote.
    assert run("encrypt", "--key", key, "--quiet", str(tmp_path / "d")) == 0
    assert not list((tmp_path / "d").rglob("*.encrypted.encrypted"))
    for name in ("one", "e/two", "e/three"):
        (tmp_path / "d" / name).unlink()
    assert run("decrypt", "--quiet", str(tmp_path / "d")) == 0
    assert (tmp_path / "d" / "e" / "two").read_bytes() == b"e/two"


def test_progress_bar(kms: FakeKMS, tmp_path: Path, capsys: Any) -> None:
    key = kms.create_key()
    source = tmp_path / "big"
    source.write_bytes(os.urandom(3 * 1024 * 1024))
    assert run("encrypt", "--key", key, "--progress", "always", str(source)) == 0
    err = capsys.readouterr().err
    assert "encrypt" in err and "MiB" in err
    assert run("encrypt", "--key", key, "--progress", "always", "--quiet", str(source)) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["encrypt", "--key", "k", "-c", "aws-crypto-x=1", "FILE"], "reserved"),
        (["encrypt", "--key", "k", "--unsigned", "--algorithm", "0478", "FILE"], "not both"),
        (["encrypt", "--key", "k", "--algorithm", "nope", "FILE"], "unknown algorithm"),
        (["encrypt", "--key", "k", "--cache-max-messages", "3", "FILE"], "need --cache-max-age"),
        (["encrypt", "--key", "k", "MISSING"], "no such file"),
        (["decrypt", "-o", "-", "DIR"], "cannot be written to stdout"),
        (
            ["encrypt", "--key", "k", "--algorithm", "0378", "FILE"],
            "requires a committing suite",
        ),
    ],
)
def test_usage_errors(
    kms: FakeKMS, tmp_path: Path, capsys: Any, argv: list[str], message: str
) -> None:
    (tmp_path / "FILE").write_bytes(b"x")
    (tmp_path / "DIR").mkdir()
    (tmp_path / "DIR" / "f.encrypted").write_bytes(b"x")
    argv = [str(tmp_path / a) if a in ("FILE", "DIR", "MISSING") else a for a in argv]
    assert run(*argv) == 2
    assert message in capsys.readouterr().err


def test_exit_codes(kms: FakeKMS, tmp_path: Path, capsys: Any) -> None:
    key = kms.create_key()
    source = tmp_path / "f"
    source.write_bytes(b"data")
    assert run("encrypt", "--key", key, str(source)) == 0
    encrypted = tmp_path / "f.encrypted"
    kms.denied.add(key)
    assert run("decrypt", "-o", str(tmp_path / "o"), str(encrypted)) == cli.EXIT_DENIED
    assert "permission denied" in capsys.readouterr().err
    assert run("encrypt", "--key", key, str(source)) == cli.EXIT_DENIED
    kms.denied.clear()
    assert run("encrypt", "--key", "alias/missing", str(source)) == cli.EXIT_KEY
    blob = bytearray(encrypted.read_bytes())
    blob[-30] ^= 1
    encrypted.write_bytes(bytes(blob))
    assert run("decrypt", "-o", str(tmp_path / "o"), str(encrypted)) == cli.EXIT_INVALID
    assert not (tmp_path / "o").exists()
    encrypted.write_bytes(b"hello, not a message")
    assert run("decrypt", "-o", str(tmp_path / "o"), str(encrypted)) == cli.EXIT_INVALID
    assert "invalid message" in capsys.readouterr().err


def test_sizes() -> None:
    assert cli._size("4096") == 4096
    assert cli._size("64K") == 65536
    assert cli._size("1MiB") == 1 << 20
    assert cli._size("1.5G") == 3 << 29
