"""Settings: the only module that reads the environment and configuration files.

The command line builds a ``Settings`` and hands it to each server worker process as JSON in
``OPENKMS_SETTINGS_JSON``; everything else takes a ``Settings`` as a parameter.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from openkms.quotas import check_overrides

ENV_SETTINGS = "OPENKMS_SETTINGS_JSON"
ENV_ROOT_KEY = "OPENKMS_ROOT_KEY"
ENV_ROOT_KEY_PASSPHRASE = "OPENKMS_ROOT_KEY_PASSPHRASE"  # noqa: S105 - a variable name
# The root of trust can also be chosen through the environment (``openkms serve`` has no flags
# for it yet); each variable fills the setting of the same name when that is left at its default.
ENV_ROOT_OF_TRUST = "OPENKMS_ROOT_OF_TRUST"
ENV_ROOT_KEY_FILE = "OPENKMS_ROOT_KEY_FILE"
ENV_PKCS11_MODULE = "OPENKMS_PKCS11_MODULE"
ENV_PKCS11_TOKEN_LABEL = "OPENKMS_PKCS11_TOKEN_LABEL"  # noqa: S105 - a variable name
ENV_PKCS11_KEY_LABEL = "OPENKMS_PKCS11_KEY_LABEL"
ENV_PKCS11_PIN_FILE = "OPENKMS_PKCS11_PIN_FILE"
ENV_PKCS11_PIN = "OPENKMS_PKCS11_PIN"
ENV_PKCS11_CREATE_KEY = "OPENKMS_PKCS11_CREATE_KEY"
ROOTS_OF_TRUST = ("file", "pkcs11")
# Build switches (read by setup.py and scripts/install.sh, never by the server): a shell that
# built with them must still be able to start it, so they are known here and ignored.
ENV_BUILD_PURE_PYTHON = "OPENKMS_PURE_PYTHON"
ENV_BUILD_REQUIRE_COMPILED = "OPENKMS_REQUIRE_COMPILED"
# Variables the test suite and the benchmarks read (OPENKMS_TEST_PG_BIN, OPENKMS_TEST_BUILD,
# ...): a namespace this loader does not own.
ENV_TEST_NAMESPACE = "OPENKMS_TEST_"


# `workers = 0` (the default) starts one worker per usable CPU up to this many: beyond it the
# workers mostly contend for the database (SQLite has one writer) and each holds ~55 MiB.
MAX_AUTO_WORKERS = 8


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask, bounded by a cgroup v2 CPU quota
    (a container given 2 CPUs on a 64-core host counts 2)."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        count = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            count = min(count, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, count)


class SettingsError(ValueError):
    """A setting is invalid; the message names it."""


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: str = "./.openkms"
    host: str = "127.0.0.1"
    port: int = 4566
    workers: int = 0  # 0: one per usable CPU, at most MAX_AUTO_WORKERS (resolved_workers)
    dev: bool = False
    accept_any_credentials: bool = False
    account_id: str = "000000000000"
    partition: str = "aws"
    database: str | None = None  # default: <data_dir>/openkms.db
    root_key_file: str | None = None  # default: <data_dir>/root.key
    max_body_bytes: int = 1_048_576
    max_clock_skew_seconds: int = 900
    cache_ttl_seconds: float = 1.0
    scheduler_interval_seconds: float = 60.0
    usage_flush_seconds: float = 1.0
    log_level: str = "warning"
    # Audit log: a file (default <data_dir>/audit.log; "" to turn it off) and/or stdout.
    audit_log: str | None = None
    audit_stdout: bool = False
    audit_fail_closed: bool = True
    audit_max_bytes: int = 64 * 1024 * 1024
    # Rotated audit files kept; 0 (the default) keeps every file: pruning is the operator's
    # deliberate act (``openkms audit prune``), recorded in the chain.
    audit_backups: int = 0
    # Requests that fail authentication are recorded in full at most this often per source
    # address (records/s, bursts of 10 s worth) and across all sources; the rest are counted
    # and summarized every audit_summary_seconds (docs/formats/audit.md).
    audit_failed_auth_rate: float = 1.0
    audit_failed_auth_total_rate: float = 20.0
    audit_summary_seconds: float = 60.0
    # A background thread writes and fsyncs the accepted records this often; 0 = in each request.
    audit_flush_seconds: float = 0.05
    # Root of trust: "file" (root_key_file, or OPENKMS_ROOT_KEY) or "pkcs11" (an AES-256 key in
    # an HSM, found by token and key label; the PIN comes from pkcs11_pin_file or
    # OPENKMS_PKCS11_PIN, never from the settings themselves). See docs/hsm.md.
    root_of_trust: str = "file"
    pkcs11_module: str | None = None
    pkcs11_token_label: str | None = None
    pkcs11_key_label: str | None = None
    pkcs11_pin_file: str | None = None
    pkcs11_create_key: bool = False  # generate the key in the token when the label is absent
    # Custom key stores (docs/custom-key-stores.md): a TOML file mapping CloudHsmClusterIds to
    # PKCS#11 tokens, and the CA bundle XKS proxies' certificates must chain to.
    custom_key_store_clusters: str | None = None
    xks_proxy_ca_file: str | None = None
    # Secrets Manager rotation (docs/configuration.md, "Rotation functions"): a TOML file mapping
    # each RotationLambdaARN to an HTTPS endpoint or a local command.
    rotation_functions: str | None = None
    # Start without the root key and answer 503 until enough Shamir shares are entered.
    sealed: bool = False
    # Transport, metrics, quotas, logging, shutdown (docs/configuration.md).
    tls_cert: str | None = None  # PEM certificate (chain) file; with tls_key: serve HTTPS
    tls_key: str | None = None  # PEM private key file of tls_cert
    allow_plain_http_non_loopback: bool = False  # e.g. behind a TLS-terminating proxy
    fips_mode: bool = False  # refuse key specs and algorithms FIPS 140-3 does not approve
    metrics_enabled: bool = True  # GET /metrics (Prometheus text format)
    metrics_port: int | None = None  # None: /metrics on the service port
    rate_limits_enabled: bool = True  # AWS's request quotas (dev mode: off unless asked)
    rate_limit_overrides: tuple[tuple[str, float | None], ...] = ()  # quota -> rate/s|None
    log_format: str = "text"  # "text" or "json" (one object per line)
    shutdown_timeout_seconds: float = 10.0  # grace for in-flight requests on SIGTERM
    runtime_dir: str | None = None  # default <data_dir>/run: metrics files, rate-limit buckets
    # Request authentication (docs/configuration.md): the Regions a credential scope may name
    # (comma-separated; default: the partition's, from botocore's data), and whether a
    # signature may leave Content-Type out (aws-sdk-js v2 does; x-amz-* headers never may).
    regions: str | None = None
    allow_unsigned_content_type: bool = False
    # Slow and greedy clients: per worker process.
    max_header_bytes: int = 16 * 1024  # request line and headers together
    header_timeout_seconds: float = 10.0  # from the first byte (or the connection) to the end
    body_timeout_seconds: float = 30.0  # from the end of the headers to the end of the body
    keep_alive_timeout_seconds: int = 5  # an idle keep-alive connection is closed
    max_connections: int = 1000  # open connections; beyond, new ones get 503 and are closed
    # API requests answered from the HTTP protocol's callbacks rather than through uvicorn's
    # ASGI request cycle (openkms.http.protocol, docs/benchmarks.md "Ninth session").
    direct_api: bool = True
    # Caller-chosen strings: an encryption context's keys and values, all together, in
    # characters (AWS documents no number; see docs/configuration.md).
    max_encryption_context_chars: int = 8192
    # The web console at /console/ on the service port (docs/console.md); ``--no-console`` or
    # ``console_enabled = false`` turns it off. A console session lasts this long at most.
    console_enabled: bool = True
    console_session_seconds: int = 3600

    def resolved_workers(self) -> int:
        """The worker count to start: ``workers``, or for 0 one per usable CPU (capped at
        MAX_AUTO_WORKERS); a sealed server runs one."""
        if self.workers > 0:
            return self.workers
        if self.sealed:
            return 1
        return min(usable_cpus(), MAX_AUTO_WORKERS)

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    @property
    def database_path(self) -> str:
        return self.database or str(self.data_path / "openkms.db")

    @property
    def root_key_path(self) -> Path:
        return Path(self.root_key_file) if self.root_key_file else self.data_path / "root.key"

    @property
    def audit_path(self) -> str:
        return str(self.data_path / "audit.log") if self.audit_log is None else self.audit_log

    @property
    def tls_enabled(self) -> bool:
        return self.tls_cert is not None and self.tls_key is not None

    @property
    def runtime_path(self) -> Path:
        """Per-run state shared by the workers; the server empties it at start."""
        return Path(self.runtime_dir) if self.runtime_dir else self.data_path / "run"

    @property
    def metrics_multiproc_path(self) -> Path:
        return self.runtime_path / "metrics"

    @property
    def ratelimit_path(self) -> Path:
        return self.runtime_path / "ratelimit.bin"

    def validate(self) -> Settings:
        if not 0 < self.port < 65536 and self.port != 0:
            raise SettingsError(f"port: {self.port} is not a TCP port")
        if self.workers < 0:
            raise SettingsError("workers: must be at least 1 (or 0: one per usable CPU)")
        if len(self.account_id) != 12 or not self.account_id.isdigit():
            raise SettingsError("account_id: must be 12 digits")
        if self.accept_any_credentials and not is_loopback(self.host):
            raise SettingsError(
                "accept_any_credentials: refused unless the server binds to a loopback address"
            )
        if self.audit_max_bytes < 4096:
            raise SettingsError("audit_max_bytes: must be at least 4096")
        if not 0 <= self.audit_flush_seconds <= 10:
            raise SettingsError("audit_flush_seconds: from 0 to 10")
        if self.max_body_bytes < 1024:
            raise SettingsError("max_body_bytes: must be at least 1024")
        self._validate_limits()
        self._validate_service()
        if self.root_of_trust not in ROOTS_OF_TRUST:
            raise SettingsError(
                f"root_of_trust: {self.root_of_trust!r} is not one of {', '.join(ROOTS_OF_TRUST)}"
            )
        if self.sealed and self.workers > 1:  # 0 resolves to 1 when sealed
            raise SettingsError(
                "sealed: a sealed server runs one worker (shares reach one process)"
            )
        if self.sealed and (self.dev or self.accept_any_credentials):
            raise SettingsError(
                "sealed: development mode and accept_any_credentials cannot start sealed"
            )
        if self.custom_key_store_clusters:
            read_clusters_file(self.custom_key_store_clusters)
        if self.rotation_functions:
            read_rotation_functions(self.rotation_functions)
        if self.xks_proxy_ca_file and not Path(self.xks_proxy_ca_file).is_file():
            raise SettingsError(f"xks_proxy_ca_file: {self.xks_proxy_ca_file} is not a file")
        return self

    def _validate_limits(self) -> None:
        """Authentication, slow clients, caller-chosen sizes and the audit flood bounds."""
        if self.audit_backups < 0:
            raise SettingsError("audit_backups: 0 (keep every file) or more")
        for name in ("audit_failed_auth_rate", "audit_failed_auth_total_rate"):
            if not getattr(self, name) > 0:
                raise SettingsError(f"{name}: must be more than 0")
        if not 1 <= self.audit_summary_seconds <= 3600:
            raise SettingsError("audit_summary_seconds: from 1 to 3600")
        if self.regions is not None:
            from openkms.auth.regions import parse_region_list

            try:
                parse_region_list(self.regions)
            except ValueError as exc:
                raise SettingsError(f"regions: {exc}") from None
        if not 1024 <= self.max_header_bytes <= 1024 * 1024:
            raise SettingsError("max_header_bytes: from 1024 to 1048576")
        for name in ("header_timeout_seconds", "body_timeout_seconds"):
            if not 0.1 <= getattr(self, name) <= 3600:
                raise SettingsError(f"{name}: from 0.1 to 3600")
        if not 1 <= self.keep_alive_timeout_seconds <= 3600:
            raise SettingsError("keep_alive_timeout_seconds: from 1 to 3600")
        if self.max_connections < 1:
            raise SettingsError("max_connections: must be at least 1")
        if not 64 <= self.max_encryption_context_chars <= 1024 * 1024:
            raise SettingsError("max_encryption_context_chars: from 64 to 1048576")
        if not 1 <= self.console_session_seconds <= 43200:
            raise SettingsError("console_session_seconds: from 1 to 43200")

    def region_set(self) -> frozenset[str]:
        """The Regions a credential scope may name."""
        from openkms.auth.regions import parse_region_list, partition_regions

        if self.regions is not None:
            return parse_region_list(self.regions)
        return partition_regions(self.partition)

    def validate_root_of_trust(self) -> Settings:
        """The checks that need the environment's values too (``with_root_env``)."""
        self.validate()
        if self.root_of_trust == "pkcs11" and not self.sealed:
            for name in ("pkcs11_module", "pkcs11_token_label", "pkcs11_key_label"):
                if not getattr(self, name):
                    raise SettingsError(f"{name}: required when root_of_trust is pkcs11")
        return self

    def _validate_service(self) -> None:
        """Transport, metrics, quotas, logging and shutdown."""
        if (self.tls_cert is None) != (self.tls_key is None):
            missing = "tls_key" if self.tls_key is None else "tls_cert"
            raise SettingsError(f"{missing}: tls_cert and tls_key must be given together")
        if (
            not self.tls_enabled
            and not is_loopback(self.host)
            and not self.allow_plain_http_non_loopback
        ):
            raise SettingsError(
                f"host: plain HTTP on the non-loopback address {self.host} is refused; give "
                "tls_cert and tls_key, or set allow_plain_http_non_loopback (e.g. behind a "
                "TLS-terminating proxy)"
            )
        if self.log_level.lower() not in LOG_LEVELS:
            raise SettingsError(
                f"log_level: {self.log_level!r} is not one of {', '.join(LOG_LEVELS)}"
            )
        if self.log_format not in LOG_FORMATS:
            raise SettingsError(
                f"log_format: {self.log_format!r} is not one of {', '.join(LOG_FORMATS)}"
            )
        if self.metrics_port is not None:
            if not 0 < self.metrics_port < 65536:
                raise SettingsError(f"metrics_port: {self.metrics_port} is not a TCP port")
            if self.metrics_port == self.port:
                raise SettingsError(
                    "metrics_port: must differ from port (leave it unset to serve /metrics "
                    "on the service port)"
                )
        if not self.shutdown_timeout_seconds >= 0:
            raise SettingsError("shutdown_timeout_seconds: must be 0 or more")
        if self.rate_limit_overrides:
            try:
                check_overrides(self.rate_limit_overrides)
            except ValueError as exc:
                raise SettingsError(f"rate_limit_overrides: {exc}") from None

    def to_json(self) -> str:
        return orjson.dumps(dataclasses.asdict(self)).decode()

    @classmethod
    def from_json(cls, text: str) -> Settings:
        data: dict[str, Any] = orjson.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise SettingsError(f"unknown settings: {', '.join(sorted(unknown))}")
        if data.get("rate_limit_overrides"):
            data["rate_limit_overrides"] = tuple(
                (str(name), rate) for name, rate in data["rate_limit_overrides"]
            )
        return cls(**data).validate()

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def settings_from_env() -> Settings:
    text = os.environ.get(ENV_SETTINGS)
    return Settings().validate() if text is None else Settings.from_json(text)


