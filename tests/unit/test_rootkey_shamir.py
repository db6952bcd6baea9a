"""Sealing: the root key split into Shamir shares, a sealed root that answers 503 until k shares
are entered, the unseal endpoint's pure handler, and ``openkms rootkey split`` / ``unseal``."""

from __future__ import annotations

import base64
import itertools
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import orjson
import pytest

from openkms.config import Settings, SettingsError
from openkms.errors import ServiceUnavailableException
from openkms.rootoftrust.aesgcm_root import AesGcmRoot
from openkms.rootoftrust.base import RootOfTrustUnavailable
from openkms.rootoftrust.file import load_root_key_file, root_from_env_value
from openkms.rootoftrust.memory import MemoryRoot
from openkms.rootoftrust.rotate import DualRoot
from openkms.rootoftrust.shamir import (
    UNSEAL_PATH,
    SealedRoot,
    ShareError,
    check_value_of,
    combine_shares,
    find_sealed,
    handle_unseal,
    parse_share,
    split_key,
)


def test_any_k_shares_rebuild_the_key() -> None:
    key = os.urandom(32)
    shares = split_key(key, 3, 5)
    assert len(shares) == 5 and len({s.split(".")[3] for s in shares}) == 1
    for subset in itertools.combinations(shares, 3):
        assert combine_shares(list(subset)) == key
    for subset in itertools.combinations(shares, 4):
        assert combine_shares(list(subset)) == key
    with pytest.raises(ShareError, match="3 shares are needed"):
        combine_shares(shares[:2])
    assert key.hex() not in "".join(shares)


def test_fewer_than_k_shares_tell_nothing_about_the_key() -> None:
    # Two shares of a 3-of-5 split of key A are equally consistent with any other key: with the
    # same two share values, a third share can be found for every key (degree-2 polynomials).
    a = split_key(os.urandom(32), 3, 5)
    b = split_key(os.urandom(32), 3, 5)
    assert parse_share(a[0]).value != parse_share(b[0]).value


def test_shares_are_checked() -> None:
    key = os.urandom(32)
    shares = split_key(key, 2, 3)
    typo = shares[0][:-20] + ("0" if shares[0][-20] != "0" else "1") + shares[0][-19:]
    with pytest.raises(ShareError, match="mistyped"):
        parse_share(typo)
    with pytest.raises(ShareError, match="not an openkms key share"):
        parse_share("hello")
    other = split_key(key, 2, 3)
    with pytest.raises(ShareError, match="different splits"):
        combine_shares([shares[0], other[1]])
    for bad in (0, 1, 32):
        with pytest.raises(ValueError):
            split_key(key, bad, 3) if bad != 32 else split_key(os.urandom(bad + 1), 2, 3)
    with pytest.raises(ValueError):
        split_key(key, 4, 3)


def test_sealed_root_is_unavailable_until_unsealed() -> None:
    key = os.urandom(32)
    before = AesGcmRoot(key)
    blob = before.wrap(b"material", b"aad")
    shares = split_key(key, 3, 5)
    root = SealedRoot(before.check_value())
    assert root.sealed and not root.healthy()
    for call in (lambda: root.wrap(b"x", b"a"), lambda: root.unwrap(blob, b"aad")):
        with pytest.raises(RootOfTrustUnavailable) as caught:
            call()
        assert isinstance(caught.value, ServiceUnavailableException)
        assert caught.value.status == 503
    # The start-up check passes against the stored check value while sealed.
    assert root.check_value() == before.check_value()
    assert root.submit_share(shares[4]) == (1, 3)
    assert root.submit_share(shares[4]) == (1, 3)  # the same share again changes nothing
    assert root.submit_share(shares[1]) == (2, 3)
    assert root.sealed
    assert root.submit_share(shares[2]) == (3, 3)
    assert not root.sealed and root.healthy()
    assert root.unwrap(blob, b"aad") == b"material"
    assert before.unwrap(root.wrap(b"new", b"x"), b"x") == b"new"
    assert "material" not in repr(root) and key.hex() not in repr(vars(root))


def test_shares_of_another_key_are_refused() -> None:
    ours, theirs = os.urandom(32), os.urandom(32)
    root = SealedRoot(check_value_of(ours))
    with pytest.raises(ShareError, match="another root key"):
        root.submit_share(split_key(theirs, 2, 2)[0])
    # Without a stored check value, the shares' own check value still catches forged shares.
    forged = SealedRoot()
    good = split_key(ours, 2, 3)
    share = parse_share(good[1])
    tampered = type(share)(
        share.threshold, share.index, share.split_id, share.check, bytes(32)
    ).encode()
    forged.submit_share(good[0])
    with pytest.raises(ShareError, match="do not rebuild"):
        forged.submit_share(tampered)
    assert forged.sealed and forged.status()["progress"] == 0  # everything forgotten
    forged.submit_share(good[0])
    forged.submit_share(good[2])
    assert not forged.sealed


def test_concurrent_submissions() -> None:
    key = os.urandom(32)
    shares = split_key(key, 5, 8)
    root = SealedRoot(check_value_of(key))
    threads = [threading.Thread(target=root.submit_share, args=(s,)) for s in shares]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not root.sealed


