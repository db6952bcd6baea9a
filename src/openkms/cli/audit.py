"""``openkms audit verify``, ``search`` and ``prune``: check, query and shorten audit logs.

``register(subparsers)`` adds the ``audit`` command to ``openkms``'s parser; ``main(argv)``
runs the same commands standalone (``python -m openkms.cli.audit verify audit.log*``).

Exit status: 0 when the logs verify (or the search ran), 1 when verification found problems,
2 for a usage error or an unreadable file.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from openkms.audit.chain import VerifyReport, verify_files
from openkms.audit.search import Filters, parse_time, search_files

__all__ = ["main", "register"]

_DESCRIPTION = (
    "Verify the hash chain of audit log files, or search them. Exit status: 0 OK, 1 problems "
    "found, 2 usage error or unreadable file."
)


def _anchor(value: str) -> tuple[int, str]:
    seq, sep, digest = value.partition(":")
    digest = digest.strip().lower()
    if not sep or not seq.strip().isdigit() or len(digest) != 64:
        raise argparse.ArgumentTypeError(f"{value!r}: expected SEQ:HASH (64 hex digits)")
    try:
        int(digest, 16)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: the hash is not hexadecimal") from None
    return int(seq), digest


def _time(value: str) -> float:
    try:
        return parse_time(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _print_report(report: VerifyReport) -> None:
    out = sys.stdout
    for warning in report.warnings:
        out.write(f"warning: {warning}\n")
    for problem in report.problems:
        out.write(f"{problem}\n")
    if report.ok:
        out.write(
            f"OK: {report.records} records ({report.entries} chain entries) in "
            f"{len(report.files)} file(s)\n"
        )
        for chain in report.chains:
            out.write(
                f"  chain {chain.log_id}: seq {chain.first_seq}..{chain.last_seq}, "
                f"last hash {chain.last_hash} ({len(chain.files)} file(s))\n"
            )
    else:
        out.write(
            f"FAILED: {len(report.problems)} problem(s) in {len(report.files)} file(s), "
            f"{report.records} records read\n"
        )


def cmd_verify(args: argparse.Namespace) -> int:
    report = verify_files(args.files, anchors=args.anchor or (), allow_partial=args.allow_partial)
    _print_report(report)
    if any(p.kind == "unreadable" for p in report.problems):
        return 2
    return 0 if report.ok else 1


def cmd_search(args: argparse.Namespace) -> int:
    operations: set[str] | None = None
    if args.operation:
        operations = {o.strip() for value in args.operation for o in value.split(",") if o.strip()}
    filters = Filters(
        key=args.key,
        principal=args.principal,
        operations=frozenset(operations) if operations else None,
        since=args.since,
        until=args.until,
    )
    out = sys.stdout.buffer
    try:
        for line in search_files(args.files, filters):
            out.write(line)
        out.flush()
    except BrokenPipeError:  # `... | head`
        return 0
    except OSError as exc:
        print(f"openkms audit search: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    from pathlib import Path

    from openkms.audit.prune import prune

    base = Path(args.log) if args.log else Path(args.data_dir or "./.openkms") / "audit.log"
    try:
        report = prune(base, args.before, dry_run=args.dry_run)
    except OSError as exc:
        print(f"openkms audit prune: {exc}", file=sys.stderr)
        return 2
    out = sys.stdout
    verb = "would remove" if args.dry_run else "removed"
    for path in report.removed:
        out.write(f"{verb} {path}\n")
    for path in report.kept_back:
        out.write(f"kept {path} (records at or after --before)\n")
    if report.notice_file is not None:
        out.write(f"recorded in {report.notice_file}\n")
    if not report.removed:
        out.write("nothing to prune\n")
    return 0


def _add_commands(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="audit_command", required=True)
    verify = sub.add_parser(
        "verify",
        help="check the hash chain of audit log files",
        description="Check the hash chain of audit log files (rotated files and several "
        "workers' files may be given together, in any order). Prints OK and the record "
        "count, or each problem with its file, line and seq, and exits 1.",
    )
    verify.add_argument("files", nargs="+", metavar="FILE")
    verify.add_argument(
        "--anchor",
        action="append",
        type=_anchor,
        metavar="SEQ:HASH",
        help="an entry known to exist (recorded elsewhere); detects a truncated or rewritten "
        "log (repeatable)",
    )
    verify.add_argument(
        "--allow-partial",
        action="store_true",
        help="accept chains whose earlier files were not given (checking only recent files); "
        "without it, a file removed without a recorded prune is a problem",
    )
    verify.set_defaults(func=cmd_verify)

    prune_cmd = sub.add_parser(
        "prune",
        help="remove old rotated audit files, recording it in the chain",
        description="Remove the rotated files (never a file being written) whose records all "
        "precede --before, oldest first, after sealing a 'pruned' notice naming them into the "
        "chain, so that 'verify' accepts the shortened log. The server never deletes audit "
        "files on its own (audit_backups 0).",
    )
    prune_cmd.add_argument(
        "--before", required=True, type=_time, metavar="T", help="ISO 8601 or epoch seconds"
    )
    prune_cmd.add_argument("--log", help="the audit log (default <data-dir>/audit.log)")
    prune_cmd.add_argument("--data-dir", help="data directory (default ./.openkms)")
    prune_cmd.add_argument("--dry-run", action="store_true", help="only list what would go")
    prune_cmd.set_defaults(func=cmd_prune)

    search = sub.add_parser(
        "search",
        help="print the audit records that match filters, as JSON lines",
        description="Print the audit records (JSON lines as stored) that match every filter given.",
    )
    search.add_argument("files", nargs="+", metavar="FILE")
    search.add_argument("--key", help="key id, key ARN, alias name or alias ARN")
    search.add_argument("--principal", help="substring of the caller's ARN")
    search.add_argument(
        "--operation",
        action="append",
        metavar="OP",
        help="event name, e.g. Decrypt (repeatable, or comma-separated)",
    )
    search.add_argument(
        "--since", type=_time, metavar="T", help="ISO 8601 or epoch seconds (inclusive)"
    )
    search.add_argument(
        "--until", type=_time, metavar="T", help="ISO 8601 or epoch seconds (inclusive)"
    )
    search.set_defaults(func=cmd_search)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``audit verify``, ``search`` and ``prune`` to ``openkms``'s subcommands."""
    audit = subparsers.add_parser(
        "audit", help="verify and search audit logs", description=_DESCRIPTION
    )
    _add_commands(audit)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="openkms audit", description=_DESCRIPTION)
    _add_commands(parser)
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