def root_key_from_env() -> str | None:
    return os.environ.get(ENV_ROOT_KEY)


def root_key_passphrase_from_env() -> str | None:
    return os.environ.get(ENV_ROOT_KEY_PASSPHRASE)


def with_root_env(settings: Settings) -> Settings:
    """``settings`` with the root-of-trust settings the environment gives (each fills a setting
    left at its default; the PIN itself is read by ``pkcs11_pin``)."""
    changes: dict[str, Any] = {}
    value = os.environ.get(ENV_ROOT_OF_TRUST)
    if value and settings.root_of_trust == "file":
        changes["root_of_trust"] = value
    for env, name in (
        (ENV_ROOT_KEY_FILE, "root_key_file"),
        (ENV_PKCS11_MODULE, "pkcs11_module"),
        (ENV_PKCS11_TOKEN_LABEL, "pkcs11_token_label"),
        (ENV_PKCS11_KEY_LABEL, "pkcs11_key_label"),
        (ENV_PKCS11_PIN_FILE, "pkcs11_pin_file"),
    ):
        value = os.environ.get(env)
        if value and getattr(settings, name) is None:
            changes[name] = value
    if os.environ.get(ENV_PKCS11_CREATE_KEY, "").lower() in ("1", "true", "yes"):
        changes["pkcs11_create_key"] = True
    return settings.replace(**changes) if changes else settings


