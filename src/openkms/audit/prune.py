"""``openkms audit prune``: the operator's deliberate removal of old audit files, recorded.

The server never deletes an audit file to make room (``audit_backups`` 0, the default). When
the operator wants old files gone, ``prune(base, before)`` removes, for every worker slot of
the log at ``base``, the oldest *rotated* files (``audit.log.N``, ``audit.w1.log.N`` ...; never
a file being written) whose records all happened before ``before``, oldest first and without
leaving a hole. Before anything is deleted it seals a ``pruned`` notice into a chain, through
a ``FileAuditSink`` on ``base`` (the free worker slot: the main chain when the server is
stopped), naming the files and, per chain, the seq and hash of the last entry removed. So
``openkms audit verify`` accepts the shortened chain, while a deletion nobody recorded is
still reported as ``missing-files``.
"""

from __future__ import annotations

import getpass
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from openkms.audit.chain import ChainError, last_line, parse_line, prune_notice, pruned_chains
from openkms.audit.sinks import FileAuditSink, slot_path

__all__ = ["PruneReport", "plan_prune", "prune"]

_MAX_SLOTS = 64


@dataclass(frozen=True, slots=True)
class PruneReport:
    removed: tuple[Path, ...]
    kept_back: tuple[Path, ...]  # rotated files with records at or after ``before``
    notice_file: Path | None  # where the notice was written (None: nothing to do, or dry run)


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _rotated(path: Path) -> list[Path]:
    """``path.1``, ``path.2`` ... that exist, newest first (stops at the first gap)."""
    out: list[Path] = []
    index = 1
    while True:
        candidate = path.with_name(f"{path.name}.{index}")
        if not candidate.exists():
            return out
        out.append(candidate)
        index += 1


def _latest_time(path: Path) -> float | None:
    """The time of the newest entry of a rotated file: its last record's ``eventTime`` (or the
    header's ``created``). None when the file cannot be read: such a file is never pruned."""
    from openkms.audit.search import parse_time

    try:
        entry = parse_line(last_line(str(path)))
    except (ChainError, OSError):
        return None
    text = entry.obj.get("eventTime")
    if text is None and entry.header is not None:
        text = entry.header.get("created")
    if text is None and entry.notice is not None:
        text = entry.notice.get("last") or entry.notice.get("at") or entry.notice.get("created")
    if not isinstance(text, str):
        return None
    try:
        return parse_time(text)
    except ValueError:
        return None


def plan_prune(base: str | Path, before: float) -> tuple[list[Path], list[Path]]:
    """(files to remove, rotated files kept because they hold records at or after ``before``)."""
    remove: list[Path] = []
    kept: list[Path] = []
    for slot in range(_MAX_SLOTS):
        live = slot_path(base, slot)
        rotated = _rotated(live)
        if not rotated and not live.exists():
            continue
        # Oldest first; stop at the first file with anything at or after ``before``.
        stop = False
        for path in reversed(rotated):
            newest = _latest_time(path)
            if stop or newest is None or newest >= before:
                stop = True
                kept.append(path)
            else:
                remove.append(path)
    return remove, kept


def prune(base: str | Path, before: float, *, dry_run: bool = False) -> PruneReport:
    """Remove the rotated audit files whose records all precede ``before``, after recording
    it in the chain (see the module docstring)."""
    remove, kept = plan_prune(base, before)
    if dry_run or not remove:
        return PruneReport(tuple(remove), tuple(kept), None)
    notice = prune_notice(
        chains=pruned_chains(remove),
        files=[p.name for p in remove],
        reason="openkms audit prune",
        at=_iso(time.time()),
        before=_iso(before),
        by=f"{_user()}@{socket.gethostname()}",
    )
    sink = FileAuditSink(base, flush_interval=0)
    try:
        sink.write(notice)
        notice_file = sink.path
    finally:
        sink.close()
    for path in remove:
        os.remove(path)
    return PruneReport(tuple(remove), tuple(kept), notice_file)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())
