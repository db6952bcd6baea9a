"""The hash chain of an audit log: sealing lines, and verifying files.

Every line of an audit log is one compact JSON object followed by ``\\n``, whose last member
is ``"openkmsChain":{"hash":H,"prev":P,"seq":N}``:

* ``seq``: the entry's position in the chain (0, 1, 2 ... across files and restarts);
* ``prev``: the ``hash`` of the entry before it (for entry 0, the genesis value
  ``sha256("openkms-audit-v1 genesis " + logId)``);
* ``hash``: lowercase hex SHA-256 of the line's exact bytes *without* the 74 bytes
  ``"hash":"<64 hex>",`` and without the newline.

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
    "PRUNED",
    "ChainError",
    "ChainSummary",
    "Entry",
    "Problem",
    "VerifyReport",
    "file_end",
    "genesis",
    "header_entry",
    "last_line",
    "order_files",
    "parse_line",
    "prune_notice",
    "pruned_chains",
    "seal",
    "seal_parts",
    "verify_files",
]

FORMAT_VERSION: Final = 1
CHAIN: Final = "openkmsChain"
HEADER: Final = "openkmsHeader"
NOTICE: Final = "openkmsNotice"
PRUNED: Final = "pruned"  # a notice's kind: files were deleted on purpose

# The chain member closes every line: ``...,"openkmsChain":{"hash":H,"prev":P,"seq":N}}``.
_TAIL: Final = re.compile(
    rb'[,{]"openkmsChain":\{"hash":"([0-9a-f]{64})","prev":"([0-9a-f]{64})",'
    rb'"seq":(0|[1-9][0-9]{0,18})\}\}\Z'
)
_TAIL_MAX: Final = 200  # bytes: the chain member is at most this long


class ChainError(ValueError):
    """A line cannot be sealed, or read as a chain entry."""


def genesis(log_id: str) -> str:
    """The ``prev`` of a chain's first entry."""
    return hashlib.sha256(b"openkms-audit-v1 genesis " + log_id.encode()).hexdigest()


# The start of a record up to its requestParameters (userIdentity, eventTime to the second,
# eventSource, eventName, Region, source address, user agent) is the same for every call of one
# principal and operation from one client within a second. The SHA-256 state after those bytes
# is kept, keyed by the bytes themselves, so that such a line hashes only what follows them:
# the digest is that of the line's exact bytes whatever is cached (the key is compared in
# full). Bounded: cleared when full, rebuilt by the next lines.
_CUT: Final = b',"requestParameters":'
_PREFIX_STATES: dict[bytes, Any] = {}
_PREFIX_STATES_LIMIT: Final = 512
_PREFIX_MIN: Final = 128  # shorter starts are not worth a cache entry


def _hasher(head: bytes) -> tuple[Any, int]:
    """A SHA-256 object that has absorbed ``head[:n]``, and ``n``."""
    cut = head.find(_CUT)
    if cut < _PREFIX_MIN:
        return hashlib.sha256(), 0
    prefix = head[:cut]
    state = _PREFIX_STATES.get(prefix)
    if state is None:
        state = hashlib.sha256(prefix)
        if len(_PREFIX_STATES) >= _PREFIX_STATES_LIMIT:
            _PREFIX_STATES.clear()
        _PREFIX_STATES[prefix] = state
    return state.copy(), cut


def seal(entry: Mapping[str, Any], seq: int, prev: str) -> tuple[bytes, str]:
    """The line (with its newline) for ``entry`` at ``seq`` after ``prev``, and its hash.

    The entry is serialized compactly in its own key order, and the chain member is added as
    its last member; the hash covers the line's exact bytes without ``"hash":"<hex>",`` and
    the newline, so verifying never depends on re-serializing JSON the same way."""
    if CHAIN in entry:
        raise ChainError(f"a record must not contain a member named {CHAIN!r}")
    try:
        body = orjson.dumps(entry)
    except TypeError as exc:  # orjson.JSONEncodeError: bytes, a non-str key, ...
        raise ChainError(f"record is not JSON-serializable: {exc}") from exc
    if body[-1:] != b"}":
        raise ChainError("a record must be a JSON object")
    head = body[:-1] + (b',"openkmsChain":{' if len(body) > 2 else b'"openkmsChain":{')
    tail = b'"prev":"%s","seq":%d}}' % (prev.encode(), seq)
    hasher, done = _hasher(head)
    hasher.update(head[done:] + tail if done else head + tail)
    digest: str = hasher.hexdigest()
    return b"".join((head, b'"hash":"', digest.encode(), b'",', tail, b"\n")), digest