def pkcs11_pin(settings: Settings) -> str | None:
    """The token's user PIN: the first line of ``pkcs11_pin_file``, else OPENKMS_PKCS11_PIN.
    Never logged; the file should be readable by the server's user only."""
    if settings.pkcs11_pin_file:
        path = Path(settings.pkcs11_pin_file)
        try:
            text = path.read_text("utf-8")
        except OSError as exc:
            raise SettingsError(f"pkcs11_pin_file: {path} cannot be read") from exc
        pin = text.splitlines()[0] if text else ""
        if not pin:
            raise SettingsError(f"pkcs11_pin_file: {path} is empty")
        return pin
    return os.environ.get(ENV_PKCS11_PIN) or None


# --- Custom key store clusters (docs/custom-key-stores.md) ---------------------------------------
@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """What a CloudHsmClusterId stands for here: a PKCS#11 module and one token in it."""

    cluster_id: str
    module: str
    token_label: str
    trust_anchor_certificate: str | None = None  # PEM text; None: any certificate is accepted


def read_clusters_file(path: str | Path) -> dict[str, ClusterConfig]:
    """Parses the cluster mapping file::

    [clusters.cluster-1234567890abc]
    pkcs11_module = "/usr/lib/softhsm/libsofthsm2.so"
    token_label = "kms-cluster-1"
    trust_anchor_certificate_file = "/etc/openkms/customerCA.crt"   # optional
    """
    file = Path(path)
    try:
        data: dict[str, Any] = tomllib.loads(file.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"custom_key_store_clusters: cannot read {file}: {exc}") from None
    clusters: dict[str, ClusterConfig] = {}
    table = data.get("clusters", {})
    if not isinstance(table, dict):
        raise SettingsError("custom_key_store_clusters: [clusters] must be a table")
    for cluster_id, entry in table.items():
        if not isinstance(entry, dict):
            raise SettingsError(f"custom_key_store_clusters: {cluster_id} must be a table")
        module = entry.get("pkcs11_module")
        label = entry.get("token_label")
        if not isinstance(module, str) or not isinstance(label, str):
            raise SettingsError(
                f"custom_key_store_clusters: {cluster_id} needs pkcs11_module and token_label"
            )
        anchor = None
        anchor_file = entry.get("trust_anchor_certificate_file")
        if isinstance(anchor_file, str):
            try:
                anchor = (file.parent / anchor_file).read_text()
            except OSError as exc:
                raise SettingsError(
                    f"custom_key_store_clusters: {cluster_id}: cannot read {anchor_file}: {exc}"
                ) from None
        clusters[cluster_id] = ClusterConfig(cluster_id, module, label, anchor)
    return clusters


