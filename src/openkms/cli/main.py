"""``openkms``: serve, accounts."""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import orjson

from openkms.cli.audit import register as register_audit
from openkms.cli.config_cmd import register as register_config
from openkms.cli.envelope import register as register_envelope
from openkms.cli.rootkey import register as register_rootkey
from openkms.cli.tls import register as register_tls
from openkms.clock import SystemClock
from openkms.config import (
    ENV_SETTINGS,
    Settings,
    SettingsError,
    environ,
    is_loopback,
    load_settings,
)
from openkms.errors import OpenKMSError
from openkms.http.metrics import prepare_multiprocess_dir, start_metrics_server
from openkms.http.ratelimit import reset_shared_buckets
from openkms.http.wiring import (
    RootKeyMismatch,
    build_runtime,
    check_root,
    open_root,
    open_storage,
)
from openkms.logsetup import configure_logging, uvicorn_log_config
from openkms.rootoftrust.file import RootKeyFileError
from openkms.scheduler import run_once
from openkms.secretsmanager.rotation.runner import register as register_rotation_runner
from openkms.secretsmanager.rotation.setup import wait_for_rotations
from openkms.service.accounts import IssuedAccessKey, create_account
from openkms.storage.base import StorageError

DEV_ENV_FILE = "dev.env"
# How long `scheduler run-once` waits for the rotations it started (4 steps of at most 900 s).
ROTATION_WAIT_SECONDS = 3600.0


_OVERRIDES = {
    # command-line attribute -> setting name
    "data_dir": "data_dir",
    "host": "host",
    "port": "port",
    "workers": "workers",
    "database": "database",
    "account_id": "account_id",
    "partition": "partition",
    "dev": "dev",
    "accept_any_credentials": "accept_any_credentials",
    "audit_log": "audit_log",
    "audit_stdout": "audit_stdout",
    "tls_cert": "tls_cert",
    "tls_key": "tls_key",
    "allow_plain_http_non_loopback": "allow_plain_http_non_loopback",
    "fips": "fips_mode",
    "metrics": "metrics_enabled",
    "metrics_port": "metrics_port",
    "rate_limits": "rate_limits_enabled",
    "log_format": "log_format",
    "log_level": "log_level",
    "shutdown_timeout": "shutdown_timeout_seconds",
    "runtime_dir": "runtime_dir",
    "sealed": "sealed",
    "console": "console_enabled",
}


def _settings_from_args(args: argparse.Namespace) -> Settings:
    """defaults < configuration file < OPENKMS_* environment < command line."""
    overrides: dict[str, object] = {
        setting: getattr(args, attr, None) for attr, setting in _OVERRIDES.items()
    }
    if getattr(args, "audit_fail_open", None):
        overrides["audit_fail_closed"] = False
    return load_settings(getattr(args, "config", None), environ(), overrides)


def _dev_env_lines(settings: Settings, issued: IssuedAccessKey | None, endpoint: str) -> str:
    lines = []
    if issued is not None:
        lines += [
            f"export AWS_ACCESS_KEY_ID={issued.access_key_id}",
            f"export AWS_SECRET_ACCESS_KEY={issued.secret_access_key}",
        ]
    lines += [
        "export AWS_DEFAULT_REGION=us-east-1",
        f"export AWS_ENDPOINT_URL_KMS={endpoint}",
        # Secrets Manager is served on the same port (openkms.secretsmanager).
        f"export AWS_ENDPOINT_URL_SECRETS_MANAGER={endpoint}",
    ]
    return "\n".join(lines) + "\n"