def seal_parts(prefix: bytes, rest: bytes, seq: int, prev: str) -> tuple[bytes, str]:
    """``seal`` of a record already serialized as ``prefix + rest`` (``events.record_parts``):
    the same line and hash as ``seal`` gives for that record. The SHA-256 state after
    ``prefix`` is kept per prefix, as ``seal`` keeps it per record start: ``record_parts``
    hands out one bytes object per prefix, whose hash Python caches, so finding it costs a
    pointer comparison rather than hashing and comparing the bytes."""
    if not prefix.startswith(b"{") or rest[-1:] != b"}":
        raise ChainError("a record must be a JSON object")
    state = _PREFIX_STATES.get(prefix)
    if state is None:
        state = hashlib.sha256(prefix)
        if len(_PREFIX_STATES) >= _PREFIX_STATES_LIMIT:
            _PREFIX_STATES.clear()
        _PREFIX_STATES[prefix] = state
    hasher = state.copy()
    middle = rest[:-1] + b',"openkmsChain":{'
    tail = b'"prev":"%s","seq":%d}}' % (prev.encode(), seq)
    hasher.update(middle + tail)
    digest: str = hasher.hexdigest()
    line = b"".join((prefix, middle, b'"hash":"', digest.encode(), b'",', tail, b"\n"))
    return line, digest


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
    cut = max(0, len(text) - _TAIL_MAX)
    match = _TAIL.search(text, cut)
    if match is None:
        raise ChainError(f"the line does not end with its {CHAIN} member")
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ChainError("not a JSON object") from exc
    if not isinstance(obj, dict):
        raise ChainError("not a JSON object")
    digest, prev, seq = match.group(1).decode(), match.group(2).decode(), int(match.group(3))
    if obj.get(CHAIN) != {"hash": digest, "prev": prev, "seq": seq}:
        raise ChainError(f"the {CHAIN} member is inconsistent")
    # The hashed bytes: the line without '"hash":"<64 hex>",' (8 + 64 + 2 bytes).
    computed = hashlib.sha256(text[: match.start(1) - 8] + text[match.end(1) + 2 :]).hexdigest()
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
        return handle.readline(1 << 20)  # a header is small; do not slurp a garbage file


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


_NOT_WRITTEN: Final = {
    "dropped": "were dropped by the writer (fail-open): those calls were answered",
    "refused": "could not be written (fail-closed): those calls were refused",
}


def _seq_range(first: int, last: int) -> str:
    return f"seq {first} is" if first == last else f"seq {first}..{last} are"


@dataclass(slots=True)
class _Link:
    seq: int
    hash: str
    prev: str
    line: int