# --- Secrets Manager rotation functions (docs/configuration.md) -----------------------------------
ROTATION_TIMEOUT_DEFAULT_SECONDS = 30.0
ROTATION_TIMEOUT_MAX_SECONDS = 900.0  # a Lambda function's own limit
# What a rotation command inherits from the server's environment: nothing else (the server's
# may hold OPENKMS_ROOT_KEY, a PKCS#11 PIN or AWS credentials that are not the function's).
ROTATION_INHERITED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "SYSTEMROOT")


@dataclass(frozen=True, slots=True)
class RotationFunction:
    """What a RotationLambdaARN stands for here: an endpoint that receives the Lambda event by
    HTTPS POST, or a command that receives it on standard input (exit status 0: success)."""

    arn: str
    url: str | None = None
    command: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()  # added to the command's environment
    timeout_seconds: float = ROTATION_TIMEOUT_DEFAULT_SECONDS
    ca_file: str | None = None  # PEM bundle the endpoint's certificate must chain to
    auth_token: str | None = field(default=None, repr=False)  # sent as "Authorization: Bearer"


def local_endpoint(settings: Settings) -> str | None:
    """This server's URL as a process on the same machine reaches it (a rotation command's
    SECRETS_MANAGER_ENDPOINT); None when the port is chosen at start (``port = 0``)."""
    if not settings.port:
        return None
    host = settings.host
    if host in ("0.0.0.0", ""):  # noqa: S104 - reading the setting, not binding
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    scheme = "https" if settings.tls_enabled else "http"
    return f"{scheme}://{host}:{settings.port}"


