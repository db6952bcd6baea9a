"""Configuration: TOML file < OPENKMS_* environment < command line, validation, `config show`,
the documentation of every option, and the FIPS-approved list."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from openkms.cli.config_cmd import MASK, is_secret_setting
from openkms.cli.config_cmd import main as config_main
from openkms.config import (
    ENV_ROOT_KEY,
    Settings,
    SettingsError,
    load_settings,
    parse_setting,
    reserved_env_names,
)
from openkms.fips import fips_allowed, fips_refusal

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def write(tmp_path: Path, text: str, name: str = "openkms.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- Sources and precedence ---------------------------------------------------------------------
def test_defaults() -> None:
    assert load_settings(None, {}, {}) == Settings()


def test_precedence_defaults_file_env_command_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        port = 5000
        workers = 3
        log_level = "info"
        cache_ttl_seconds = 2
        """,
    )
    env = {"OPENKMS_PORT": "6000", "OPENKMS_LOG_LEVEL": "debug"}
    settings = load_settings(path, env, {"port": 7000, "host": None})
    assert settings.port == 7000  # command line
    assert settings.log_level == "debug"  # environment over file
    assert settings.workers == 3  # file
    assert settings.cache_ttl_seconds == 2.0 and isinstance(settings.cache_ttl_seconds, float)
    assert settings.host == "127.0.0.1"  # None on the command line: not given


def test_config_file_from_environment(tmp_path: Path) -> None:
    path = write(tmp_path, 'log_format = "json"\n')
    assert load_settings(None, {"OPENKMS_CONFIG": str(path)}, {}).log_format == "json"


def test_every_setting_type_from_the_environment(tmp_path: Path) -> None:
    env = {
        "OPENKMS_DATA_DIR": str(tmp_path),
        "OPENKMS_WORKERS": "4",
        "OPENKMS_FIPS_MODE": "yes",
        "OPENKMS_METRICS_ENABLED": "off",
        "OPENKMS_METRICS_PORT": "9100",
        "OPENKMS_SHUTDOWN_TIMEOUT_SECONDS": "2.5",
        "OPENKMS_AUDIT_LOG": "",  # an empty string is a value ("off"), not "unset"
        "OPENKMS_RATE_LIMIT_OVERRIDES": '{"CreateKey": 50, "symmetric": "unlimited"}',
    }
    settings = load_settings(None, env, {})
    assert settings.data_dir == str(tmp_path)
    assert settings.workers == 4
    assert settings.fips_mode is True
    assert settings.metrics_enabled is False
    assert settings.metrics_port == 9100
    assert settings.shutdown_timeout_seconds == 2.5
    assert settings.audit_log == ""
    assert settings.rate_limit_overrides == (("CreateKey", 50.0), ("symmetric", None))
    assert load_settings(None, {"OPENKMS_METRICS_PORT": ""}, {}).metrics_port is None


def test_reserved_variables_are_not_settings() -> None:
    env = {
        ENV_ROOT_KEY: "a secret",
        "OPENKMS_ROOT_KEY_PASSPHRASE": "another",
        "OPENKMS_SETTINGS_JSON": "{}",
        "OPENKMS_CONFIG": "",
        "AWS_REGION": "us-east-1",  # not ours
    }
    assert load_settings(None, env, {}) == Settings()
    assert {ENV_ROOT_KEY, "OPENKMS_SETTINGS_JSON", "OPENKMS_CONFIG"} <= reserved_env_names()


