"""``openkms encrypt`` and ``openkms decrypt``: files, stdin/stdout and directories, in the AWS
Encryption SDK message format (interoperable with ``aws-encryption-cli``).

KMS is reached through boto3: endpoint, region and credentials from the environment (for
openkms, ``AWS_ENDPOINT_URL_KMS``) or from ``--endpoint-url``, ``--region``, ``--profile``.

Exit status: 0 success; 2 usage or I/O error (unreadable input, output exists); 3 key problem
(wrong key, key not found or disabled, KMS unreachable); 4 permission denied by KMS; 5 invalid
message (tampered, truncated, malformed, or its encryption context lacks what
``--require-context`` requires); 1 anything else. A failed decryption never leaves a partial
plaintext file: output goes to a temporary file beside the target, renamed into place only
once the whole message has verified. (Written to stdout, plaintext is released frame by frame
as each frame verifies; the exit status then tells whether the whole message verified.)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from openkms.envelope.cache import CacheLimits
from openkms.envelope.errors import (
    AuthenticationError,
    CommitmentPolicyError,
    EncryptionContextError,
    EnvelopeError,
    KMSCallError,
    MalformedMessageError,
    NoDecryptableKeyError,
    TruncatedMessageError,
    UnsupportedSuiteError,
)
from openkms.envelope.suites import (
    DEFAULT_COMMITMENT_POLICY,
    SUITES,
    UNSIGNED_SUITE,
    CommitmentPolicy,
    suite_by_name,
)

__all__ = ["main", "register"]

EXIT_OK = 0
EXIT_OTHER = 1
EXIT_USAGE = 2
EXIT_KEY = 3
EXIT_DENIED = 4
EXIT_INVALID = 5

SUFFIX = ".encrypted"
DECRYPTED_SUFFIX = ".decrypted"
PROGRESS_MIN_BYTES = 8 * 1024 * 1024
_IO_BUFFER = 1024 * 1024

_EXIT_HELP = (
    "Exit status: 0 OK; 2 usage or I/O error; 3 wrong, unknown or disabled key, or KMS "
    "unreachable; 4 permission denied; 5 invalid message (tampered, truncated, malformed, "
    "context mismatch); 1 other."
)


class UsageError(Exception):
    """A problem with the command line or the files named on it (exit 2)."""


# --- argument parsing ----------------------------------------------------------------------------
def _pair(value: str) -> tuple[str, str]:
    key, sep, val = value.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{value!r}: expected KEY=VALUE")
    return key, val


def _requirement(value: str) -> tuple[str, str | None]:
    key, sep, val = value.partition("=")
    if not key:
        raise argparse.ArgumentTypeError(f"{value!r}: expected KEY=VALUE or KEY")
    return key, (val if sep else None)


def _size(value: str) -> int:
    text = value.strip().upper().removesuffix("B").removesuffix("I")
    scale = 1
    for suffix, factor in (("K", 1024), ("M", 1024**2), ("G", 1024**3), ("T", 1024**4)):
        if text.endswith(suffix):
            text, scale = text[:-1], factor
            break
    try:
        number = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: expected a size like 4096, 64K, 1M") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"{value!r}: a size cannot be negative")
    return int(number * scale)


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: expected a number of seconds") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"{value!r}: must be greater than 0")
    return number


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", metavar="INPUT", help="file, directory (recursive) or - (stdin)")
    parser.add_argument(
        "-o",
        "--output",
        metavar="OUTPUT",
        help="file, directory or - (stdout); default: beside the input (stdout for stdin)",
    )
    parser.add_argument(
        "--commitment-policy",
        choices=[p.value for p in CommitmentPolicy],
        default=DEFAULT_COMMITMENT_POLICY.value,
        help=f"key commitment policy (default {DEFAULT_COMMITMENT_POLICY.value}: "
        "encrypt committing, decrypt version 1 messages too)",
    )
    parser.add_argument(
        "--max-encrypted-data-keys", type=int, metavar="N", help="refuse more wrapped keys than N"
    )
    parser.add_argument("--no-overwrite", action="store_true", help="never replace a file")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    parser.add_argument(
        "--progress",
        choices=["auto", "always", "never"],
        default="auto",
        help="progress bar: auto = on a terminal, for inputs of 8 MiB or more",
    )
    parser.add_argument("--endpoint-url", help="KMS endpoint (default: AWS_ENDPOINT_URL_KMS)")
    parser.add_argument("--region", help="AWS region (default: from the environment)")
    parser.add_argument("--profile", help="AWS profile")


def _add_encrypt(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-k",
        "--key",
        action="append",
        required=True,
        metavar="KEY",
        help="KMS key id, ARN or alias (repeatable: any one of the keys decrypts)",
    )
    parser.add_argument(
        "-c",
        "--context",
        action="append",
        type=_pair,
        default=[],
        metavar="KEY=VALUE",
        help="encryption context pair written into the message (repeatable)",
    )
    parser.add_argument(
        "--algorithm",
        metavar="SUITE",
        help="algorithm suite name or hex id (default "
        "AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384, 0x0578)",
    )
    parser.add_argument(
        "--unsigned",
        action="store_true",
        help="AES_256_GCM_HKDF_SHA512_COMMIT_KEY (0x0478): no ECDSA signature (faster; anyone "
        "who can decrypt could also forge messages)",
    )
    parser.add_argument(
        "--frame-length", type=_size, default=None, metavar="BYTES", help="plaintext per frame"
    )
    parser.add_argument(
        "--cache-max-age",
        type=_positive_float,
        metavar="SECONDS",
        help="reuse a data key for several files for at most this long (caching is off without it)",
    )
    parser.add_argument("--cache-max-messages", type=int, metavar="N", help="files per data key")
    parser.add_argument(
        "--cache-max-bytes", type=_size, metavar="BYTES", help="plaintext bytes per data key"
    )
    _add_common(parser)
    parser.set_defaults(func=cmd_encrypt, operation="encrypt")


def _add_decrypt(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-k",
        "--key",
        action="append",
        default=[],
        metavar="KEY",
        help="decrypt only with this KMS key (id, ARN or alias; repeatable); default: the "
        "keys the message names",
    )
    parser.add_argument(
        "--require-context",
        action="append",
        type=_requirement,
        default=[],
        metavar="KEY[=VALUE]",
        help="the message's encryption context must hold this pair (or key) (repeatable)",
    )
    parser.add_argument(
        "--unsigned-only",
        action="store_true",
        help="refuse signed messages (so that nothing is released before full verification "
        "needs the signature)",
    )
    parser.add_argument(
        "--max-frame-length",
        type=_size,
        default=None,
        metavar="BYTES",
        help="refuse messages with larger frames (default 256M)",
    )
    _add_common(parser)
    parser.set_defaults(func=cmd_decrypt, operation="decrypt")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``encrypt`` and ``decrypt`` to ``openkms``'s subcommands."""
    encrypt = subparsers.add_parser(
        "encrypt",
        help="encrypt files with KMS keys (AWS Encryption SDK format)",
        description="Encrypt a file, stdin or a directory tree into AWS Encryption SDK "
        "messages under one or more KMS keys. " + _EXIT_HELP,
    )
    _add_encrypt(encrypt)
    decrypt = subparsers.add_parser(
        "decrypt",
        help="decrypt AWS Encryption SDK messages",
        description="Decrypt AWS Encryption SDK messages (from openkms encrypt or the AWS "
        "Encryption SDK and its CLI). " + _EXIT_HELP,
    )
    _add_decrypt(decrypt)