def _rotation_function(arn: str, entry: dict[str, Any], base: Path) -> RotationFunction:
    where = f"rotation_functions: {arn}"
    known = {"url", "command", "env", "timeout_seconds", "ca_file", "auth_token_file"}
    unknown = set(entry) - known
    if unknown:
        raise SettingsError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    url, command = entry.get("url"), entry.get("command")
    if (url is None) == (command is None):
        raise SettingsError(f"{where}: give exactly one of url and command")
    timeout = entry.get("timeout_seconds", ROTATION_TIMEOUT_DEFAULT_SECONDS)
    if (
        not isinstance(timeout, int | float)
        or isinstance(timeout, bool)
        or not 0 < timeout <= ROTATION_TIMEOUT_MAX_SECONDS
    ):
        raise SettingsError(f"{where}: timeout_seconds from 0 to {ROTATION_TIMEOUT_MAX_SECONDS}")
    if url is not None:
        if not isinstance(url, str):
            raise SettingsError(f"{where}: url must be a string")
        scheme, _, rest = url.partition("://")
        host = rest.split("/", 1)[0].rsplit(":", 1)[0].strip("[]")
        # The event carries a RotationToken, a credential: plain HTTP only to this machine.
        if scheme != "https" and not (scheme == "http" and is_loopback(host)):
            raise SettingsError(f"{where}: url must be https:// (http:// only on loopback)")
    if command is not None and (
        not isinstance(command, list)
        or not command
        or not all(isinstance(part, str) for part in command)
    ):
        raise SettingsError(f"{where}: command must be a non-empty array of strings")
    env = entry.get("env", {})
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        raise SettingsError(f"{where}: env must be a table of strings")
    ca_file = entry.get("ca_file")
    if ca_file is not None:
        if not isinstance(ca_file, str) or not (base / ca_file).is_file():
            raise SettingsError(f"{where}: ca_file {ca_file!r} is not a file")
        ca_file = str(base / ca_file)
    token: str | None = None
    token_file = entry.get("auth_token_file")
    if token_file is not None:
        try:
            token = (base / str(token_file)).read_text("utf-8").strip()
        except OSError as exc:
            raise SettingsError(f"{where}: cannot read auth_token_file: {exc.strerror}") from None
        if not token:
            raise SettingsError(f"{where}: auth_token_file is empty")
    return RotationFunction(
        arn=arn,
        url=url,
        command=tuple(command or ()),
        env=tuple(sorted((str(k), v) for k, v in env.items())),
        timeout_seconds=float(timeout),
        ca_file=ca_file,
        auth_token=token,
    )


