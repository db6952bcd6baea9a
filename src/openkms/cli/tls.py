"""``openkms tls dev-cert``: a local CA and a server certificate for development HTTPS."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from typing import Any

from openkms.tlsdev import DEFAULT_HOSTS, make_dev_certs, parse_hosts

__all__ = ["main", "register"]

DEFAULT_OUT = ".openkms/tls"


def _endpoint_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def cmd_dev_cert(args: argparse.Namespace) -> int:
    try:
        hosts = parse_hosts(args.hosts)
        certs = make_dev_certs(args.out, hosts, force=args.force)
    except (ValueError, OSError) as exc:
        print(f"openkms: {exc}", file=sys.stderr)
        return 2
    out = sys.stdout
    what = "Created" if certs.ca_created else "Reused"
    out.write(f"{what} the development CA: {certs.ca_cert} (key {certs.ca_key}, mode 0600)\n")
    out.write(
        f"Server certificate for {', '.join(certs.hosts)}: {certs.server_cert} "
        f"(key {certs.server_key}, mode 0600)\n\n"
    )
    q = shlex.quote
    out.write("Serve over HTTPS:\n\n")
    out.write(
        f"  openkms serve --tls-cert {q(str(certs.server_cert))} "
        f"--tls-key {q(str(certs.server_key))}\n\n"
    )
    out.write("Make boto3, the AWS SDKs and the AWS CLI trust the CA:\n\n")
    out.write(f"  export AWS_CA_BUNDLE={q(str(certs.ca_cert.resolve()))}\n")
    out.write(f"  export AWS_ENDPOINT_URL_KMS=https://{_endpoint_host(certs.hosts[0])}:4566\n\n")
    out.write(
        "Keep ca-key.pem private: it can sign a certificate for any name. Run this again to "
        "renew the server certificate (the CA is reused; --force makes a new one).\n"
    )
    return 0


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Adds ``tls dev-cert`` to ``openkms``'s subcommands."""
    tls: argparse.ArgumentParser = subparsers.add_parser("tls", help="TLS helpers")
    sub = tls.add_subparsers(dest="tls_command", required=True)
    dev = sub.add_parser(
        "dev-cert",
        help="make a local CA and a server certificate for development HTTPS",
        description=(
            "Writes ca.pem, ca-key.pem, server.pem and server-key.pem (keys mode 0600) into "
            "--out. An existing CA there is reused, so clients that trust it keep working."
        ),
    )
    dev.add_argument("--out", default=DEFAULT_OUT, help=f"directory (default {DEFAULT_OUT})")
    dev.add_argument(
        "--hosts",
        default=",".join(DEFAULT_HOSTS),
        help=f"comma-separated names and IP addresses (default {','.join(DEFAULT_HOSTS)})",
    )
    dev.add_argument("--force", action="store_true", help="make a new CA even if one exists")
    dev.set_defaults(func=cmd_dev_cert)
    return tls


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="openkms")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