def test_rate_limit_overrides_table_in_toml(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [rate_limit_overrides]
        symmetric = 20000
        CreateKey = inf
        DescribeKey = "unlimited"
        "GenerateDataKeyPair:RSA_2048" = 0.5
        """,
    )
    settings = load_settings(path, {}, {})
    assert dict(settings.rate_limit_overrides) == {
        "symmetric": 20000.0,
        "CreateKey": None,
        "DescribeKey": None,
        "GenerateDataKeyPair:RSA_2048": 0.5,
    }
    # It survives the hand-over to worker processes.
    assert Settings.from_json(settings.to_json()) == settings


# --- Errors name the setting -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("prot = 1\n", r"prot: unknown setting \(in .*openkms.toml\)"),
        ('port = "4566"\n', "port: expected an integer, got a string"),
        ("workers = 1.5\n", "workers: expected an integer, got a number"),
        ("dev = 1\n", "dev: expected true or false, got an integer"),
        ("host = 127\n", "host: expected a string, got an integer"),
        ("cache_ttl_seconds = true\n", "cache_ttl_seconds: expected a number"),
        ("port = 70000\n", "port: 70000 is not a TCP port"),
        ('log_format = "xml"\n', "log_format: 'xml' is not one of text, json"),
        ('log_level = "loud"\n', "log_level: 'loud' is not one of"),
        ("metrics_port = 4566\n", "metrics_port: must differ from port"),
        ("shutdown_timeout_seconds = -1\n", "shutdown_timeout_seconds: must be 0 or more"),
        ("audit_flush_seconds = 11\n", "audit_flush_seconds: from 0 to 10"),
        ("[rate_limit_overrides]\nCreateKeys = 1\n", "rate_limit_overrides: unknown quota"),
        ("[rate_limit_overrides]\nCreateKey = 0\n", "CreateKey: the rate must be greater"),
        ("[rate_limit_overrides]\nCreateKey = true\n", "rate_limit_overrides.CreateKey"),
        ('tls_cert = "/nonexistent/cert.pem"\n', "tls_key: tls_cert and tls_key must be given"),
        ("port = \n", "is not valid TOML"),
    ],
)
def test_file_errors_name_the_setting(tmp_path: Path, toml: str, message: str) -> None:
    path = write(tmp_path, toml)
    with pytest.raises(SettingsError, match=message):
        load_settings(path, {}, {})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OPENKMS_PROT": "1"}, r"OPENKMS_PROT: unknown setting \(environment variable\)"),
        ({"OPENKMS_PORT": "x"}, r"port: 'x' is not an integer \(from OPENKMS_PORT\)"),
        ({"OPENKMS_DEV": "maybe"}, "dev: 'maybe' is not a boolean"),
        ({"OPENKMS_CACHE_TTL_SECONDS": "nan"}, "cache_ttl_seconds: 'nan' is not a number"),
        ({"OPENKMS_RATE_LIMIT_OVERRIDES": "CreateKey"}, "'CreateKey' is not QUOTA=RATE"),
        ({"OPENKMS_RATE_LIMIT_OVERRIDES": "CreateKey=fast"}, "CreateKey: 'fast' is not a number"),
        ({"OPENKMS_CONFIG": "/nonexistent/openkms.toml"}, "config: cannot read"),
    ],
)
def test_environment_errors_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(None, env, {})


def test_command_line_errors_name_the_setting() -> None:
    with pytest.raises(SettingsError, match=r"colour: unknown setting \(command line\)"):
        load_settings(None, {}, {"colour": "blue"})
    with pytest.raises(SettingsError, match="workers: expected an integer"):
        load_settings(None, {}, {"workers": "2"})
    with pytest.raises(SettingsError, match="nope: unknown setting"):
        parse_setting("nope", "1")
    assert parse_setting("metrics_port", "9100") == 9100


# --- Transport rules ---------------------------------------------------------------------------
def test_plain_http_only_on_loopback_unless_allowed(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="host: plain HTTP on the non-loopback address"):
        load_settings(None, {}, {"host": "0.0.0.0"})
    allowed = load_settings(None, {}, {"host": "0.0.0.0", "allow_plain_http_non_loopback": True})
    assert allowed.host == "0.0.0.0"
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        assert load_settings(None, {}, {"host": host}).host == host
    cert, key = write(tmp_path, "cert", "c.pem"), write(tmp_path, "key", "k.pem")
    tls = load_settings(None, {}, {"host": "0.0.0.0", "tls_cert": str(cert), "tls_key": str(key)})
    assert tls.tls_enabled


def test_tls_files_must_exist(tmp_path: Path) -> None:
    cert = write(tmp_path, "cert", "c.pem")
    with pytest.raises(SettingsError, match=r"tls_key: .* does not exist"):
        load_settings(None, {}, {"tls_cert": str(cert), "tls_key": str(tmp_path / "missing")})


def test_dev_mode_turns_rate_limits_off_unless_asked(tmp_path: Path) -> None:
    assert load_settings(None, {}, {}).rate_limits_enabled is True
    assert load_settings(None, {}, {"dev": True}).rate_limits_enabled is False
    assert load_settings(None, {}, {"dev": True, "rate_limits_enabled": True}).rate_limits_enabled
    assert load_settings(
        None, {"OPENKMS_RATE_LIMITS_ENABLED": "1"}, {"dev": True}
    ).rate_limits_enabled
    path = write(tmp_path, "dev = true\nrate_limits_enabled = true\n")
    assert load_settings(path, {}, {}).rate_limits_enabled


def test_derived_paths(tmp_path: Path) -> None:
    settings = Settings(data_dir=str(tmp_path))
    assert settings.runtime_path == tmp_path / "run"
    assert settings.metrics_multiproc_path == tmp_path / "run" / "metrics"
    assert settings.ratelimit_path == tmp_path / "run" / "ratelimit.bin"
    assert Settings(runtime_dir="/dev/shm/openkms").runtime_path == Path("/dev/shm/openkms")


# --- openkms config show -------------------------------------------------------------------------
def test_config_show_toml_round_trips(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENKMS_CONFIG", raising=False)
    path = write(
        tmp_path,
        "workers = 2\n"
        'log_format = "json"\n'
        "[rate_limit_overrides]\n"
        '"GenerateDataKeyPair:RSA_2048" = 40\n'
        'CreateKey = "unlimited"\n',
    )
    code = config_main(["config", "show", "--config", str(path), "--set", "port=5005"])
    assert code == 0
    shown = capsys.readouterr().out
    assert "workers = 2" in shown and "port = 5005" in shown
    assert '"GenerateDataKeyPair:RSA_2048" = 40.0' in shown
    saved = write(tmp_path, shown, "shown.toml")
    again = load_settings(saved, {}, {})
    assert again == load_settings(path, {}, {"port": 5005})


def test_config_show_masks_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_ROOT_KEY, "c2VjcmV0LXJvb3Qta2V5LW1hdGVyaWFs")
    monkeypatch.setenv("OPENKMS_ROOT_KEY_PASSPHRASE", "correct horse battery staple")
    monkeypatch.delenv("OPENKMS_CONFIG", raising=False)
    for fmt in ("toml", "json"):
        assert config_main(["config", "show", "--format", fmt]) == 0
        shown = capsys.readouterr().out
        assert "c2VjcmV0" not in shown and "horse" not in shown
        assert ENV_ROOT_KEY in shown and MASK in shown
    document = json.loads(shown)
    assert document["environment_secrets"] == {
        ENV_ROOT_KEY: MASK,
        "OPENKMS_ROOT_KEY_PASSPHRASE": MASK,
    }


@pytest.mark.parametrize(
    ("name", "value", "secret"),
    [
        ("root_key", "base64", True),
        ("pkcs11_pin", "1234", True),
        ("hsm_passphrase", "x", True),
        ("webhook_secret", "x", True),
        ("tls_key", "/etc/openkms/key.pem", False),
        ("root_key_file", "/var/lib/openkms/root.key", False),
        ("pkcs11_pin_file", "/run/pin", False),
        ("pkcs11_key_label", "openkms-root", False),
        ("pkcs11_create_key", True, False),
        ("accept_any_credentials", True, False),
        ("data_dir", "./x", False),
        ("root_key", None, False),
    ],
)
def test_secret_settings(name: str, value: object, secret: bool) -> None:
    assert is_secret_setting(name, value) is secret


def test_config_show_reports_errors(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENKMS_PORTT", "1")
    assert config_main(["config", "show"]) == 2
    assert "OPENKMS_PORTT: unknown setting" in capsys.readouterr().err


# --- Documentation -------------------------------------------------------------------------------
DOCUMENTED = (
    "data_dir",
    "host",
    "port",
    "workers",
    "dev",
    "accept_any_credentials",
    "account_id",
    "partition",
    "database",
    "root_key_file",
    "max_body_bytes",
    "max_clock_skew_seconds",
    "cache_ttl_seconds",
    "scheduler_interval_seconds",
    "usage_flush_seconds",
    "log_level",
    "audit_log",
    "audit_stdout",
    "audit_fail_closed",
    "audit_max_bytes",
    "audit_backups",
    "tls_cert",
    "tls_key",
    "allow_plain_http_non_loopback",
    "fips_mode",
    "metrics_enabled",
    "metrics_port",
    "rate_limits_enabled",
    "rate_limit_overrides",
    "log_format",
    "shutdown_timeout_seconds",
    "runtime_dir",
    "console_enabled",
    "console_session_seconds",
)


def test_options_are_documented() -> None:
    text = DOCS.read_text()
    fields = {f.name for f in dataclasses.fields(Settings)}
    for name in DOCUMENTED:
        assert name in fields, name
        assert f"`{name}`" in text, f"{name} is not documented in {DOCS}"
        assert f"`OPENKMS_{name.upper()}`" in text, f"OPENKMS_{name.upper()} is not documented"


# --- FIPS ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("key_spec", "algorithm"),
    [
        ("SYMMETRIC_DEFAULT", "SYMMETRIC_DEFAULT"),
        ("SYMMETRIC_DEFAULT", None),
        ("AES_256", None),
        ("RSA_2048", "RSAES_OAEP_SHA_256"),
        ("RSA_3072", "RSAES_OAEP_SHA_1"),
        ("RSA_4096", "RSASSA_PSS_SHA_512"),
        ("RSA_2048", "RSASSA_PKCS1_V1_5_SHA_256"),
        ("ECC_NIST_P256", "ECDSA_SHA_256"),
        ("ECC_NIST_P521", "ECDH"),
        ("ECC_NIST_EDWARDS25519", "ED25519_SHA_512"),
        ("ECC_NIST_EDWARDS25519", "ED25519_PH_SHA_512"),
        ("HMAC_224", "HMAC_SHA_224"),
        ("HMAC_512", "HMAC_SHA_512"),
        ("ML_DSA_87", "ML_DSA_SHAKE_256"),
        ("ML_KEM_768", "ML_KEM"),
        ("RSA_2048", "RSA_AES_KEY_WRAP_SHA_256"),
        (None, None),  # GenerateRandom
    ],
)
def test_fips_approved(key_spec: str | None, algorithm: str | None) -> None:
    assert fips_allowed(key_spec, algorithm)
    assert fips_refusal(key_spec, algorithm) is None


@pytest.mark.parametrize(
    ("key_spec", "algorithm", "reason"),
    [
        ("ECC_SECG_P256K1", "ECDSA_SHA_256", "secp256k1"),
        ("ECC_SECG_P256K1", "ECDH", "secp256k1"),
        ("ECC_SECG_P256K1", None, "secp256k1"),
        ("SM2", "SM2DSA", "SM2"),
        ("SM2", None, "SM2"),
        ("RSA_2048", "SM2PKE", "SM2"),
        ("RSA_2048", "RSAES_PKCS1_V1_5", "PKCS#1 v1.5"),
        ("RSA_1024", None, "not FIPS 140-3 approved"),
        ("SYMMETRIC_DEFAULT", "MADE_UP", "not FIPS 140-3 approved"),
    ],
)
def test_fips_refused(key_spec: str | None, algorithm: str | None, reason: str) -> None:
    assert not fips_allowed(key_spec, algorithm)
    message = fips_refusal(key_spec, algorithm)
    assert message is not None and reason in message and "FIPS mode" in message


def test_every_key_spec_is_classified() -> None:
    from openkms.types import DataKeyPairSpec, KeySpec

    refused = {"ECC_SECG_P256K1", "SM2"}
    for spec in [*KeySpec, *DataKeyPairSpec]:
        assert fips_allowed(spec.value, None) is (spec.value not in refused), spec


# --- The default worker count ----------------------------------------------------------------


def test_workers_default_is_one_per_usable_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    from openkms import config

    monkeypatch.setattr(config, "usable_cpus", lambda: 3)
    assert Settings().workers == 0
    assert Settings().resolved_workers() == 3
    assert Settings(workers=2).resolved_workers() == 2  # explicit counts win
    assert Settings(sealed=True).validate().resolved_workers() == 1  # sealed: one worker
    monkeypatch.setattr(config, "usable_cpus", lambda: 64)
    assert Settings().resolved_workers() == config.MAX_AUTO_WORKERS


def test_workers_negative_refused() -> None:
    with pytest.raises(SettingsError, match="workers: must be at least 1"):
        Settings(workers=-1).validate()


def test_usable_cpus_is_positive_and_within_the_affinity_mask() -> None:
    from openkms.config import usable_cpus

    assert 1 <= usable_cpus() <= len(os.sched_getaffinity(0))