def read_rotation_functions(path: str | Path) -> dict[str, RotationFunction]:
    """Parses the rotation function file (relative paths in it are relative to the file)::

    [functions."arn:aws:lambda:us-east-1:111122223333:function:pg-rotation"]
    url = "https://rotator.internal:8443/"
    ca_file = "rotator-ca.pem"            # optional
    auth_token_file = "rotator.token"     # optional: sent as "Authorization: Bearer <token>"
    timeout_seconds = 60                  # optional, per step (default 30)

    [functions."arn:aws:lambda:us-east-1:111122223333:function:local"]
    command = ["openkms", "rotation-runner", "--stdin", "mymodule:lambda_handler"]
    env = { SECRETS_MANAGER_ENDPOINT = "http://127.0.0.1:4566" }
    """
    file = Path(path)
    try:
        data: dict[str, Any] = tomllib.loads(file.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"rotation_functions: cannot read {file}: {exc}") from None
    table = data.get("functions", {})
    if not isinstance(table, dict) or set(data) - {"functions"}:
        raise SettingsError("rotation_functions: only a [functions] table is expected")
    functions: dict[str, RotationFunction] = {}
    for arn, entry in table.items():
        if not isinstance(entry, dict):
            raise SettingsError(f"rotation_functions: {arn} must be a table")
        if not arn.startswith("arn:") or ":lambda:" not in arn:
            raise SettingsError(f"rotation_functions: {arn!r} is not a Lambda function ARN")
        functions[arn] = _rotation_function(arn, entry, file.parent)
    return functions


# --- Configuration file and environment -----------------------------------------------------------
ENV_CONFIG = "OPENKMS_CONFIG"
# Written to dev.env by `openkms serve --dev` (the one-time console sign-in link), never read.
ENV_CONSOLE_URL = "OPENKMS_CONSOLE_URL"
ENV_PREFIX = "OPENKMS_"
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
LOG_FORMATS = ("text", "json")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_UNLIMITED = "unlimited"