# --- the endpoint's handler -----------------------------------------------------------------------
def test_handle_unseal() -> None:
    key = os.urandom(32)
    shares = split_key(key, 2, 3)
    sealed = SealedRoot(check_value_of(key))
    root = DualRoot(sealed)  # what open_root returns
    assert find_sealed(root) is sealed
    assert handle_unseal(root, b"") == (
        200,
        {"sealed": True, "progress": 0, "threshold": None},
    )
    assert handle_unseal(root, b"not json")[0] == 400
    assert handle_unseal(root, b"[1]")[0] == 400
    assert handle_unseal(root, b'{"share": 5}')[0] == 400
    status, doc = handle_unseal(root, b'{"share": "okms-share-v1.x"}')
    assert status == 400 and doc["__type"] == "InvalidShareException"
    status, doc = handle_unseal(root, orjson.dumps({"share": shares[0]}))
    assert (status, doc) == (200, {"sealed": True, "progress": 1, "threshold": 2})
    assert handle_unseal(root, b'{"reset": true}') == (
        200,
        {"sealed": True, "progress": 0, "threshold": None},
    )
    handle_unseal(root, orjson.dumps({"share": shares[0]}))
    status, doc = handle_unseal(root, orjson.dumps({"share": shares[2]}))
    assert (status, doc) == (200, {"sealed": False, "progress": 2, "threshold": 2})
    assert root.unwrap(AesGcmRoot(key).wrap(b"s", b"a"), b"a") == b"s"
    # A server that is not sealed has no unseal endpoint.
    assert handle_unseal(DualRoot(MemoryRoot()), b"{}")[0] == 404


# --- the command line and the wiring --------------------------------------------------------------
@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("OPENKMS_")]:
        monkeypatch.delenv(name)


def _cli(*args: str) -> int:
    from openkms.cli.main import main

    return main(list(args))


def test_split_the_file_root_key_and_start_sealed(
    tmp_path: Path, clean_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    from openkms.http.wiring import check_root, open_root, open_storage

    data = tmp_path / "data"
    assert _cli("accounts", "create", "--data-dir", str(data)) == 0
    capsys.readouterr()
    key_file = data / "root.key"
    original = load_root_key_file(key_file)
    argv = ("rootkey", "split", "--data-dir", str(data), "-k", "2", "-n", "3")
    assert _cli(*argv, "--delete-key-file") == 0
    out = capsys.readouterr()
    shares = out.out.split()
    assert len(shares) == 3 and all(s.startswith("okms-share-v1.2.") for s in shares)
    assert "deleted" in out.err and not key_file.exists()
    assert check_value_of(combine_shares(shares[1:])) == original.check_value()

    settings = Settings(data_dir=str(data), sealed=True)
    root = open_root(settings)
    storage = open_storage(settings)
    try:
        check_root(storage, root)  # a sealed server passes the start-up check
    finally:
        storage.close()
    assert not key_file.exists()  # and did not make a new root key file
    with pytest.raises(RootOfTrustUnavailable):
        root.wrap(b"x", b"y")
    assert handle_unseal(root, orjson.dumps({"share": shares[2]}))[0] == 200
    assert handle_unseal(root, orjson.dumps({"share": shares[0]}))[1]["sealed"] is False
    assert root.check_value() == original.check_value()
    assert _cli("rootkey", "status", "--data-dir", str(data)) == 0
    assert '"Threshold": 2' in capsys.readouterr().out


def test_split_refuses_another_key(
    tmp_path: Path,
    clean_env: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = tmp_path / "data"
    assert _cli("accounts", "create", "--data-dir", str(data)) == 0
    monkeypatch.setenv("OPENKMS_ROOT_KEY", base64.b64encode(os.urandom(32)).decode())
    capsys.readouterr()
    assert _cli("rootkey", "split", "--data-dir", str(data), "-k", "2", "-n", "2") == 2
    assert "is not this database's" in capsys.readouterr().err
    assert root_from_env_value(os.environ["OPENKMS_ROOT_KEY"])  # the key is untouched


def test_split_rejects_bad_thresholds(tmp_path: Path, clean_env: None) -> None:
    with pytest.raises(SettingsError):
        from openkms.cli.main import build_parser

        args = build_parser().parse_args(
            ["rootkey", "split", "--data-dir", str(tmp_path), "-k", "5", "-n", "3"]
        )
        args.func(args)


class _UnsealEndpoint:
    """A stand-in for the server's unseal route: the same pure handler behind http.server."""

    def __init__(self, root: SealedRoot) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                if self.path != UNSEAL_PATH:
                    self.send_error(404)
                    return
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                status, doc = handle_unseal(outer.root, body)
                payload = orjson.dumps(doc)
                self.send_response(status)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.root = root
        self.httpd = HTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"


@pytest.fixture
def endpoint() -> Iterator[_UnsealEndpoint]:
    key = os.urandom(32)
    server = _UnsealEndpoint(SealedRoot(check_value_of(key)))
    server.key = key  # type: ignore[attr-defined]
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()


def test_unseal_command(
    endpoint: _UnsealEndpoint, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    shares = split_key(endpoint.key, 2, 3)  # type: ignore[attr-defined]
    assert _cli("unseal", "--endpoint", endpoint.url, "--status") == 0
    assert '"sealed":true' in capsys.readouterr().out
    assert _cli("unseal", "--endpoint", endpoint.url, shares[0]) == 0
    assert '"progress":1' in capsys.readouterr().out
    assert _cli("unseal", "--endpoint", endpoint.url, "not-a-share") == 1
    assert "InvalidShareException" in capsys.readouterr().out
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(shares[1] + "\n"))
    assert _cli("unseal", "--endpoint", endpoint.url, "-") == 0  # from stdin: not in `ps`
    assert '"sealed":false' in capsys.readouterr().out
    assert not endpoint.root.sealed
    assert _cli("unseal", "--endpoint", "http://127.0.0.1:1", "--status") == 1
