"""``openkms rootkey rotate|status|split`` and ``openkms unseal``: the root key's life.

    openkms rootkey rotate --data-dir D --to-file NEW.key           # pass 1 (servers keep going)
    openkms rootkey rotate --data-dir D --to-pkcs11 --pkcs11-module M --pkcs11-token-label T \\
        --pkcs11-key-label L [--pkcs11-pin-file F] [--create-key]
    # restart every server on the new root, then:
    openkms rootkey rotate --data-dir D --finish                     # pass 2
    openkms rootkey rotate --data-dir D --abort                      # undo an unfinished pass 1
    openkms rootkey status --data-dir D [--scan]
    openkms rootkey split --data-dir D --threshold 3 --shares 5 [--delete-key-file]
    openkms unseal --endpoint http://127.0.0.1:4566 [SHARE | -]

See docs/hsm.md for the procedures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson

from openkms.config import (
    Settings,
    SettingsError,
    pkcs11_pin,
    root_key_from_env,
    root_key_passphrase_from_env,
    with_root_env,
)
from openkms.rootoftrust.base import RootOfTrust
from openkms.rootoftrust.rotate import (
    ROOT_CHECK_META,
    RotationError,
    RotationState,
    abort,
    file_descriptor,
    finish,
    load_state,
    open_described,
    pkcs11_descriptor,
    rotate,
    scan,
)
from openkms.rootoftrust.shamir import (
    MAX_SHARES,
    UNSEAL_PATH,
    ShareError,
    check_value_of,
    split_key,
)

SEALING_META = "root_key_sealing"


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="data directory (default ./.openkms)")
    parser.add_argument("--database", help="SQLite database path (default <data-dir>/openkms.db)")
    parser.add_argument(
        "--root-key-file", help="the current root key file (default <data-dir>/root.key)"
    )


def _pkcs11_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("PKCS#11 (default: the OPENKMS_PKCS11_* environment)")
    group.add_argument("--pkcs11-module", help="path of the PKCS#11 library")
    group.add_argument("--pkcs11-token-label", help="label of the token")
    group.add_argument("--pkcs11-key-label", help="label of the new root key in the token")
    group.add_argument(
        "--pkcs11-pin-file", help="file whose first line is the user PIN (else OPENKMS_PKCS11_PIN)"
    )


def _settings(args: argparse.Namespace) -> Settings:
    changes = {
        name: getattr(args, name)
        for name in ("data_dir", "database", "root_key_file")
        if getattr(args, name, None) is not None
    }
    return with_root_env(Settings(**changes)).validate()


def _open_storage(settings: Settings) -> Any:
    from openkms.http.wiring import open_storage

    return open_storage(settings)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _progress(name: str, done: int, total: int) -> None:
    if done == total or done % 1000 < 100:
        _say(f"  {name}: {done}/{total}")


def _print_json(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


def _state_json(state: RotationState) -> dict[str, Any]:
    return {
        "Phase": state.phase,
        "From": state.source,
        "To": state.target,
        "FromCheckValue": state.source_check,
        "ToCheckValue": state.target_check,
        "Rewrapped": state.counts,
        "Unreadable": len(state.unreadable),
        "UnreadableSecrets": state.unreadable[:20],
    }


# --- the roots ---------------------------------------------------------------------------------
def _current_root(settings: Settings) -> tuple[RootOfTrust, dict[str, Any]]:
    """The root the servers run on now (never created here), with its descriptor."""
    if settings.root_of_trust == "pkcs11":
        from openkms.http.wiring import open_base_root

        root = open_base_root(settings.replace(pkcs11_create_key=False))
        assert settings.pkcs11_module and settings.pkcs11_token_label
        assert settings.pkcs11_key_label
        return root, pkcs11_descriptor(
            os.path.realpath(settings.pkcs11_module),
            settings.pkcs11_token_label,
            settings.pkcs11_key_label,
        )
    from_env = root_key_from_env()
    if from_env:
        from openkms.rootoftrust.file import root_from_env_value

        return root_from_env_value(from_env), {"kind": "env"}
    from openkms.rootoftrust.file import load_root_key_file

    path = settings.root_key_path
    return load_root_key_file(path, root_key_passphrase_from_env()), file_descriptor(path)


def _pin(settings: Settings, args: argparse.Namespace) -> str | None:
    pin_file = getattr(args, "pkcs11_pin_file", None)
    return pkcs11_pin(settings.replace(pkcs11_pin_file=pin_file) if pin_file else settings)


def _target_root(
    settings: Settings, args: argparse.Namespace
) -> tuple[RootOfTrust, dict[str, Any]]:
    if args.to_file:
        from openkms.rootoftrust.file import create_root_key_file, load_root_key_file

        path = Path(args.to_file)
        passphrase = root_key_passphrase_from_env()
        if not path.exists():
            create_root_key_file(path, passphrase)
            _say(f"created the new root key file {path}")
        return load_root_key_file(path, passphrase), file_descriptor(path)
    from openkms.rootoftrust.pkcs11 import Pkcs11Root

    module = args.pkcs11_module or settings.pkcs11_module
    token = args.pkcs11_token_label or settings.pkcs11_token_label
    label = args.pkcs11_key_label or settings.pkcs11_key_label
    for value, flag in ((module, "module"), (token, "token-label"), (label, "key-label")):
        if not value:
            raise SettingsError(f"--to-pkcs11 needs --pkcs11-{flag}")
    assert module and token and label
    root = Pkcs11Root(module, token, label, _pin(settings, args), create=args.create_key)
    if root.created:
        _say(f"generated the root key {label!r} in token {token!r}")
    return root, pkcs11_descriptor(root.module, token, label)


# --- commands ----------------------------------------------------------------------------------
def cmd_rotate(args: argparse.Namespace) -> int:
    settings = _settings(args)
    storage = _open_storage(settings)
    try:
        if args.finish:
            return _finish(storage, settings, args)
        if args.abort:
            source, _ = _current_root(settings)
            state = abort(storage, source, batch_size=args.batch_size, progress=_progress)
            _print_json(_state_json(state))
            _say("rotation aborted: every secret is wrapped by the current root only again")
            return 0
        if not args.to_file and not args.to_pkcs11:
            raise SettingsError("rotate: give --to-file, --to-pkcs11, --finish or --abort")
        source, source_desc = _current_root(settings)
        target, target_desc = _target_root(settings, args)
        _say(f"re-wrapping every secret for the new root (check value {target.check_value()})")
        state = rotate(
            storage,
            source,
            target,
            source_desc,
            target_desc,
            batch_size=args.batch_size,
            progress=_progress,
        )
        _print_json(_state_json(state))
        _say(
            "pass 1 done: the database now belongs to the new root key (servers can no longer "
            "start on the old one). Restart every server on the new root now, then run\n"
            f"  openkms rootkey rotate --data-dir {settings.data_dir} --finish"
        )
        return 0
    except (RotationError, ShareError) as exc:
        print(f"openkms: {exc}", file=sys.stderr)
        return 2
    finally:
        storage.close()


def _finish(storage: Any, settings: Settings, args: argparse.Namespace) -> int:
    state = load_state(storage)
    if state is None or state.phase != "restart":
        raise RotationError("no rotation waits to be finished")
    pin = _pin(settings, args)
    passphrase = root_key_passphrase_from_env()
    target = open_described(state.target, passphrase=passphrase, pin=pin)
    source: RootOfTrust | None
    try:
        source = open_described(state.source, passphrase=passphrase, pin=pin)
    except Exception as exc:
        if not args.without_old_root:
            raise RotationError(
                f"the old root cannot be opened ({type(exc).__name__}: {exc}); secrets written "
                "under it after pass 1 need it. Give --without-old-root to finish without it "
                "(those secrets are then reported and left unreadable)"
            ) from None
        source = None
    state = finish(storage, target, source, batch_size=args.batch_size, progress=_progress)
    _print_json(_state_json(state))
    if state.unreadable:
        _say(f"WARNING: {len(state.unreadable)} secrets could not be read by either root")
    _say("rotation finished: every secret is wrapped by the new root key only")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    settings = _settings(args)
    storage = _open_storage(settings)
    try:
        state = load_state(storage)
        sealing = storage.get_meta(SEALING_META)
        result: dict[str, Any] = {
            "CheckValue": storage.get_meta(ROOT_CHECK_META),
            "Rotation": _state_json(state) if state is not None else None,
            "Sealing": orjson.loads(sealing) if sealing else None,
        }
        if args.scan:
            from openkms.http.wiring import open_root

            root = open_root(settings)
            result["ConfiguredCheckValue"] = root.check_value()
            describe = getattr(getattr(root, "current", root), "describe", None)
            if callable(describe):
                result["ConfiguredRoot"] = describe()
            result["Scan"] = scan(storage, root)
    finally:
        storage.close()
    _print_json(result)
    return 0


def _root_key_bytes(settings: Settings) -> tuple[bytes, Path | None]:
    import base64

    from openkms.rootoftrust.file import _decode, load_root_key_file

    from_env = root_key_from_env()
    if from_env:
        key = base64.b64decode(from_env, validate=True)
        if len(key) != 32:
            raise SettingsError("OPENKMS_ROOT_KEY must be the base64 of 32 bytes")
        return key, None
    path = settings.root_key_path
    passphrase = root_key_passphrase_from_env()
    load_root_key_file(path, passphrase)  # the same checks as a server start (mode 0600 ...)
    return _decode(path.read_text("ascii"), passphrase), path


def cmd_split(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if not 2 <= args.threshold <= args.shares <= MAX_SHARES:
        raise SettingsError(f"split: need 2 <= --threshold <= --shares <= {MAX_SHARES}")
    key, path = _root_key_bytes(settings)
    storage = _open_storage(settings)
    try:
        stored = storage.get_meta(ROOT_CHECK_META)
        check = check_value_of(key)
        if stored is not None and stored != check:
            print(
                f"openkms: the root key (check value {check}) is not this database's ({stored})",
                file=sys.stderr,
            )
            return 2
        shares = split_key(key, args.threshold, args.shares)
        split_id = shares[0].split(".")[3]
        storage.set_meta(
            SEALING_META,
            orjson.dumps(
                {
                    "SplitId": split_id,
                    "Threshold": args.threshold,
                    "Shares": args.shares,
                    "CheckValue": check,
                    "At": time.time(),
                }
            ).decode(),
        )
        if stored is None:
            storage.set_meta(ROOT_CHECK_META, check)
    finally:
        storage.close()
    for share in shares:
        sys.stdout.write(share + "\n")
    sys.stdout.flush()
    _say(
        f"{args.shares} shares printed, any {args.threshold} of which rebuild the root key. "
        "Give each to a different keeper; start the server with 'openkms serve --sealed' and "
        "enter them with 'openkms unseal'."
    )
    if args.delete_key_file and path is not None:
        size = path.stat().st_size
        with open(path, "r+b") as handle:
            handle.write(b"\0" * size)
            handle.flush()
            os.fsync(handle.fileno())
        path.unlink()
        _say(f"deleted {path}: the shares are now the only copy of the root key")
    return 0


def cmd_unseal(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {}
    if args.reset:
        body = {"reset": True}
    elif not args.status:
        share = args.share
        if share is None or share == "-":
            share = sys.stdin.readline()
        share = share.strip()
        if not share:
            raise SettingsError("unseal: no share given")
        body = {"share": share}
    url = args.endpoint.rstrip("/") + UNSEAL_PATH
    if not url.startswith(("http://", "https://")):
        raise SettingsError("unseal: --endpoint must be an http:// or https:// URL")
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=args.timeout) as resp:  # noqa: S310
            status, payload = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, payload = exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        print(f"openkms: cannot reach {url}: {exc}", file=sys.stderr)
        return 1
    text = payload.decode("utf-8", "replace")
    print(text)
    return 0 if status == 200 else 1


def register(sub: Any) -> None:
    """Adds ``rootkey`` and ``unseal`` to the ``openkms`` command line."""
    rootkey = sub.add_parser("rootkey", help="rotate, inspect or split the root key")
    rsub = rootkey.add_subparsers(dest="rootkey_command", required=True)

    rot = rsub.add_parser(
        "rotate",
        help="re-wrap every secret under a new root key (docs/hsm.md)",
        description="Pass 1 with --to-file or --to-pkcs11 (servers keep serving); restart the "
        "servers on the new root; pass 2 with --finish. --abort undoes an unfinished pass 1.",
    )
    _common(rot)
    target = rot.add_mutually_exclusive_group()
    target.add_argument("--to-file", help="the new root key file (created if absent)")
    target.add_argument("--to-pkcs11", action="store_true", help="a key in a PKCS#11 token")
    target.add_argument("--finish", action="store_true", help="pass 2, after the restart")
    target.add_argument("--abort", action="store_true", help="undo an unfinished pass 1")
    _pkcs11_options(rot)
    rot.add_argument(
        "--create-key", action="store_true", help="generate the PKCS#11 key if it is absent"
    )
    rot.add_argument(
        "--without-old-root",
        action="store_true",
        help="--finish even if the old root cannot be opened",
    )
    rot.add_argument("--batch-size", type=int, default=100, help="secrets per transaction (100)")
    rot.set_defaults(func=cmd_rotate)

    status = rsub.add_parser("status", help="the root key's check value, rotation and sealing")
    _common(status)
    status.add_argument(
        "--scan", action="store_true", help="also open the configured root and count secrets"
    )
    status.set_defaults(func=cmd_status)

    split = rsub.add_parser("split", help="split the file root key into Shamir shares")
    _common(split)
    split.add_argument("--threshold", "-k", type=int, required=True, help="shares needed")
    split.add_argument("--shares", "-n", type=int, required=True, help="shares made")
    split.add_argument(
        "--delete-key-file",
        action="store_true",
        help="overwrite and delete the root key file once the shares are printed",
    )
    split.set_defaults(func=cmd_split)

    unseal = sub.add_parser("unseal", help="enter a root key share into a sealed server")
    unseal.add_argument("--endpoint", required=True, help="the server, e.g. http://127.0.0.1:4566")
    unseal.add_argument("share", nargs="?", help="the share ('-' or absent: read from stdin)")
    unseal.add_argument("--status", action="store_true", help="only show the seal status")
    unseal.add_argument("--reset", action="store_true", help="forget the shares entered so far")
    unseal.add_argument("--timeout", type=float, default=10.0, help="seconds (10)")
    unseal.set_defaults(func=cmd_unseal)