def reserved_env_names() -> frozenset[str]:
    """``OPENKMS_*`` variables that are not settings (secrets, the worker hand-over, the
    configuration file): every ``ENV_*`` constant of this module that names no setting."""
    fields = {f.name for f in dataclasses.fields(Settings)}
    return frozenset(
        value
        for name, value in globals().items()
        if name.startswith("ENV_")
        and isinstance(value, str)
        and value.startswith(ENV_PREFIX)
        and value != ENV_PREFIX
        and value[len(ENV_PREFIX) :].lower() not in fields
    )


def _field_types() -> dict[str, Any]:
    hints = typing.get_type_hints(Settings)
    return {f.name: hints[f.name] for f in dataclasses.fields(Settings)}


def _optional_inner(typ: Any) -> tuple[Any, bool]:
    """(T, True) for ``T | None``, else (typ, False)."""
    if isinstance(typ, types.UnionType) or typing.get_origin(typ) is typing.Union:
        args = [a for a in typing.get_args(typ) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(typ)) == 2:
            return args[0], True
    return typ, False


def _is_overrides(typ: Any) -> bool:
    return bool(typ == tuple[tuple[str, float | None], ...])


def _kind(value: object) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        dict: "a table",
        list: "an array",
    }.get(type(value), type(value).__name__)


def _coerce_overrides(name: str, value: object, where: str) -> tuple[tuple[str, float | None], ...]:
    """A table of quota name -> requests per second (a number, ``"unlimited"`` or inf)."""
    if isinstance(value, str) and where == "env":
        text = value.strip()
        if not text:
            return ()
        if text.startswith("{"):
            try:
                value = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                raise SettingsError(f"{name}: not a JSON object ({exc})") from None
        else:
            pairs: dict[str, object] = {}
            for item in text.split(","):
                quota, sep, rate = item.partition("=")
                if not sep:
                    raise SettingsError(f"{name}: {item.strip()!r} is not QUOTA=RATE")
                pairs[quota.strip()] = rate.strip()
            value = pairs
    if isinstance(value, list | tuple):
        try:
            value = {str(k): v for k, v in value}
        except (TypeError, ValueError):
            raise SettingsError(f"{name}: expected a table of quota = rate") from None
    if not isinstance(value, dict):
        raise SettingsError(f"{name}: expected a table of quota = rate, got {_kind(value)}")
    result: dict[str, float | None] = {}
    for quota, rate in value.items():
        parsed: float | None
        if rate is None or (isinstance(rate, str) and rate.strip().lower() in (_UNLIMITED, "inf")):
            parsed = None
        elif isinstance(rate, str) and where == "env":
            try:
                parsed = float(rate)
            except ValueError:
                raise SettingsError(f"{name}.{quota}: {rate!r} is not a number") from None
        elif isinstance(rate, int | float) and not isinstance(rate, bool):
            parsed = None if math.isinf(rate) and rate > 0 else float(rate)
        else:
            raise SettingsError(
                f"{name}.{quota}: expected requests per second or 'unlimited', got {_kind(rate)}"
            )
        result[str(quota)] = parsed
    return tuple(sorted(result.items()))


def _coerce(name: str, typ: Any, value: object, where: str) -> Any:
    """``value`` (from a TOML file, an environment string or a command-line override) as the
    setting's type; SettingsError naming the setting otherwise."""
    if _is_overrides(typ):
        return _coerce_overrides(name, value, where)
    inner, optional = _optional_inner(typ)
    if where == "env":
        assert isinstance(value, str)
        text = value.strip()
        if optional and inner is not str and text.lower() in ("", "none", "null"):
            return None
        if inner is bool:
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise SettingsError(f"{name}: {value!r} is not a boolean (use true or false)")
        if inner is int:
            try:
                return int(text, 10)
            except ValueError:
                raise SettingsError(f"{name}: {value!r} is not an integer") from None
        if inner is float:
            try:
                number = float(text)
            except ValueError:
                raise SettingsError(f"{name}: {value!r} is not a number") from None
            if math.isnan(number):
                raise SettingsError(f"{name}: {value!r} is not a number")
            return number
        if inner is str:
            return value
        raise SettingsError(f"{name}: cannot be set from the environment")
    if value is None and optional:
        return None
    if inner is bool:
        if isinstance(value, bool):
            return value
        raise SettingsError(f"{name}: expected true or false, got {_kind(value)}")
    if inner is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise SettingsError(f"{name}: expected an integer, got {_kind(value)}")
    if inner is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            if math.isnan(value):
                raise SettingsError(f"{name}: expected a number, got nan")
            return float(value)
        raise SettingsError(f"{name}: expected a number, got {_kind(value)}")
    if inner is str:
        if isinstance(value, str):
            return value
        raise SettingsError(f"{name}: expected a string, got {_kind(value)}")
    return value


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The settings a TOML file gives, typed and checked by name (not yet validated)."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise SettingsError(f"config: cannot read {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"config: {path} is not valid TOML: {exc}") from None
    fields = _field_types()
    values: dict[str, Any] = {}
    for name, value in data.items():
        if name not in fields:
            raise SettingsError(f"{name}: unknown setting (in {path})")
        try:
            values[name] = _coerce(name, fields[name], value, "file")
        except SettingsError as exc:
            raise SettingsError(f"{exc} (in {path})") from None
    return values


