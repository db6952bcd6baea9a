"""The hash chain of an audit log: sealing lines, and verifying files.

Every line of an audit log is one compact JSON object with sorted keys, followed by ``\\n``,
carrying ``"openkmsChain": {"hash": H, "prev": P, "seq": N}``:

* ``seq``: the entry's position in the chain (0, 1, 2 ... across files and restarts);
* ``prev``: the ``hash`` of the entry before it (for entry 0, the genesis value
  ``sha256("openkms-audit-v1 genesis " + logId)``);
* ``hash``: lowercase hex SHA-256 of the line's bytes *without* the 74 bytes
  ``"hash":"<64 hex>",`` (the line as written, minus the field, minus the newline).

Three kinds of entries share the chain: audit records (CloudTrail-shaped, ``eventVersion``),
the header that begins every file (``openkmsHeader``: the chain's ``logId``, and the seq and
hash of the last entry of the previous file, so a removed first record or a missing file is
detected), and notices (``openkmsNotice``: records a fail-open sink had to drop). See
``docs/formats/audit.md``.

``verify_files`` orders the files it is given by their headers, groups them by ``logId`` (one
chain per writer process), and reports every edited, removed, inserted, reordered or truncated
entry with its file, line and seq.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson

__all__ = [
    "CHAIN",
    "FORMAT_VERSION",
    "HEADER",
    "NOTICE",
    "ChainError",
    "ChainSummary",
    "Entry",
    "Problem",
    "VerifyReport",
    "genesis",
    "header_entry",
    "parse_line",
    "seal",
    "verify_files",
]

FORMAT_VERSION: Final = 1
CHAIN: Final = "openkmsChain"
HEADER: Final = "openkmsHeader"
NOTICE: Final = "openkmsNotice"

_MARK: Final = b'"openkmsChain":{'
_PREV_AFTER_MARK: Final = b'"prev":"'
_HEX64: Final = re.compile(r"[0-9a-f]{64}")
_SORTED: Final = orjson.OPT_SORT_KEYS


class ChainError(ValueError):
    """A line cannot be sealed, or read as a chain entry."""


def genesis(log_id: str) -> str:
    """The ``prev`` of a chain's first entry."""
    return hashlib.sha256(b"openkms-audit-v1 genesis " + log_id.encode()).hexdigest()


def seal(entry: Mapping[str, Any], seq: int, prev: str) -> tuple[bytes, str]:
    """The line (with its newline) for ``entry`` at ``seq`` after ``prev``, and its hash."""
    try:
        body = orjson.dumps({**entry, CHAIN: {"prev": prev, "seq": seq}}, option=_SORTED)
    except TypeError as exc:  # orjson.JSONEncodeError: bytes, or a non-str key, or ...
        raise ChainError(f"record is not JSON-serializable: {exc}") from exc
    at = body.find(_MARK)
    cut = at + len(_MARK)
    # The chain object must be found exactly once, where sorting put it.
    if at < 0 or body.find(_MARK, cut) >= 0 or body[cut : cut + 8] != _PREV_AFTER_MARK:
        raise ChainError(f"a record must not contain a member named {CHAIN!r}")
    digest = hashlib.sha256(body).hexdigest()
    return b"".join((body[:cut], b'"hash":"', digest.encode(), b'",', body[cut:], b"\n")), digest


def header_entry(
    *,
    log_id: str,
    created: str,
    pid: int,
    host: str,
    previous: tuple[int, str] | None,
    torn_tail: int = 0,
    note: str = "",
) -> dict[str, Any]:
    """The first entry of every file (to be sealed at ``previous[0] + 1`` after
    ``previous[1]``, or at 0 after ``genesis(log_id)``)."""
    header: dict[str, Any] = {
        "version": FORMAT_VERSION,
        "logId": log_id,
        "created": created,
        "pid": pid,
        "host": host,
        "previous": None,
    }
    if previous is not None:
        prev: dict[str, Any] = {"seq": previous[0], "hash": previous[1]}
        if torn_tail:
            prev["tornTail"] = torn_tail
        header["previous"] = prev
    if note:
        header["note"] = note
    return {HEADER: header}