def _bootstrap_dev(settings: Settings, endpoint: str) -> Path:
    """First start in dev mode: a dev account and its root access key, written to dev.env."""
    env_file = settings.data_path / DEV_ENV_FILE
    storage = open_storage(settings)
    try:
        root = open_root(settings)
        check_root(storage, root)
        if env_file.exists() and storage.list_accounts():
            text = env_file.read_text()
            lines = [
                ln
                for ln in text.splitlines()
                if not ln.startswith(("export AWS_ENDPOINT_URL", "export OPENKMS_CONSOLE_URL"))
            ]
            lines.append(f"export AWS_ENDPOINT_URL_KMS={endpoint}")
            lines.append(f"export AWS_ENDPOINT_URL_SECRETS_MANAGER={endpoint}")
            _write_private(env_file, "\n".join(lines) + "\n")
            return env_file
        issued = None
        if not settings.accept_any_credentials:
            issued = create_account(storage, root, SystemClock(), partition=settings.partition)
        _write_private(env_file, _dev_env_lines(settings, issued, endpoint))
        return env_file
    finally:
        storage.close()


def _dev_console_link(settings: Settings, env_file: Path, endpoint: str) -> str:
    """A one-time console sign-in link for the dev account, also written to dev.env as
    OPENKMS_CONSOLE_URL (each start makes a new one; the old one stops working once used)."""
    from openkms.console.client import Creds
    from openkms.console.sessions import SessionStore

    values = {}
    for line in env_file.read_text().splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        values[name.strip()] = value.strip()
    creds = Creds(
        values.get("AWS_ACCESS_KEY_ID") or "AKIAOPENKMSCONSOLEDEV",
        values.get("AWS_SECRET_ACCESS_KEY") or "any-secret-accept-any-credentials",
    )
    storage = open_storage(settings)
    try:
        token = SessionStore(storage, settings.console_session_seconds).create_devlink(
            creds, time.time()
        )
    finally:
        storage.close()
    url = f"{endpoint}/console/signin/dev?token={token}"
    lines = [ln for ln in env_file.read_text().splitlines() if "OPENKMS_CONSOLE_URL=" not in ln]
    lines.append(f"export OPENKMS_CONSOLE_URL='{url}'")
    _write_private(env_file, "\n".join(lines) + "\n")
    return url


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings_from_args(args)
    # workers = 0 (the default): one per usable CPU; the workers receive the resolved count.
    settings = settings.replace(workers=settings.resolved_workers())
    if settings.dev and not is_loopback(settings.host):
        raise SettingsError("dev: development mode binds to loopback only")
    scheme = "https" if settings.tls_enabled else "http"
    shown_host = "127.0.0.1" if settings.host == "0.0.0.0" else settings.host  # noqa: S104
    endpoint = f"{scheme}://{shown_host}:{settings.port}"
    if settings.dev:
        env_file = _bootstrap_dev(settings, endpoint)
        print(f"openkms (development mode) on {endpoint}", flush=True)
        if settings.accept_any_credentials:
            print(
                "WARNING: --accept-any-credentials: signatures are NOT checked; every request "
                f"acts as the root of account {settings.account_id}. Never use this outside a "
                "developer's machine.",
                flush=True,
            )
        print("Point the AWS CLI and SDKs at it with:\n", flush=True)
        print(f"  source {env_file}\n", flush=True)
        print(env_file.read_text(), flush=True)
        print("  aws kms create-key --description 'my first key'\n", flush=True)
        if settings.console_enabled:
            console_url = _dev_console_link(settings, env_file, endpoint)
            print(f"Console (a one-time sign-in link):\n\n  {console_url}\n", flush=True)
    else:
        storage = open_storage(settings)
        try:
            check_root(storage, open_root(settings))
        finally:
            storage.close()
    os.environ[ENV_SETTINGS] = settings.to_json()
    configure_logging(settings.log_level, settings.log_format)
    if settings.metrics_enabled:
        prepare_multiprocess_dir(settings.metrics_multiproc_path)
        if settings.metrics_port:
            start_metrics_server(
                settings.host,
                settings.metrics_port,
                settings.metrics_multiproc_path,
                certfile=settings.tls_cert,
                keyfile=settings.tls_key,
            )
    if settings.rate_limits_enabled:
        reset_shared_buckets(settings.ratelimit_path)
    return _run_server(settings)