# --- jobs ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Job:
    source: Path | None  # None: stdin
    target: Path | None  # None: stdout
    size: int | None


def _default_target(operation: str, source: Path) -> Path:
    if operation == "encrypt":
        return source.with_name(source.name + SUFFIX)
    if source.name.endswith(SUFFIX) and len(source.name) > len(SUFFIX):
        return source.with_name(source.name[: -len(SUFFIX)])
    return source.with_name(source.name + DECRYPTED_SUFFIX)


def _plan(operation: str, input_arg: str, output_arg: str | None) -> list[Job]:
    if input_arg == "-":
        if output_arg is None or output_arg == "-":
            return [Job(None, None, None)]
        target = Path(output_arg)
        if target.is_dir():
            raise UsageError("with stdin as input, -o must name a file or -")
        return [Job(None, target, None)]
    source = Path(input_arg)
    if source.is_dir():
        return _plan_directory(operation, source, output_arg)
    if not source.exists():
        raise UsageError(f"{source}: no such file or directory")
    if not source.is_file():
        raise UsageError(f"{source}: not a regular file")
    size = source.stat().st_size
    if output_arg == "-":
        return [Job(source, None, size)]
    if output_arg is None:
        target = _default_target(operation, source)
    else:
        target = Path(output_arg)
        if target.is_dir():
            target = target / _default_target(operation, source).name
    return [Job(source, target, size)]