@dataclass(frozen=True, slots=True)
class Entry:
    """One line read back: its chain fields, the hash recomputed from its bytes, its object."""

    seq: int
    prev: str
    hash: str
    computed: str
    obj: dict[str, Any]

    @property
    def intact(self) -> bool:
        return self.hash == self.computed

    @property
    def header(self) -> dict[str, Any] | None:
        value = self.obj.get(HEADER)
        return value if isinstance(value, dict) else None

    @property
    def notice(self) -> dict[str, Any] | None:
        value = self.obj.get(NOTICE)
        return value if isinstance(value, dict) else None

    @property
    def is_record(self) -> bool:
        return "eventVersion" in self.obj


def parse_line(line: bytes) -> Entry:
    """Read one line (with or without its newline) as a chain entry."""
    text = line[:-1] if line.endswith(b"\n") else line
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ChainError("not a JSON object") from exc
    if not isinstance(obj, dict):
        raise ChainError("not a JSON object")
    chain = obj.get(CHAIN)
    if not isinstance(chain, dict):
        raise ChainError(f"no {CHAIN} member")
    seq, prev, digest = chain.get("seq"), chain.get("prev"), chain.get("hash")
    if type(seq) is not int or seq < 0:
        raise ChainError(f"{CHAIN}.seq is not a non-negative integer")
    if not isinstance(prev, str) or not _HEX64.fullmatch(prev):
        raise ChainError(f"{CHAIN}.prev is not a SHA-256 hex digest")
    if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
        raise ChainError(f"{CHAIN}.hash is not a SHA-256 hex digest")
    hash_field = b'"hash":"' + digest.encode() + b'",'
    at = text.find(_MARK + hash_field)
    if at < 0:
        raise ChainError(f"{CHAIN}.hash is not the first member of {CHAIN}")
    cut = at + len(_MARK)
    computed = hashlib.sha256(text[:cut] + text[cut + len(hash_field) :]).hexdigest()
    return Entry(seq=seq, prev=prev, hash=digest, computed=computed, obj=obj)


# --- verification -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Problem:
    """Something wrong (or, in ``VerifyReport.warnings``, worth knowing) at a place in a file.
    ``line`` is 1-based (0: the file as a whole or no file)."""

    file: str
    line: int
    seq: int | None
    kind: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else (self.file or "-")
        seq = "" if self.seq is None else f" (seq {self.seq})"
        return f"{where}{seq}: {self.kind}: {self.message}"


@dataclass(slots=True)
class ChainSummary:
    log_id: str | None
    files: list[str]
    first_seq: int | None = None
    last_seq: int | None = None
    last_hash: str | None = None
    records: int = 0


@dataclass(slots=True)
class VerifyReport:
    files: list[str] = field(default_factory=list)
    records: int = 0
    entries: int = 0
    chains: list[ChainSummary] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(slots=True)
class _FileHead:
    path: str
    order: int
    log_id: str | None
    seq: int | None


@dataclass(slots=True)
class _End:
    """Where the previous file of a chain ended."""

    path: str
    seq: int | None
    hash: str | None
    line: int
    torn: int  # bytes of an incomplete last line