def _run_server(settings: Settings) -> int:
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from openkms.http import listener
    from openkms.http.protocol import CoalescingHttpToolsProtocol

    config = uvicorn.Config(
        # The API application, with the console in front of it unless settings turn it off.
        "openkms.console.server:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        loop="uvloop",
        http=CoalescingHttpToolsProtocol,
        log_level=settings.log_level,
        log_config=uvicorn_log_config(settings.log_level, settings.log_format),
        access_log=False,
        # The peer address is the client's (aws:SourceIp): forwarded headers are not trusted.
        proxy_headers=False,
        server_header=False,
        lifespan="on",
        ssl_certfile=settings.tls_cert,
        ssl_keyfile=settings.tls_key,
        timeout_graceful_shutdown=int(settings.shutdown_timeout_seconds),
        # Slow and greedy clients (openkms.http.protocol adds header/body deadlines, the header
        # size limit for httptools, and refuses connections beyond max_connections at once).
        timeout_keep_alive=settings.keep_alive_timeout_seconds,
        limit_concurrency=settings.max_connections,
        h11_max_incomplete_event_size=settings.max_header_bytes,
    )
    if settings.workers <= 1:
        server = uvicorn.Server(config)
        with contextlib.suppress(KeyboardInterrupt):
            server.run()
        return 0 if server.started else 3
    sock: socket.socket
    if listener.balancing_supported():
        # A listening socket per worker: see openkms.http.listener.
        try:
            sock = listener.reserve(settings.host, settings.port)
        except OSError as exc:
            print(
                f"openkms: cannot listen on {settings.host}:{settings.port}: {exc}", file=sys.stderr
            )
            return 3
    else:
        sock = config.bind_socket()
    with contextlib.suppress(KeyboardInterrupt):
        Multiprocess(config, sockets=[sock]).run()
    return 0


def cmd_accounts_create(args: argparse.Namespace) -> int:
    settings = _settings_from_args(args)
    storage = open_storage(settings)
    try:
        root = open_root(settings)
        check_root(storage, root)
        issued = create_account(
            storage, root, SystemClock(), account_id=args.account_id, partition=settings.partition
        )
    finally:
        storage.close()
    sys.stdout.write(
        orjson.dumps(
            {
                "AccountId": issued.account_id,
                "AccessKeyId": issued.access_key_id,
                "SecretAccessKey": issued.secret_access_key,
                "Arn": issued.principal_arn,
            },
            option=orjson.OPT_INDENT_2,
        ).decode()
        + "\n"
    )
    return 0


def cmd_accounts_list(args: argparse.Namespace) -> int:
    settings = _settings_from_args(args)
    storage = open_storage(settings)
    try:
        accounts = [
            {
                "AccountId": a.account_id,
                "CreatedAt": a.created_at,
                "AccessKeys": [
                    {"AccessKeyId": k.access_key_id, "Arn": k.principal_arn, "Status": k.status}
                    for k in storage.list_access_keys(a.account_id)
                ],
            }
            for a in storage.list_accounts()
        ]
    finally:
        storage.close()
    sys.stdout.write(
        orjson.dumps({"Accounts": accounts}, option=orjson.OPT_INDENT_2).decode() + "\n"
    )
    return 0


def cmd_scheduler_run_once(args: argparse.Namespace) -> int:
    settings = _settings_from_args(args)
    now = _parse_time(args.now) if args.now else time.time()
    wired = build_runtime(settings)
    try:
        report = run_once(wired.runtime, now)
        # Rotations it started run on threads that write to the storage: let them end first.
        wait_for_rotations(ROTATION_WAIT_SECONDS)
    finally:
        wired.storage.close()
    print(
        orjson.dumps(
            {
                "Now": now,
                "Deleted": report.deleted,
                "Rotated": report.rotated,
                "ExpiredMaterial": report.expired,
                "SecretsDeleted": report.secrets_deleted,
                "SecretsRotated": report.secrets_rotated,
            },
            option=orjson.OPT_INDENT_2,
        ).decode()
    )
    return 0


