"""Development TLS certificates: file modes, certificate profile, and a real TLS handshake."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from openkms.cli.tls import main as tls_main
from openkms.tlsdev import make_dev_certs, parse_hosts


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_files_and_modes(tmp_path: Path) -> None:
    out = tmp_path / "tls"
    certs = make_dev_certs(out, ["localhost", "127.0.0.1"])
    assert certs.ca_created
    assert mode(out) == 0o700
    assert mode(certs.ca_key) == 0o600
    assert mode(certs.server_key) == 0o600
    assert mode(certs.ca_cert) & 0o600 == 0o600
    assert b"PRIVATE KEY" in certs.server_key.read_bytes()
    assert b"PRIVATE KEY" not in certs.server_cert.read_bytes()


def test_certificate_profile(tmp_path: Path) -> None:
    certs = make_dev_certs(tmp_path, ["localhost", "127.0.0.1", "::1", "kms.test"])
    ca, server = load(certs.ca_cert), load(certs.server_cert)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).critical
    assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    assert not server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    eku = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost", "kms.test"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    assert server.issuer == ca.subject
    days = (server.not_valid_after_utc - server.not_valid_before_utc).days
    assert days <= 826


def test_the_chain_verifies_for_each_host(tmp_path: Path) -> None:
    from cryptography.x509.verification import PolicyBuilder, Store

    certs = make_dev_certs(tmp_path, ["localhost", "127.0.0.1"])
    store = Store([load(certs.ca_cert)])
    for name in (
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ):
        verifier = PolicyBuilder().store(store).build_server_verifier(name)
        chain = verifier.verify(load(certs.server_cert), [])
        assert chain[-1] == load(certs.ca_cert)


def _serve_once(context: ssl.SSLContext, listener: socket.socket) -> None:
    conn, _ = listener.accept()
    with conn:
        try:
            with context.wrap_socket(conn, server_side=True) as tls:
                tls.sendall(b"hello over tls")
        except (ssl.SSLError, OSError):
            pass


@pytest.mark.parametrize("server_name", ["localhost", "127.0.0.1"])
def test_real_tls_handshake_with_strict_verification(tmp_path: Path, server_name: str) -> None:
    certs = make_dev_certs(tmp_path, ["localhost", "127.0.0.1"])
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(certs.server_cert, certs.server_key)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        thread = threading.Thread(target=_serve_once, args=(server_ctx, listener), daemon=True)
        thread.start()
        client_ctx = ssl.create_default_context(cafile=str(certs.ca_cert))
        client_ctx.verify_flags |= ssl.VERIFY_X509_STRICT
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            client_ctx.wrap_socket(raw, server_hostname=server_name) as tls,
        ):
            assert tls.recv(64) == b"hello over tls"
        thread.join(timeout=10)


def test_a_name_not_in_the_certificate_is_refused(tmp_path: Path) -> None:
    certs = make_dev_certs(tmp_path, ["localhost"])
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(certs.server_cert, certs.server_key)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        thread = threading.Thread(target=_serve_once, args=(server_ctx, listener), daemon=True)
        thread.start()
        client_ctx = ssl.create_default_context(cafile=str(certs.ca_cert))
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            pytest.raises(ssl.SSLCertVerificationError),
        ):
            client_ctx.wrap_socket(raw, server_hostname="evil.example")
        thread.join(timeout=10)


def test_the_ca_is_reused_unless_forced(tmp_path: Path) -> None:
    first = make_dev_certs(tmp_path, ["localhost"])
    ca_bytes, server_bytes = first.ca_cert.read_bytes(), first.server_cert.read_bytes()
    second = make_dev_certs(tmp_path, ["localhost", "127.0.0.1"])
    assert not second.ca_created
    assert second.ca_cert.read_bytes() == ca_bytes  # clients that trust it keep working
    assert second.server_cert.read_bytes() != server_bytes
    assert load(second.server_cert).issuer == load(second.ca_cert).subject
    third = make_dev_certs(tmp_path, ["localhost"], force=True)
    assert third.ca_created and third.ca_cert.read_bytes() != ca_bytes


def test_key_files_are_made_private_even_if_they_existed(tmp_path: Path) -> None:
    key = tmp_path / "server-key.pem"
    key.write_text("old")
    key.chmod(0o644)
    make_dev_certs(tmp_path, ["localhost"])
    assert mode(key) == 0o600


def test_a_lone_ca_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("x")
    with pytest.raises(ValueError, match="only one of"):
        make_dev_certs(tmp_path, ["localhost"])


@pytest.mark.parametrize("hosts", ["", "bad host", "-x.example", "a..b", "exa_mple.com"])
def test_invalid_hosts(hosts: str) -> None:
    with pytest.raises(ValueError, match="--hosts"):
        parse_hosts(hosts)


def test_parse_hosts() -> None:
    assert parse_hosts(" localhost, 127.0.0.1,localhost,::1 ") == ("localhost", "127.0.0.1", "::1")


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "tls"
    assert tls_main(["tls", "dev-cert", "--out", str(out), "--hosts", "localhost,127.0.0.1"]) == 0
    text = capsys.readouterr().out
    assert f"--tls-cert {out / 'server.pem'} --tls-key {out / 'server-key.pem'}" in text
    assert f"AWS_CA_BUNDLE={(out / 'ca.pem').resolve()}" in text
    assert "AWS_ENDPOINT_URL_KMS=https://localhost:4566" in text
    assert tls_main(["tls", "dev-cert", "--out", str(out), "--hosts", "bad host"]) == 2
    assert "--hosts" in capsys.readouterr().err