class _Links:
    """Follows the chain through one file: which entries link, and where it broke.

    An entry that goes back in seq is left out of the chain (reported as a duplicate or as
    out of order) so that the genuine entries after it still link. Two entries claiming the
    same place (same seq, same prev) are a fork: the next line tells which one the chain goes
    on from, and the other is reported as inserted."""

    _RECENT = 4096

    def __init__(self, walker: _Walker, path: str) -> None:
        self.walker = walker
        self.path = path
        self.seq: int | None = None  # expected seq of the next entry (None: unknown)
        self.prev: str | None = None  # expected prev of the next entry
        self.last: _Link | None = None
        self.fork: _Link | None = None
        self.recent: dict[str, int] = {}  # hash -> line, of entries taken

    def expect(self, seq: int | None, prev: str | None) -> None:
        self.seq, self.prev = seq, prev

    def lost(self) -> None:
        self.resolve_fork(None)
        self.seq = self.prev = None

    def problem(self, line: int, seq: int | None, kind: str, message: str) -> None:
        self.walker.problem(self.path, line, seq, kind, message)

    def resolve_fork(self, entry: Entry | None) -> None:
        fork, last = self.fork, self.last
        if fork is None or last is None:
            return
        self.fork = None
        if entry is not None and entry.prev == fork.hash:
            self.problem(
                last.line,
                last.seq,
                "inserted",
                f"not part of the chain: line {fork.line} holds seq {fork.seq} too, and the "
                f"chain goes on from it",
            )
            self.last, self.seq, self.prev = fork, fork.seq + 1, fork.hash
            self.recent[fork.hash] = fork.line
        else:
            self.problem(
                fork.line,
                fork.seq,
                "inserted",
                f"not part of the chain: line {last.line} holds seq {fork.seq} too"
                + (", and the chain goes on from it" if entry is not None else ""),
            )

    def take(self, entry: Entry, line: int) -> bool:
        """Check one entry's link; True when it is taken as part of the chain."""
        self.resolve_fork(entry)
        seq, last = self.seq, self.last
        if seq is not None and entry.seq < seq:
            if last is not None and (entry.seq, entry.prev) == (last.seq, last.prev):
                self.fork = _Link(entry.seq, entry.hash, entry.prev, line)
            elif entry.hash in self.recent:
                self.problem(
                    line,
                    entry.seq,
                    "duplicate",
                    f"a copy of line {self.recent[entry.hash]} (seq {entry.seq})",
                )
            else:
                self.problem(
                    line,
                    entry.seq,
                    "out-of-order",
                    f"seq {entry.seq} after seq {seq - 1}: inserted or moved here",
                )
            return False
        if seq is not None and entry.seq > seq:
            self.problem(
                line,
                entry.seq,
                "missing",
                f"{_seq_range(seq, entry.seq - 1)} missing before this line: removed or moved",
            )
        elif self.prev is not None and entry.prev != self.prev:
            after = f"line {last.line}" if last is not None else "the previous file"
            self.problem(
                line,
                entry.seq,
                "broken-link",
                f"prev does not match the hash of {after}: that entry was modified and "
                "re-hashed, or this one was inserted",
            )
        self.last = _Link(entry.seq, entry.hash, entry.prev, line)
        self.seq, self.prev = entry.seq + 1, entry.hash
        if len(self.recent) >= self._RECENT:
            self.recent.clear()
        self.recent[entry.hash] = line
        return True

    def finish(self) -> None:
        self.resolve_fork(None)