def _plan_directory(operation: str, root: Path, output_arg: str | None) -> list[Job]:
    if output_arg == "-":
        raise UsageError("a directory cannot be written to stdout; give -o DIRECTORY")
    out_root = Path(output_arg) if output_arg is not None else None
    if out_root is not None and out_root.exists() and not out_root.is_dir():
        raise UsageError(f"{out_root}: not a directory")
    jobs = []
    resolved_out = out_root.resolve() if out_root is not None else None
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if resolved_out is not None:
            dirnames[:] = sorted(d for d in dirnames if (here / d).resolve() != resolved_out)
        else:
            dirnames.sort()
        for name in sorted(filenames):
            source = here / name
            if source.is_symlink() or not source.is_file():
                continue
            if out_root is None:
                # In place: skip what this command writes (or would read) in that tree.
                if operation == "encrypt" and name.endswith(SUFFIX):
                    continue
                if operation == "decrypt" and not name.endswith(SUFFIX):
                    continue
                target = _default_target(operation, source)
            else:
                relative = source.relative_to(root)
                target = out_root / relative.parent / _default_target(operation, source).name
            jobs.append(Job(source, target, source.stat().st_size))
    if not jobs:
        raise UsageError(f"{root}: no files to {operation}")
    return jobs


# --- output --------------------------------------------------------------------------------------
class AtomicOutput:
    """A temporary file beside ``target``: ``commit()`` renames it into place; anything else
    (an error, ``discard()``) deletes it. Decrypted files are created mode 0600."""

    def __init__(self, target: Path, private: bool, no_overwrite: bool) -> None:
        self.target = target
        if no_overwrite and target.exists():
            raise UsageError(f"{target}: exists (--no-overwrite)")
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
        self.temp = Path(name)
        if not private:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(fd, 0o666 & ~umask)
        self.handle: BinaryIO = os.fdopen(fd, "wb", buffering=_IO_BUFFER)
        self._done = False
        self._no_overwrite = no_overwrite

    def commit(self) -> None:
        self.handle.close()
        if self._no_overwrite:
            try:
                os.link(self.temp, self.target)
            except FileExistsError:
                self.discard()
                raise UsageError(f"{self.target}: exists (--no-overwrite)") from None
            self.temp.unlink()
        else:
            os.replace(self.temp, self.target)
        self._done = True

    def discard(self) -> None:
        if self._done:
            return
        self._done = True
        with contextlib.suppress(OSError):
            self.handle.close()
        with contextlib.suppress(OSError):
            self.temp.unlink()


