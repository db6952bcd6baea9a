"""``openkms config show``: the effective settings, as TOML or JSON, secrets masked.

The settings are resolved exactly as the server resolves them (``load_settings``: defaults <
the TOML file < ``OPENKMS_*`` variables < command-line values). Secrets are never shown:
settings named like a PIN, passphrase, secret, password or key that hold a value rather than
a file name or label appear as ``"***"``, and the secret environment variables
(``OPENKMS_ROOT_KEY``, ...) are listed as ``"***"`` when set.

The TOML output can be saved and used as a configuration file (unset settings and the
secret variables appear as comments).
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from openkms.config import (
    ENV_CONFIG,
    Settings,
    SettingsError,
    environ,
    load_settings,
    parse_setting,
    secrets_set_in,
)

__all__ = ["MASK", "is_secret_setting", "main", "register", "settings_view", "to_toml"]

MASK = "***"
_SECRET_WORDS = frozenset({"pin", "passphrase", "secret", "password", "key"})
# Settings with a secret-sounding name that hold a file name, a label or a flag.
_NOT_SECRET_SUFFIXES = ("_file", "_path", "_dir", "_label", "_cert", "_module")
_NOT_SECRET = frozenset({"tls_key"})  # the key's file name
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def is_secret_setting(name: str, value: object) -> bool:
    """True for a setting whose value is key material or a credential."""
    if not isinstance(value, str) or not value:
        return False
    if name in _NOT_SECRET or name.endswith(_NOT_SECRET_SUFFIXES):
        return False
    return any(part in _SECRET_WORDS for part in name.lower().split("_"))


def _derived(settings: Settings) -> dict[str, str]:
    """What an unset optional setting means."""
    return {
        "database": f"{settings.database_path}",
        "root_key_file": f"{settings.root_key_path}",
        "runtime_dir": f"{settings.runtime_path}",
        "audit_log": f"{settings.audit_path}",
        "metrics_port": "the service port",
    }


def settings_view(settings: Settings) -> dict[str, Any]:
    """The settings as plain values, secrets masked, quota overrides as a table."""
    view: dict[str, Any] = {}
    for field in dataclasses.fields(settings):
        value = getattr(settings, field.name)
        if field.name == "rate_limit_overrides":
            value = {quota: ("unlimited" if rate is None else rate) for quota, rate in value}
        elif is_secret_setting(field.name, value):
            value = MASK
        elif isinstance(value, tuple):
            value = list(value)
        view[field.name] = value
    return view


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else orjson.dumps(key).decode()


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:  # nan
            raise ValueError("nan cannot be written")
        if value in (float("inf"), float("-inf")):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return orjson.dumps(value).decode()
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def to_toml(
    view: Mapping[str, Any],
    *,
    notes: Mapping[str, str] | None = None,
    secrets: Sequence[str] = (),
    source: str | None = None,
) -> str:
    lines = ["# openkms effective settings (openkms config show)"]
    lines.append(f"# configuration file: {source}" if source else "# configuration file: none")
    tables: list[tuple[str, Mapping[str, Any]]] = []
    for name, value in view.items():
        if isinstance(value, Mapping):
            tables.append((name, value))
        elif value is None:
            meaning = (notes or {}).get(name)
            lines.append(f"# {name} is not set" + (f" (means: {meaning})" if meaning else ""))
        else:
            lines.append(f"{_toml_key(name)} = {_toml_value(value)}")
    for name, table in tables:
        lines.append("")
        lines.append(f"[{_toml_key(name)}]")
        for key, value in table.items():
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    if secrets:
        lines.append("")
        lines.append("# Secrets set in the environment (never shown):")
        lines.extend(f'# {name} = "{MASK}"' for name in secrets)
    return "\n".join(lines) + "\n"


def cmd_show(args: argparse.Namespace) -> int:
    env = environ()
    overrides: dict[str, Any] = {}
    try:
        for item in args.set or ():
            name, sep, text = item.partition("=")
            if not sep:
                raise SettingsError(f"--set: {item!r} is not NAME=VALUE")
            overrides[name.strip()] = parse_setting(name.strip(), text)
        if args.dev:
            overrides["dev"] = True
        if args.rate_limits is not None:
            overrides["rate_limits_enabled"] = args.rate_limits
        settings = load_settings(args.config, env, overrides)
    except SettingsError as exc:
        print(f"openkms: {exc}", file=sys.stderr)
        return 2
    view = settings_view(settings)
    secrets = secrets_set_in(env)
    source = args.config or env.get(ENV_CONFIG) or None
    if args.format == "json":
        document = dict(view)
        if secrets:
            document["environment_secrets"] = dict.fromkeys(secrets, MASK)
        sys.stdout.write(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        sys.stdout.write(
            to_toml(view, notes=_derived(settings), secrets=secrets, source=str(source or ""))
        )
    return 0


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Adds ``config show`` to ``openkms``'s subcommands."""
    config: argparse.ArgumentParser = subparsers.add_parser(
        "config", help="show the effective configuration"
    )
    sub = config.add_subparsers(dest="config_command", required=True)
    show = sub.add_parser(
        "show",
        help="print the effective settings (file < environment < command line), secrets masked",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    show.add_argument("--config", help=f"TOML configuration file (default ${ENV_CONFIG})")
    show.add_argument("--format", choices=("toml", "json"), default="toml")
    show.add_argument(
        "--set",
        action="append",
        metavar="NAME=VALUE",
        help="a command-line value for a setting (written as in OPENKMS_<NAME>); repeatable",
    )
    show.add_argument("--dev", action="store_true", help="as with openkms serve --dev")
    show.add_argument(
        "--rate-limits",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="as with openkms serve --rate-limits/--no-rate-limits",
    )
    show.set_defaults(func=cmd_show)
    return config


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="openkms")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