def _first_line(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.readline()


def _head_of(path: str, order: int) -> _FileHead:
    try:
        entry = parse_line(_first_line(path))
    except (ChainError, OSError):
        return _FileHead(path, order, None, None)
    header = entry.header
    log_id = header.get("logId") if header is not None else None
    if not isinstance(log_id, str):
        return _FileHead(path, order, None, None)
    return _FileHead(path, order, log_id, entry.seq)


class _Walker:
    def __init__(self, report: VerifyReport, anchors: dict[int, set[str]]) -> None:
        self.report = report
        self.anchors = anchors
        self.found: set[tuple[int, str]] = set()

    def problem(self, path: str, line: int, seq: int | None, kind: str, message: str) -> None:
        self.report.problems.append(Problem(path, line, seq, kind, message))

    def warn(self, path: str, line: int, seq: int | None, kind: str, message: str) -> None:
        self.report.warnings.append(Problem(path, line, seq, kind, message))

    def chain(self, log_id: str | None, paths: list[str]) -> None:
        summary = ChainSummary(log_id=log_id, files=paths)
        self.report.chains.append(summary)
        end: _End | None = None
        for index, path in enumerate(paths):
            end = self.file(path, log_id, end, first_of_chain=index == 0, summary=summary)
        if end is not None and end.torn:
            self.problem(
                end.path,
                end.line,
                None,
                "truncated",
                f"the last line is incomplete ({end.torn} bytes without a newline): the file "
                "was truncated, the writer crashed, or a write is in progress",
            )

    def file(
        self,
        path: str,
        log_id: str | None,
        before: _End | None,
        *,
        first_of_chain: bool,
        summary: ChainSummary,
    ) -> _End:
        self.report.files.append(path)
        expected_seq: int | None = None
        expected_prev: str | None = None
        previous_line = 0
        end = _End(path, None, None, 0, 0)
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            self.problem(path, 0, None, "unreadable", str(exc))
            return before or end
        with handle:
            lineno = 0
            for raw in handle:
                lineno += 1
                end.line = lineno
                if not raw.endswith(b"\n"):
                    end.torn = len(raw)
                    break
                try:
                    entry = parse_line(raw)
                except ChainError as exc:
                    self.problem(path, lineno, None, "unparseable", str(exc))
                    expected_seq = expected_prev = None  # cannot check the next link
                    continue
                self.report.entries += 1
                if lineno == 1:
                    expected_seq, expected_prev = self.header(
                        path, entry, log_id, before, first_of_chain=first_of_chain
                    )
                elif entry.header is not None:
                    self.problem(
                        path, lineno, entry.seq, "inserted", "a file header in the middle of a file"
                    )
                if not entry.intact:
                    self.problem(
                        path,
                        lineno,
                        entry.seq,
                        "edited",
                        "the record's content does not match its hash: it was modified",
                    )
                if expected_seq is not None and entry.seq != expected_seq:
                    if entry.seq > expected_seq:
                        missing = (
                            f"seq {expected_seq}"
                            if entry.seq == expected_seq + 1
                            else f"seq {expected_seq}..{entry.seq - 1}"
                        )
                        self.problem(
                            path,
                            lineno,
                            entry.seq,
                            "missing",
                            f"{missing} missing before this line: removed or reordered",
                        )
                    else:
                        self.problem(
                            path,
                            lineno,
                            entry.seq,
                            "out-of-order",
                            f"seq {entry.seq} follows seq {expected_seq - 1}: a record was "
                            "inserted, duplicated or moved here",
                        )
                elif expected_prev is not None and entry.prev != expected_prev:
                    after = f"line {previous_line}" if previous_line else "the previous file"
                    self.problem(
                        path,
                        lineno,
                        entry.seq,
                        "broken-link",
                        f"prev does not match the hash of {after}: that entry was modified and "
                        "re-hashed, or this one was inserted",
                    )
                if entry.is_record:
                    self.report.records += 1
                    summary.records += 1
                notice = entry.notice
                if notice is not None and notice.get("kind") == "dropped":
                    self.warn(
                        path,
                        lineno,
                        entry.seq,
                        "dropped",
                        f"the writer dropped {notice.get('count')} record(s) between "
                        f"{notice.get('first')} and {notice.get('last')} (fail-open sink)",
                    )
                if entry.seq in self.anchors and entry.hash in self.anchors[entry.seq]:
                    self.found.add((entry.seq, entry.hash))
                if summary.first_seq is None:
                    summary.first_seq = entry.seq
                summary.last_seq, summary.last_hash = entry.seq, entry.hash
                expected_seq, expected_prev = entry.seq + 1, entry.hash
                end.seq, end.hash = entry.seq, entry.hash
                previous_line = lineno
        if end.line == 0:
            self.problem(path, 0, None, "empty", "the file is empty (no header)")
        return end

    def header(
        self,
        path: str,
        entry: Entry,
        log_id: str | None,
        before: _End | None,
        *,
        first_of_chain: bool,
    ) -> tuple[int | None, str | None]:
        """Check a file's first line; return the (seq, prev) it must have."""
        header = entry.header
        if header is None or log_id is None:
            self.problem(
                path,
                1,
                entry.seq,
                "missing-header",
                "the file does not begin with a header: its first entries were removed",
            )
            return None, None
        previous = header.get("previous")
        if previous is None:
            if not first_of_chain and before is not None:
                self.problem(
                    path, 1, entry.seq, "bad-header", "a second file claims to start the chain"
                )
            return 0, genesis(log_id)
        if not isinstance(previous, dict):
            self.problem(path, 1, entry.seq, "bad-header", "header.previous is malformed")
            return None, None
        p_seq, p_hash = previous.get("seq"), previous.get("hash")
        torn = previous.get("tornTail", 0)
        if type(p_seq) is not int or not isinstance(p_hash, str):
            self.problem(path, 1, entry.seq, "bad-header", "header.previous is malformed")
            return None, None
        if first_of_chain or before is None:
            self.warn(
                path,
                1,
                entry.seq,
                "partial",
                f"the chain continues from seq {p_seq} in a file not given; its earlier "
                "files cannot be checked",
            )
            return p_seq + 1, p_hash
        if before.seq is None or before.hash is None:
            return p_seq + 1, p_hash  # the previous file was unreadable: already reported
        linked = (p_seq, p_hash) == (before.seq, before.hash)
        if not linked:
            if p_seq > before.seq:
                message = (
                    f"{before.path} ends at seq {before.seq} but this file continues from seq "
                    f"{p_seq}: seq {before.seq + 1}..{p_seq} are missing (removed from the end "
                    "of the previous file, or a file is missing)"
                )
                self.problem(path, 1, entry.seq, "missing", message)
            else:
                self.problem(
                    path,
                    1,
                    entry.seq,
                    "broken-link",
                    f"the header names seq {p_seq} / {p_hash[:12]}… as the previous file's "
                    f"last entry, but {before.path} ends at seq {before.seq} / "
                    f"{before.hash[:12]}…",
                )
        if before.torn:
            if torn == before.torn:
                self.warn(
                    before.path,
                    before.line,
                    None,
                    "torn-tail",
                    f"an incomplete last line ({before.torn} bytes, a crash while writing) "
                    "was acknowledged when the log was reopened",
                )
            else:
                self.problem(
                    before.path,
                    before.line,
                    None,
                    "truncated",
                    f"the last line is incomplete ({before.torn} bytes without a newline)",
                )
            before.torn = 0
        elif torn:
            self.problem(
                path,
                1,
                entry.seq,
                "truncated",
                f"the header records a {torn}-byte incomplete line at the end of "
                f"{before.path}, which is not there any more",
            )
        # After a reported break, check the header against its own claim, not twice.
        return (before.seq + 1, before.hash) if linked else (p_seq + 1, p_hash)


def verify_files(
    paths: Iterable[str | Path], *, anchors: Sequence[tuple[int, str]] = ()
) -> VerifyReport:
    """Verify audit log files: any order, any number of chains (one per writer process).

    Files of one chain are put in order by their headers' seq. ``anchors`` are (seq, hash)
    pairs recorded elsewhere (``FileAuditSink.head()``): each must be found, which detects
    the removal of the last entries of a log and a rewrite of the whole chain.
    """
    report = VerifyReport()
    anchor_map: dict[int, set[str]] = {}
    for seq, digest in anchors:
        anchor_map.setdefault(seq, set()).add(digest)
    walker = _Walker(report, anchor_map)
    heads = [_head_of(str(p), i) for i, p in enumerate(paths)]
    chains: dict[str, list[_FileHead]] = {}
    loose: list[_FileHead] = []
    for head in heads:
        if head.log_id is None:
            loose.append(head)
        else:
            chains.setdefault(head.log_id, []).append(head)
    for log_id, members in chains.items():
        members.sort(key=lambda h: (h.seq if h.seq is not None else -1, h.order))
        walker.chain(log_id, [h.path for h in members])
    for head in loose:
        walker.chain(None, [head.path])
    for seq, digests in anchor_map.items():
        for digest in digests:
            if (seq, digest) not in walker.found:
                report.problems.append(
                    Problem(
                        "",
                        0,
                        seq,
                        "anchor",
                        f"no entry seq {seq} with hash {digest}: the log was truncated or "
                        "rewritten",
                    )
                )
    return report