# --- progress ------------------------------------------------------------------------------------
class Progress:
    """A rich progress bar on stderr (or nothing)."""

    def __init__(self, enabled: bool, total: int | None, label: str) -> None:
        self._bar: Any = None
        self._task: Any = None
        if not enabled:
            return
        try:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )
            from rich.progress import Progress as RichProgress
        except ImportError:  # rich is optional: no bar without it
            return
        console = Console(file=sys.stderr, force_terminal=True if enabled else None)
        self._bar = RichProgress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._bar.start()
        self._task = self._bar.add_task(label, total=total)

    def advance(self, n: int) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, n)

    def describe(self, label: str) -> None:
        if self._bar is not None:
            self._bar.update(self._task, description=label)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def _progress_enabled(args: argparse.Namespace, total: int | None) -> bool:
    if args.quiet or args.progress == "never":
        return False
    if args.progress == "always":
        return True
    return total is not None and total >= PROGRESS_MIN_BYTES and sys.stderr.isatty()


# --- running -------------------------------------------------------------------------------------
def _client(args: argparse.Namespace) -> Any:
    from openkms.envelope.api import EnvelopeClient

    session = None
    if args.profile or args.region:
        import importlib

        boto3 = importlib.import_module("boto3")
        session = boto3.session.Session(profile_name=args.profile, region_name=args.region)
    options: dict[str, Any] = {
        "session": session,
        "region": args.region,
        "endpoint_url": args.endpoint_url,
        "commitment_policy": CommitmentPolicy(args.commitment_policy),
        "max_encrypted_data_keys": args.max_encrypted_data_keys,
    }
    if args.operation == "encrypt":
        policy = CommitmentPolicy(args.commitment_policy)
        if args.unsigned and args.algorithm:
            raise UsageError("give --algorithm or --unsigned, not both")
        try:
            suite = (
                UNSIGNED_SUITE
                if args.unsigned
                else suite_by_name(args.algorithm)
                if args.algorithm
                else policy.default_suite()
            )
        except UnsupportedSuiteError as exc:
            names = ", ".join(s.name for s in SUITES.values())
            raise UsageError(f"{exc} (known: {names})") from None
        options["suite"] = suite
        if args.frame_length is not None:
            if not 0 < args.frame_length < 2**32:
                raise UsageError("--frame-length must be between 1 and 4294967295 bytes")
            options["frame_length"] = args.frame_length
        if args.cache_max_age is not None:
            limits: dict[str, Any] = {"max_age": args.cache_max_age}
            if args.cache_max_messages is not None:
                limits["max_messages"] = args.cache_max_messages
            if args.cache_max_bytes is not None:
                limits["max_bytes"] = args.cache_max_bytes
            try:
                options["cache"] = CacheLimits(**limits)
            except ValueError as exc:
                raise UsageError(str(exc)) from None
        elif args.cache_max_messages is not None or args.cache_max_bytes is not None:
            raise UsageError("--cache-max-messages and --cache-max-bytes need --cache-max-age")
    elif args.max_frame_length is not None:
        options["max_frame_length"] = args.max_frame_length
    try:
        return EnvelopeClient(**options)
    except (CommitmentPolicyError, UnsupportedSuiteError) as exc:
        raise UsageError(str(exc)) from None


@contextlib.contextmanager
def _open_source(job: Job) -> Iterator[BinaryIO]:
    if job.source is None:
        yield sys.stdin.buffer
        return
    try:
        handle = open(job.source, "rb", buffering=_IO_BUFFER)  # noqa: SIM115
    except OSError as exc:
        raise UsageError(f"{job.source}: {exc.strerror or exc}") from None
    with handle:
        yield handle


