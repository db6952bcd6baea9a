"""Development TLS certificates: a local CA and a server certificate it signs.

``make_dev_certs(out_dir, hosts)`` writes ``ca.pem`` and ``ca-key.pem`` (the CA, made once
and reused on later runs so that clients which trust it keep working) and ``server.pem`` and
``server-key.pem`` (made anew on every run, with a subjectAltName for every host). Keys are
ECDSA P-256, written with mode 0600; certificates follow the profile strict verifiers want
(RFC 5280: critical basicConstraints and keyUsage, subject/authority key identifiers,
serverAuth extended key usage), so Python's ``ssl`` (VERIFY_X509_STRICT), OpenSSL, boto3 and
the AWS CLI accept them. For development only: the CA key can sign a certificate for any
name, so keep it private and never install the CA system-wide on a shared machine.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["DEFAULT_HOSTS", "DevCerts", "make_dev_certs", "parse_hosts"]

DEFAULT_HOSTS: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")
CA_CERT = "ca.pem"
CA_KEY = "ca-key.pem"
SERVER_CERT = "server.pem"
SERVER_KEY = "server-key.pem"
CA_DAYS = 3650
# Apple platforms and browsers refuse server certificates valid for more than 825 days.
SERVER_DAYS = 825


@dataclass(frozen=True, slots=True)
class DevCerts:
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    hosts: tuple[str, ...]
    ca_created: bool


def parse_hosts(text: str) -> tuple[str, ...]:
    """``"localhost,127.0.0.1"`` → the names, in order, without repeats; ValueError if a name
    is neither an IP address nor a DNS name."""
    hosts: list[str] = []
    for raw in text.split(","):
        host = raw.strip()
        if not host:
            continue
        _general_name(host)  # validates
        if host not in hosts:
            hosts.append(host)
    if not hosts:
        raise ValueError("--hosts: give at least one host name or IP address")
    return tuple(hosts)


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        pass
    labels = host.rstrip(".").split(".")
    ok = all(
        0 < len(label) <= 63
        and (label.replace("-", "").isalnum() or (i == 0 and label == "*"))
        and label.isascii()
        and not label.startswith("-")
        and not label.endswith("-")
        for i, label in enumerate(labels)
    )
    if not ok or len(host) > 253:
        raise ValueError(f"--hosts: {host!r} is neither an IP address nor a DNS name")
    return x509.DNSName(host.lower())


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
        os.write(fd, data)
    finally:
        os.close(fd)


def _write_public(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def _make_ca(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "openkms development"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    now = _now()
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _make_server(
    ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, hosts: Sequence[str]
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    not_after = min(now + datetime.timedelta(days=SERVER_DAYS), ca_cert.not_valid_after_utc)
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "openkms development"),
                    x509.NameAttribute(NameOID.COMMON_NAME, hosts[0][:64]),
                ]
            )
        )
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([_general_name(h) for h in hosts]), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def _load_ca(directory: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate] | None:
    cert_path, key_path = directory / CA_CERT, directory / CA_KEY
    if not cert_path.exists() and not key_path.exists():
        return None
    if not (cert_path.is_file() and key_path.is_file()):
        raise ValueError(
            f"{directory}: found only one of {CA_CERT} and {CA_KEY}; remove it or use --force"
        )
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{key_path}: not an EC private key; use --force to make a new CA")
    if cert.public_key() != key.public_key():
        raise ValueError(f"{key_path} does not belong to {cert_path}; use --force")
    if cert.not_valid_after_utc <= _now() + datetime.timedelta(days=1):
        raise ValueError(f"{cert_path} has expired; use --force to make a new CA")
    return key, cert


def make_dev_certs(
    out_dir: str | os.PathLike[str],
    hosts: Iterable[str] = DEFAULT_HOSTS,
    *,
    force: bool = False,
) -> DevCerts:
    """Writes the CA (unless one is there already and ``force`` is false) and a new server
    certificate for ``hosts`` into ``out_dir`` (created with mode 0700)."""
    names = tuple(hosts)
    if not names:
        raise ValueError("hosts: give at least one host name or IP address")
    for host in names:
        _general_name(host)
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    loaded = None if force else _load_ca(directory)
    ca_created = loaded is None
    if loaded is None:
        ca_key, ca_cert = _make_ca(f"openkms development CA ({os.uname().nodename})"[:64])
        _write_private(directory / CA_KEY, _key_pem(ca_key))
        _write_public(directory / CA_CERT, ca_cert.public_bytes(serialization.Encoding.PEM))
    else:
        ca_key, ca_cert = loaded
    key, cert = _make_server(ca_key, ca_cert, names)
    _write_private(directory / SERVER_KEY, _key_pem(key))
    _write_public(directory / SERVER_CERT, cert.public_bytes(serialization.Encoding.PEM))
    return DevCerts(
        ca_cert=directory / CA_CERT,
        ca_key=directory / CA_KEY,
        server_cert=directory / SERVER_CERT,
        server_key=directory / SERVER_KEY,
        hosts=names,
        ca_created=ca_created,
    )