def settings_from_environment(env: Mapping[str, str]) -> dict[str, Any]:
    """The settings ``OPENKMS_<NAME>`` variables give; an unknown ``OPENKMS_*`` variable is an
    error (a misspelt setting must not be silently ignored)."""
    fields = _field_types()
    reserved = reserved_env_names()
    values: dict[str, Any] = {}
    for var, text in env.items():
        if not var.startswith(ENV_PREFIX) or var in reserved or var.startswith(ENV_TEST_NAMESPACE):
            continue
        name = var[len(ENV_PREFIX) :].lower()
        if name not in fields:
            raise SettingsError(f"{var}: unknown setting (environment variable)")
        try:
            values[name] = _coerce(name, fields[name], text, "env")
        except SettingsError as exc:
            raise SettingsError(f"{exc} (from {var})") from None
    return values


def load_settings(
    path: str | os.PathLike[str] | None,
    env: Mapping[str, str],
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """The effective settings: defaults < the TOML file at ``path`` (or ``$OPENKMS_CONFIG``)
    < ``OPENKMS_*`` variables in ``env`` < ``overrides`` (command-line values; a None value
    means "not given"). Everything goes through one typed model; an unknown name or a bad
    value raises SettingsError naming it.

    Development mode turns rate limits off unless ``rate_limits_enabled`` was set explicitly
    somewhere (``--rate-limits``, ``OPENKMS_RATE_LIMITS_ENABLED=1``, the file).
    """
    if path is None:
        path = env.get(ENV_CONFIG) or None
    values: dict[str, Any] = {}
    if path is not None:
        values.update(read_config_file(path))
    values.update(settings_from_environment(env))
    fields = _field_types()
    for name, value in (overrides or {}).items():
        if name not in fields:
            raise SettingsError(f"{name}: unknown setting (command line)")
        if value is not None:
            values[name] = _coerce(name, fields[name], value, "override")
    if values.get("dev") and "rate_limits_enabled" not in values:
        values["rate_limits_enabled"] = False
    settings = Settings(**values).validate()
    for name in ("tls_cert", "tls_key"):
        file = getattr(settings, name)
        if file is not None and not Path(file).is_file():
            raise SettingsError(f"{name}: {file} does not exist or is not a file")
    return settings


def parse_setting(name: str, text: str) -> Any:
    """A setting's value from its text form (as ``OPENKMS_<NAME>`` would give it), e.g. for a
    ``--set NAME=VALUE`` option; SettingsError for an unknown name or a bad value."""
    fields = _field_types()
    if name not in fields:
        raise SettingsError(f"{name}: unknown setting")
    return _coerce(name, fields[name], text, "env")


def secret_env_names() -> tuple[str, ...]:
    """Variables that hold secrets (key material, passphrases, PINs): never shown."""
    return tuple(
        sorted(
            value
            for value in reserved_env_names() - {ENV_CONFIG, ENV_SETTINGS}
            if any(word in value.lower() for word in ("_key", "passphrase", "_pin", "secret"))
            and not value.endswith(("_FILE", "_LABEL", "_MODULE"))
        )
    )


def secrets_set_in(env: Mapping[str, str]) -> tuple[str, ...]:
    """Which of the secret variables ``env`` sets (their values are never returned)."""
    return tuple(name for name in secret_env_names() if env.get(name))


def environ() -> Mapping[str, str]:
    """The process environment, for callers that must not read it themselves."""
    return os.environ