def _run_job(
    args: argparse.Namespace,
    client: Any,
    job: Job,
    advance: Callable[[int], None],
) -> None:
    encrypting = args.operation == "encrypt"
    if (
        job.source is not None
        and job.target is not None
        and job.source.resolve() == job.target.resolve()
    ):
        raise UsageError(f"{job.source}: input and output are the same file")
    output: AtomicOutput | None = None
    with _open_source(job) as source:
        try:
            if job.target is not None:
                output = AtomicOutput(
                    job.target, private=not encrypting, no_overwrite=args.no_overwrite
                )
                sink = output.handle
            else:
                sink = sys.stdout.buffer
            if encrypting:
                client.encrypt_stream(
                    source,
                    sink,
                    args.key,
                    dict(args.context),
                    plaintext_length=job.size,
                    on_progress=advance,
                )
            else:
                client.decrypt_stream(
                    source,
                    sink,
                    key_ids=args.key or None,
                    required_context=dict(args.require_context) or None,
                    on_progress=advance,
                )
            if output is not None:
                output.commit()
            else:
                sink.flush()
        finally:
            if output is not None:
                output.discard()


def _describe(exc: BaseException) -> tuple[int, str]:
    """Exit status and message for a failure."""
    if isinstance(exc, UsageError):
        return EXIT_USAGE, str(exc)
    if isinstance(exc, NoDecryptableKeyError):
        if exc.access_denied:
            return EXIT_DENIED, f"permission denied: {exc}"
        return EXIT_KEY, f"cannot decrypt the data key: {exc}"
    if isinstance(exc, KMSCallError):
        if exc.access_denied:
            return EXIT_DENIED, f"permission denied: {exc}"
        return EXIT_KEY, str(exc)
    if isinstance(exc, TruncatedMessageError):
        return EXIT_INVALID, f"truncated message: {exc}"
    if isinstance(exc, AuthenticationError):
        return EXIT_INVALID, f"message rejected: {exc}"
    if isinstance(exc, EncryptionContextError):
        return EXIT_INVALID, f"encryption context: {exc}"
    if isinstance(exc, CommitmentPolicyError):
        return EXIT_INVALID, str(exc)
    if isinstance(exc, MalformedMessageError):
        return EXIT_INVALID, f"invalid message: {exc}"
    if isinstance(exc, EnvelopeError):
        return EXIT_OTHER, str(exc)
    if isinstance(exc, OSError):
        return EXIT_USAGE, exc.strerror or str(exc)
    return EXIT_OTHER, f"{type(exc).__name__}: {exc}"


def _run(args: argparse.Namespace) -> int:
    prog = f"openkms {args.operation}"
    try:
        jobs = _plan(args.operation, args.input, args.output)
        if args.operation == "encrypt":
            _check_context(args.context)
        client = _client(args)
    except UsageError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    known = [j.size for j in jobs]
    total = sum(s for s in known if s is not None) if all(s is not None for s in known) else None
    progress = Progress(_progress_enabled(args, total), total, args.operation)
    status = EXIT_OK
    done = 0
    processed = 0
    try:
        for job in jobs:
            name = str(job.source) if job.source is not None else "stdin"
            if len(jobs) > 1:
                progress.describe(name)
            try:
                _run_job(args, client, job, progress.advance)
                done += 1
                processed += job.size or 0
            except KeyboardInterrupt:
                raise
            except BrokenPipeError:
                return status
            except Exception as exc:
                code, message = _describe(exc)
                print(f"{prog}: {name}: {message}", file=sys.stderr)
                status = status or code
    finally:
        progress.close()
    if len(jobs) > 1 and not args.quiet:
        failed = len(jobs) - done
        print(
            f"{prog}: {done} file(s), {processed} bytes" + (f"; {failed} failed" if failed else ""),
            file=sys.stderr,
        )
    return status


def _check_context(pairs: Sequence[tuple[str, str]]) -> None:
    seen: dict[str, str] = {}
    for key, value in pairs:
        if key in seen and seen[key] != value:
            raise UsageError(f"--context {key} given twice with different values")
        if key.startswith("aws-crypto-"):
            raise UsageError(f"--context {key}: keys starting with aws-crypto- are reserved")
        seen[key] = value


def cmd_encrypt(args: argparse.Namespace) -> int:
    return _run(args)


def cmd_decrypt(args: argparse.Namespace) -> int:
    return _run(args)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="openkms", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