class _Walker:
    def __init__(self, report: VerifyReport, anchors: dict[int, set[str]]) -> None:
        self.report = report
        self.anchors = anchors
        self.found: set[tuple[int, str]] = set()
        # Chains whose first file given continues from an earlier one: (path, seq, logId,
        # previous seq, previous hash), resolved once every file is read.
        self.partial: list[tuple[str, int, str, int, str]] = []
        # (logId, seq, hash) of the last entry of files removed by a recorded prune.
        self.pruned: dict[tuple[str, int, str], str] = {}

    def problem(self, path: str, line: int, seq: int | None, kind: str, message: str) -> None:
        self.report.problems.append(Problem(path, line, seq, kind, message))

    def warn(self, path: str, line: int, seq: int | None, kind: str, message: str) -> None:
        self.report.warnings.append(Problem(path, line, seq, kind, message))

    def note_pruned(self, notice: dict[str, Any], where: str) -> None:
        chains = notice.get("chains")
        if not isinstance(chains, list):
            return
        for item in chains:
            if not isinstance(item, dict):
                continue
            log_id, seq, digest = item.get("logId"), item.get("throughSeq"), item.get("hash")
            if isinstance(log_id, str) and type(seq) is int and isinstance(digest, str):
                self.pruned[(log_id, seq, digest)] = where

    def resolve_partial(self, allow_partial: bool) -> None:
        """A chain that begins in a file not given: explained by a recorded prune (warning),
        accepted with ``allow_partial`` (warning), else files are missing (problem)."""
        for path, seq, log_id, p_seq, p_hash in self.partial:
            where = self.pruned.get((log_id, p_seq, p_hash))
            if where is not None:
                self.warn(
                    path,
                    1,
                    seq,
                    "pruned",
                    f"the chain continues from seq {p_seq}, in files removed by the prune "
                    f"recorded at {where}",
                )
            elif allow_partial:
                self.warn(
                    path,
                    1,
                    seq,
                    "partial",
                    f"the chain continues from seq {p_seq} in a file not given; its earlier "
                    "files cannot be checked",
                )
            else:
                self.problem(
                    path,
                    1,
                    seq,
                    "missing-files",
                    f"the chain continues from seq {p_seq} in a file that was not given and "
                    "whose removal no prune recorded: files were deleted (give every file, or "
                    "--allow-partial to check only these)",
                )

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
        end = _End(path, None, None, 0, 0)
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            self.problem(path, 0, None, "unreadable", str(exc))
            return before or end
        links = _Links(self, path)
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
                except ChainError as unparseable:
                    self.problem(path, lineno, None, "unparseable", str(unparseable))
                    links.lost()  # the next line cannot be linked
                    continue
                self.report.entries += 1
                if lineno == 1:
                    links.expect(
                        *self.header(path, entry, log_id, before, first_of_chain=first_of_chain)
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
                        "the entry's content does not match its hash: it was modified",
                    )
                if not links.take(entry, lineno):
                    continue  # not part of the chain (reported)
                if entry.is_record:
                    self.report.records += 1
                    summary.records += 1
                notice = entry.notice
                if notice is not None and notice.get("kind") == PRUNED:
                    self.note_pruned(notice, f"{path}:{lineno}")
                if notice is not None and notice.get("kind") in _NOT_WRITTEN:
                    self.warn(
                        path,
                        lineno,
                        entry.seq,
                        str(notice["kind"]),
                        f"{notice.get('count')} record(s) between {notice.get('first')} and "
                        f"{notice.get('last')} {_NOT_WRITTEN[notice['kind']]}",
                    )
                if entry.seq in self.anchors and entry.hash in self.anchors[entry.seq]:
                    self.found.add((entry.seq, entry.hash))
                if summary.first_seq is None:
                    summary.first_seq = entry.seq
        links.finish()
        if links.last is not None:
            end.seq, end.hash = links.last.seq, links.last.hash
            summary.last_seq, summary.last_hash = links.last.seq, links.last.hash
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
            assert log_id is not None
            self.partial.append((path, entry.seq, log_id, p_seq, p_hash))
            return p_seq + 1, p_hash
        if before.seq is None or before.hash is None:
            return p_seq + 1, p_hash  # the previous file was unreadable: already reported
        linked = (p_seq, p_hash) == (before.seq, before.hash)
        if not linked:
            if p_seq > before.seq:
                message = (
                    f"{before.path} ends at seq {before.seq} but this file continues from seq "
                    f"{p_seq}: {_seq_range(before.seq + 1, p_seq)} missing (removed from the end "
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


def order_files(paths: Iterable[str | Path]) -> list[tuple[str | None, list[str]]]:
    """The files grouped by chain (``logId`` of their header) and put in chain order; a
    file without a readable header is a group of its own (``None``)."""
    groups: dict[str, list[_FileHead]] = {}
    result: list[tuple[str | None, list[_FileHead]]] = []
    for order, path in enumerate(paths):
        head = _head_of(str(path), order)
        if head.log_id is None:
            result.append((None, [head]))
        elif head.log_id in groups:
            groups[head.log_id].append(head)
        else:
            groups[head.log_id] = [head]
            result.append((head.log_id, groups[head.log_id]))
    for _, members in result:
        members.sort(key=lambda h: (h.seq if h.seq is not None else -1, h.order))
    return [(log_id, [h.path for h in members]) for log_id, members in result]


def verify_files(
    paths: Iterable[str | Path],
    *,
    anchors: Sequence[tuple[int, str]] = (),
    allow_partial: bool = False,
) -> VerifyReport:
    """Verify audit log files: any order, any number of chains (one per writer process).

    Files of one chain are put in order by their headers' seq. ``anchors`` are (seq, hash)
    pairs recorded elsewhere (``FileAuditSink.head()``): each must be found, which detects
    the removal of the last entries of a log and a rewrite of the whole chain.

    A chain whose earliest file given continues from an earlier file is a problem
    (``missing-files``) unless a ``pruned`` notice in the files given records the removal of
    that earlier file, or ``allow_partial`` says only some files were given on purpose.
    """
    report = VerifyReport()
    anchor_map: dict[int, set[str]] = {}
    for seq, digest in anchors:
        anchor_map.setdefault(seq, set()).add(digest)
    walker = _Walker(report, anchor_map)
    for log_id, members in order_files(paths):
        walker.chain(log_id, members)
    walker.resolve_partial(allow_partial)
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


# --- pruning -------------------------------------------------------------------------------------
def last_line(path: str) -> bytes:
    """The last complete line of a file (b"" if none)."""
    with open(path, "rb") as handle:
        handle.seek(0, 2)
        end = handle.tell()
        block = 64 * 1024
        buf = b""
        pos = end
        while pos > 0:
            start = max(0, pos - block)
            handle.seek(start)
            buf = handle.read(pos - start) + buf
            pos = start
            cut = buf.rfind(b"\n")
            if cut >= 0 and (buf.rfind(b"\n", 0, cut) >= 0 or pos == 0):
                break
        cut = buf.rfind(b"\n")
        if cut < 0:
            return b""
        return buf[buf.rfind(b"\n", 0, cut) + 1 : cut + 1]


def file_end(path: str | Path) -> tuple[str | None, int | None, str | None]:
    """(logId of the file's header, seq and hash of its last complete entry)."""
    head = _head_of(str(path), 0)
    try:
        last = parse_line(last_line(str(path)))
    except (ChainError, OSError):
        return head.log_id, None, None
    return head.log_id, last.seq, last.hash


def pruned_chains(paths: Iterable[str | Path]) -> list[dict[str, Any]]:
    """What a ``pruned`` notice must say about ``paths`` (files about to be deleted): for each,
    ``{"logId", "throughSeq", "hash"}`` of its last entry (what the next file's header names
    as its predecessor), plus the entries of every ``pruned`` notice inside them, carried
    forward so that an earlier prune stays explained."""
    found: dict[tuple[str, int, str], None] = {}
    for path in paths:
        log_id, seq, digest = file_end(path)
        if log_id is not None and seq is not None and digest is not None:
            found[(log_id, seq, digest)] = None
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed below
        except OSError:
            continue
        with handle:
            for raw in handle:
                if b'"openkmsNotice"' not in raw or b'"pruned"' not in raw:
                    continue
                try:
                    notice = parse_line(raw).notice
                except ChainError:
                    continue
                if notice is None or notice.get("kind") != PRUNED:
                    continue
                for item in notice.get("chains") or ():
                    if isinstance(item, dict):
                        key = (item.get("logId"), item.get("throughSeq"), item.get("hash"))
                        if (
                            isinstance(key[0], str)
                            and type(key[1]) is int
                            and isinstance(key[2], str)
                        ):
                            found[key] = None  # type: ignore[index]
    return [{"logId": k[0], "throughSeq": k[1], "hash": k[2]} for k in found]


def prune_notice(
    *,
    chains: list[dict[str, Any]],
    files: Sequence[str],
    reason: str,
    at: str,
    before: str | None = None,
    by: str = "",
) -> dict[str, Any]:
    """The chain entry that records the deletion of ``files`` (names, not paths)."""
    body: dict[str, Any] = {"kind": PRUNED, "at": at, "reason": reason, "files": list(files)}
    if before is not None:
        body["before"] = before
    if by:
        body["by"] = by
    body["chains"] = chains
    return {NOTICE: body}