def _parse_time(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        pass
    try:
        moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise SettingsError(f"--now: {value!r} is neither epoch seconds nor ISO 8601") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="data directory (default ./.openkms)")
    parser.add_argument(
        "--database",
        help="SQLite path (default <data-dir>/openkms.db) or a postgresql:// URL",
    )
    parser.add_argument("--partition", help="ARN partition (default aws)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="openkms", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the KMS server")
    _common(serve)
    serve.add_argument("--config", help="TOML configuration file (or $OPENKMS_CONFIG)")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 4566)")
    serve.add_argument(
        "--workers",
        type=int,
        help="worker processes (default: one per usable CPU, at most 8; 0 means the same)",
    )
    serve.add_argument(
        "--dev", action="store_true", default=None, help="development mode (loopback only)"
    )
    serve.add_argument(
        "--accept-any-credentials",
        action="store_true",
        default=None,
        help="UNSAFE: accept any well-formed SigV4 request as the root of --account-id",
    )
    serve.add_argument("--account-id", help="account for --accept-any-credentials")
    serve.add_argument(
        "--audit-log", help="audit log file (default <data-dir>/audit.log; '' = off)"
    )
    serve.add_argument(
        "--audit-stdout",
        action="store_true",
        default=None,
        help="also write audit records to stdout",
    )
    serve.add_argument(
        "--audit-fail-open",
        action="store_true",
        default=None,
        help="serve requests even when their audit record cannot be written (default: fail them)",
    )
    serve.add_argument(
        "--sealed",
        action="store_true",
        default=None,
        help="start without the root key; enter its Shamir shares with 'openkms unseal'",
    )
    serve.add_argument("--tls-cert", help="PEM certificate (chain): serve HTTPS")
    serve.add_argument("--tls-key", help="PEM private key of --tls-cert")
    serve.add_argument(
        "--allow-plain-http-non-loopback",
        action="store_true",
        default=None,
        help="allow plain HTTP on a non-loopback address (behind a TLS-terminating proxy)",
    )
    serve.add_argument(
        "--fips",
        action="store_true",
        default=None,
        help="refuse key specs and algorithms outside FIPS 140-3's approved list",
    )
    serve.add_argument(
        "--metrics", action=argparse.BooleanOptionalAction, default=None, help="GET /metrics"
    )
    serve.add_argument(
        "--console",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the web console at /console/ (default on; --no-console turns it off)",
    )
    serve.add_argument("--metrics-port", type=int, help="serve /metrics on its own port")
    serve.add_argument(
        "--rate-limits",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="AWS's request quotas (default on; off in --dev unless given)",
    )
    serve.add_argument("--log-format", choices=["text", "json"], help="log format")
    serve.add_argument("--log-level", help="log level (default warning)")
    serve.add_argument(
        "--shutdown-timeout", type=float, help="seconds to finish in-flight requests on SIGTERM"
    )
    serve.add_argument(
        "--runtime-dir", help="metrics and rate-limit files (default <data-dir>/run)"
    )
    serve.set_defaults(func=cmd_serve)

    accounts = sub.add_parser("accounts", help="manage accounts")
    asub = accounts.add_subparsers(dest="accounts_command", required=True)
    create = asub.add_parser("create", help="create an account and its root access key")
    _common(create)
    create.add_argument("--account-id", help="12-digit account id (default: random)")
    create.set_defaults(func=cmd_accounts_create)
    lst = asub.add_parser("list", help="list accounts and their access keys")
    _common(lst)
    lst.set_defaults(func=cmd_accounts_list)

    register_audit(sub)
    register_tls(sub)
    register_config(sub)
    register_rootkey(sub)
    register_envelope(sub)
    register_rotation_runner(sub)

    scheduler = sub.add_parser("scheduler", help="run scheduled jobs (deletions, rotations)")
    ssub = scheduler.add_subparsers(dest="scheduler_command", required=True)
    once = ssub.add_parser("run-once", help="run every job that is due, then exit")
    _common(once)
    once.add_argument("--now", help="the time to act at (epoch seconds or ISO 8601)")
    once.set_defaults(func=cmd_scheduler_run_once)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.func(args)
        return result
    except (SettingsError, RootKeyFileError, RootKeyMismatch, StorageError) as exc:
        print(f"openkms: {exc}", file=sys.stderr)
        return 2
    except OpenKMSError as exc:
        print(f"openkms: {exc.code}: {exc.message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
