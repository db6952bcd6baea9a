"""Where audit records go: a rotating, hash-chained JSON-lines file; stdout; several at once.

The hot path is ``sink.write(record)``: it seals the record into the chain (serializes it,
hashes it, assigns its seq) under a lock and appends the line to an in-memory batch. The
batch is written, and fsync'ed, by a background thread every ``flush_interval`` seconds (or
by ``flush()``), so no request waits for the disk.

Fail-closed (the default) means ``write`` raises ``AuditWriteError`` (and the server must fail
the request) whenever the record cannot be accepted: it cannot be serialized, the sink is
closed, the batch is over its bound because the disk is stalled, or the last write to the file
failed and has not yet been retried successfully. A record accepted by ``write`` is written
unless the process dies within ``flush_interval`` (set ``flush_interval=0`` to write and fsync
inside every ``write``). Fail-open counts the failure (``stats().dropped``, ``failures``) and
goes on; the records it had to drop are accounted for in the chain by an ``openkmsNotice``.

Several worker processes: each process writes its own file. The first sink opened on
``audit.log`` takes worker slot 0 and writes ``audit.log``; a second process finds slot 0
locked (``flock`` on ``.audit.log.lock``, held while the sink is open, released by the kernel
if the process dies) and takes slot 1, ``audit.w1.log``, and so on. Each file carries its own
chain (its own ``logId``); after a restart each process takes a free slot again and resumes
that slot's chain from the last line of its file.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
import sys
import threading
import time
import uuid
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Final, Protocol

from openkms.audit.chain import (
    NOTICE,
    ChainError,
    Entry,
    genesis,
    header_entry,
    parse_line,
    prune_notice,
    pruned_chains,
    seal,
    seal_parts,
)
from openkms.clock import Clock, SystemClock

__all__ = [
    "AuditSink",
    "AuditWriteError",
    "FileAuditSink",
    "MultiSink",
    "NullAuditSink",
    "SinkStats",
    "StdoutAuditSink",
    "slot_path",
]

log = logging.getLogger("openkms.audit")

MiB: Final = 1024 * 1024
_TAIL_BLOCK: Final = 64 * 1024
_MAX_SLOTS: Final = 64


class AuditWriteError(Exception):
    """A record could not be accepted by a fail-closed sink: fail the request."""


class AuditSink(Protocol):
    def write(self, record: Mapping[str, Any]) -> None: ...

    # The same, for a record serialized by ``events.record_parts`` (the request path's form).
    def write_parts(self, prefix: bytes, rest: bytes) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class SinkStats:
    written: int  # records (and headers, notices) written to the file
    accepted: int  # records accepted by write()
    dropped: int  # records refused or dropped
    failures: int  # failed write attempts (I/O errors, unserializable records)
    pending_bytes: int
    seq: int  # last seq sealed
    error: str | None  # the I/O error that has not been recovered from yet


# What a sink seals: a record, or a record serialized as (prefix, rest) by events.record_parts.
Sealable = Mapping[str, Any] | tuple[bytes, bytes]


def _seal(entry: Sealable, seq: int, prev: str) -> tuple[bytes, str]:
    if type(entry) is tuple:
        return seal_parts(entry[0], entry[1], seq, prev)
    assert not isinstance(entry, tuple)
    return seal(entry, seq, prev)


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


class _Chain:
    """Chain state of one writer: the last seq and hash."""

    __slots__ = ("hash", "log_id", "seq")

    def __init__(self, log_id: str, seq: int = -1, last_hash: str | None = None) -> None:
        self.log_id = log_id
        self.seq = seq
        self.hash = genesis(log_id) if last_hash is None else last_hash

    def seal(self, entry: Sealable) -> bytes:
        line, digest = _seal(entry, self.seq + 1, self.hash)
        self.seq += 1
        self.hash = digest
        return line


class _Dropped:
    """Records not written since the last accepted one: ``dropped`` by a fail-open sink, or
    ``refused`` by a fail-closed one (their requests failed)."""

    __slots__ = ("count", "first", "kind", "last")

    def __init__(self, fail_closed: bool) -> None:
        self.kind = "refused" if fail_closed else "dropped"
        self.count = 0
        self.first = 0.0
        self.last = 0.0

    def add(self, now: float) -> None:
        if self.count == 0:
            self.first = now
        self.count += 1
        self.last = now

    def notice(self) -> dict[str, Any]:
        entry = {
            NOTICE: {
                "kind": self.kind,
                "count": self.count,
                "first": _iso(self.first),
                "last": _iso(self.last),
            }
        }
        self.count = 0
        return entry


# --- fork safety ----------------------------------------------------------------------------
_OPEN_SINKS: weakref.WeakSet[FileAuditSink | StdoutAuditSink] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for sink in list(_OPEN_SINKS):
        sink._forked()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


# --- files ---------------------------------------------------------------------------------------
def slot_path(path: str | Path, slot: int) -> Path:
    """The file of worker slot ``slot``: ``audit.log``, ``audit.w1.log``, ``audit.w2.log`` ..."""
    base = Path(path)
    if slot == 0:
        return base
    if base.suffix:
        return base.with_name(f"{base.stem}.w{slot}{base.suffix}")
    return base.with_name(f"{base.name}.w{slot}")


def _lock_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.lock")


def _backup(path: Path, index: int) -> Path:
    return path.with_name(f"{path.name}.{index}")


@dataclass(slots=True)
class _Tail:
    """What the end of an existing file says about its chain."""

    size: int
    log_id: str | None  # from the header (first line)
    last: Entry | None  # the last complete line, if it parses
    torn: int  # bytes after the last newline


def _read_tail(path: Path) -> _Tail | None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        size = os.fstat(fd).st_size
        if size == 0:
            return _Tail(0, None, None, 0)
        first = os.pread(fd, min(size, _TAIL_BLOCK), 0)
        newline = first.find(b"\n")
        while newline < 0 and len(first) < size:
            first += os.pread(fd, min(size - len(first), _TAIL_BLOCK), len(first))
            newline = first.find(b"\n")
        log_id = None
        if newline >= 0:
            try:
                header = parse_line(first[: newline + 1]).header
            except ChainError:
                header = None
            if header is not None and isinstance(header.get("logId"), str):
                log_id = header["logId"]
        # The last complete line: back from the end to the newline before the last newline.
        end = size
        buf = b""
        while True:
            start = max(0, end - _TAIL_BLOCK)
            buf = os.pread(fd, end - start, start) + buf
            end = start
            last_nl = buf.rfind(b"\n")
            if last_nl >= 0 and (buf.rfind(b"\n", 0, last_nl) >= 0 or start == 0):
                break
            if start == 0:
                break
        last_nl = buf.rfind(b"\n")
        if last_nl < 0:
            return _Tail(size, log_id, None, size)
        torn = len(buf) - last_nl - 1
        line_start = buf.rfind(b"\n", 0, last_nl) + 1
        try:
            last: Entry | None = parse_line(buf[line_start : last_nl + 1])
        except ChainError:
            last = None
        return _Tail(size, log_id, last, torn)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


_ROTATE: Final = object()  # in the batch: close the file, shift the backups, open a new one


class FileAuditSink:
    """Hash-chained JSON lines in ``path`` (or its worker-slot sibling), rotated by size.

    ``write(record)``: hot path, thread-safe. ``flush()``: write and fsync the batch now.
    ``close()``: flush, stop the background thread, release the file. ``head()``: the last
    (logId, seq, hash), to keep elsewhere as an anchor for ``verify_files``.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        max_bytes: int = 64 * MiB,
        backups: int = 0,
        flush_interval: float = 0.05,
        fail_closed: bool = True,
        clock: Clock | None = None,
        max_pending_bytes: int = 64 * MiB,
        background: bool = True,
    ) -> None:
        if backups < 0:
            raise ValueError("backups: 0 (keep every rotated file) or more")
        if max_bytes < 4096:
            raise ValueError("max_bytes: at least 4096")
        self._clock: Clock = clock or SystemClock()
        self._max_bytes = max_bytes
        self._backups = backups
        self._interval = flush_interval
        self._sync = flush_interval <= 0
        self._fail_closed = fail_closed
        self._max_pending = max_pending_bytes
        self._lock = threading.Lock()  # chain state, batch, counters
        self._io_lock = threading.Lock()  # the file descriptor, rotation
        self._pending: list[Any] = []  # bytes lines and _ROTATE markers
        self._pending_bytes = 0
        self._error: OSError | None = None
        self._refusal: str | None = None  # set once closed or inherited by a fork
        self._is_forked = False
        self._dropped = _Dropped(fail_closed)
        self._written = 0
        self._accepted = 0
        self._dropped_total = 0
        self._failures = 0
        self._pid = os.getpid()
        self._host = socket.gethostname()
        self._slot, self.path, self._slot_fd = self._take_slot(Path(path))
        self._fd = -1
        try:
            self._chain, self._file_bytes, self._file_entries = self._open_log()
        except BaseException:
            self._release_slot()
            raise
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if background and not self._sync:
            self._thread = threading.Thread(
                target=self._run, name=f"openkms-audit-{self.path.name}", daemon=True
            )
            self._thread.start()
        _OPEN_SINKS.add(self)

    # -- slots ------------------------------------------------------------------------------
    @staticmethod
    def _take_slot(base: Path) -> tuple[int, Path, int]:
        base.parent.mkdir(parents=True, exist_ok=True)
        for slot in range(_MAX_SLOTS):
            path = slot_path(base, slot)
            fd = os.open(_lock_path(path), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            except BaseException:
                os.close(fd)
                raise
            return slot, path, fd
        raise AuditWriteError(f"{base}: all {_MAX_SLOTS} worker slots are in use")

    def _release_slot(self) -> None:
        if self._slot_fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._slot_fd)  # closing the descriptor releases the flock
            self._slot_fd = -1

    # -- startup: resume or begin the chain ---------------------------------------------------
    def _header_line(
        self, chain: _Chain, previous: tuple[int, str] | None, torn: int = 0, note: str = ""
    ) -> bytes:
        return chain.seal(
            header_entry(
                log_id=chain.log_id,
                created=_iso(self._clock.now()),
                pid=self._pid,
                host=self._host,
                previous=previous,
                torn_tail=torn,
                note=note,
            )
        )

    def _open_log(self) -> tuple[_Chain, int, int]:
        tail = _read_tail(self.path)
        if tail is not None and tail.size > 0:
            intact = tail.log_id is not None and tail.last is not None
            if intact and tail.torn == 0 and tail.size < self._max_bytes:
                assert tail.log_id is not None and tail.last is not None
                chain = _Chain(tail.log_id, tail.last.seq, tail.last.hash)
                notice = {
                    NOTICE: {
                        "kind": "resumed",
                        "created": _iso(self._clock.now()),
                        "pid": self._pid,
                        "host": self._host,
                    }
                }
                line = chain.seal(notice)
                self._fd = self._open_fd()
                self._write_all(line)
                os.fsync(self._fd)
                self._written += 1
                return chain, tail.size + len(line), 2  # at least a header and this notice
            # Full, torn by a crash, or unreadable: keep it as it is, start the next file.
            pruned = self._shift_backups()
            if intact:
                assert tail.log_id is not None and tail.last is not None
                chain = _Chain(tail.log_id, tail.last.seq, tail.last.hash)
                previous: tuple[int, str] | None = (tail.last.seq, tail.last.hash)
                note = ""
            else:
                log.warning("audit log %s cannot be read; a new chain begins", self.path)
                chain, previous = _Chain(uuid.uuid4().hex), None
                note = "the previous file's chain could not be read; a new chain begins"
            begun = self._begin_file(chain, previous, tail.torn if intact else 0, note)
            if pruned is None:
                return begun
            line = chain.seal(pruned)
            self._write_all(line)
            os.fsync(self._fd)
            self._written += 1
            return chain, begun[1] + len(line), begun[2] + 1
        # No file (or an empty one): a rotation may have been cut short; continue from .1.
        rotated = _read_tail(_backup(self.path, 1))
        if rotated is not None and rotated.log_id is not None and rotated.last is not None:
            chain = _Chain(rotated.log_id, rotated.last.seq, rotated.last.hash)
            return self._begin_file(chain, (rotated.last.seq, rotated.last.hash), rotated.torn)
        return self._begin_file(_Chain(uuid.uuid4().hex), None)

    def _begin_file(
        self, chain: _Chain, previous: tuple[int, str] | None, torn: int = 0, note: str = ""
    ) -> tuple[_Chain, int, int]:
        line = self._header_line(chain, previous, torn, note)
        self._fd = self._open_fd()
        self._write_all(line)
        os.fsync(self._fd)
        _fsync_dir(self.path)
        self._written += 1
        return chain, len(line), 1

    def _open_fd(self) -> int:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        if os.fstat(fd).st_mode & 0o077:  # a file left readable by others: not any more
            with contextlib.suppress(OSError):
                os.fchmod(fd, 0o600)
        return fd

    def _shift_backups(self) -> dict[str, Any] | None:
        """``audit.log.9`` → ``.10`` … ``audit.log`` → ``.1``. With ``backups`` 0 (the default)
        every file is kept; otherwise the oldest beyond ``backups`` is overwritten, and the
        ``pruned`` notice to seal into the chain (so that ``verify`` can tell this deletion,
        asked for by the operator, from an attacker's) is returned."""
        if not self.path.exists():
            return None  # already shifted (a retried rotation)
        top = self._backups
        notice = None
        if top == 0:
            top = 1
            while _backup(self.path, top).exists():
                top += 1
        else:
            doomed = _backup(self.path, top)
            if doomed.exists():
                notice = prune_notice(
                    chains=pruned_chains([doomed]),
                    files=[doomed.name],
                    reason=f"rotation keeps {top} backups (audit_backups)",
                    at=_iso(self._clock.now()),
                )
        for index in range(top - 1, 0, -1):
            source = _backup(self.path, index)
            if source.exists():
                os.replace(source, _backup(self.path, index + 1))
        if self.path.exists():
            os.replace(self.path, _backup(self.path, 1))
        _fsync_dir(self.path)
        return notice

    # -- hot path ---------------------------------------------------------------------------
    def write(self, record: Mapping[str, Any]) -> None:
        """Seal ``record`` into the chain and queue it. Raises ``AuditWriteError`` when it
        cannot be accepted and the sink is fail-closed (see the module docstring)."""
        self._accept(record)

    def write_parts(self, prefix: bytes, rest: bytes) -> None:
        """``write`` for the record ``events.record_parts`` serialized as ``prefix + rest``.

        Every request's record comes here: the usual case (nothing refused, dropped or failed,
        no rotation due) is sealed and queued in this one frame; anything else goes the way of
        ``write``, which checks everything again."""
        queued = False
        with self._lock:
            chain = self._chain
            if (
                self._refusal is None
                and self._error is None
                and not self._dropped.count
                and self._pending_bytes < self._max_pending
            ):
                try:
                    line, digest = seal_parts(prefix, rest, chain.seq + 1, chain.hash)
                except ChainError:
                    pass  # refused (and counted) below, by _accept
                else:
                    size = len(line)
                    if self._file_bytes + size <= self._max_bytes or self._file_entries <= 1:
                        chain.seq += 1
                        chain.hash = digest
                        self._file_bytes += size
                        self._file_entries += 1
                        self._pending.append(line)
                        self._pending_bytes += size
                        self._accepted += 1
                        queued = True
        if not queued:
            self._accept((prefix, rest))
        elif self._sync:
            self.flush()

    def _accept(self, record: Sealable) -> None:
        with self._lock:
            refusal = self._refusal
            if refusal is None:
                if self._error is not None and self._fail_closed:
                    refusal = f"the audit log cannot be written: {self._error}"
                elif self._pending_bytes >= self._max_pending:
                    refusal = "the audit log is not keeping up (write batch full)"
                else:
                    try:
                        if self._dropped.count:
                            self._seal_and_queue(self._dropped.notice())
                        self._seal_and_queue(record)
                    except ChainError as exc:
                        self._failures += 1
                        refusal = str(exc)
                    else:
                        self._accepted += 1
            if refusal is not None:
                self._dropped_total += 1
                self._dropped.add(self._clock.now())
        if refusal is not None:
            if self._fail_closed:
                raise AuditWriteError(refusal)
            return
        if self._sync:
            self.flush()

    def _seal_and_queue(self, entry: Sealable) -> None:
        chain = self._chain
        line, digest = _seal(entry, chain.seq + 1, chain.hash)
        size = len(line)
        if self._file_bytes + size > self._max_bytes and self._file_entries > 1:
            # The file is full: the next file's header first, then this entry after it.
            header = self._header_line(chain, (chain.seq, chain.hash))
            self._pending.append(_ROTATE)
            self._pending.append(header)
            self._pending_bytes += len(header)
            self._file_bytes, self._file_entries = len(header), 1
            line, digest = _seal(entry, chain.seq + 1, chain.hash)
            size = len(line)
        chain.seq += 1
        chain.hash = digest
        self._file_bytes += size
        self._file_entries += 1
        self._pending.append(line)
        self._pending_bytes += size

    # -- flushing -----------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._flush(quiet=True)

    def flush(self) -> None:
        """Write and fsync everything accepted so far. Raises ``AuditWriteError`` if that
        fails and the sink is fail-closed (the batch is kept and retried)."""
        self._flush(quiet=not self._fail_closed)

    def _flush(self, *, quiet: bool) -> None:
        with self._io_lock:
            with self._lock:
                items, self._pending = self._pending, []
                self._pending_bytes = 0
            if not items:
                return
            if self._is_forked:
                self._requeue(items)
                return
            try:
                self._write_items(items)
            except OSError as exc:
                with self._lock:
                    first = self._error is None
                    self._failures += 1
                    self._error = exc
                    self._pending[:0] = items  # what is left, in order
                    self._pending_bytes += sum(len(i) for i in items if i is not _ROTATE)
                if first:  # not again at every retry
                    log.error("audit log %s cannot be written (will retry): %s", self.path, exc)
                if not quiet:
                    raise AuditWriteError(f"the audit log cannot be written: {exc}") from exc
                return
            if self._error is not None:
                with self._lock:
                    self._error = None
                log.warning("audit log %s is written again", self.path)

    def _requeue(self, items: list[Any]) -> None:
        with self._lock:
            self._pending[:0] = items
            self._pending_bytes += sum(len(i) for i in items if i is not _ROTATE)

    def _write_items(self, items: list[Any]) -> None:
        """Write ``items`` (each one line) in order, removing each from the front once it is
        done: when an ``OSError`` escapes, ``items`` is exactly what is left (a line cut by a
        short write keeps only its unwritten bytes, so a retry neither repeats nor loses a
        byte)."""
        while items:
            if items[0] is _ROTATE:
                self._rotate()
                del items[0]
                continue
            stop = 1
            while stop < len(items) and items[stop] is not _ROTATE:
                stop += 1
            data = items[0] if stop == 1 else b"".join(items[:stop])
            del items[1:stop]
            items[0] = data
            view = memoryview(data)
            offset = 0
            try:
                while offset < len(data):
                    offset += os.write(self._fd, view[offset:])
            except OSError:
                self._written += data.count(b"\n", 0, offset)
                # What is left, one item per line again (the first may be the unwritten end
                # of a line), so that lines stay countable by item.
                items[0:1] = [line + b"\n" for line in data[offset:].split(b"\n")[:-1]]
                raise
            del items[0]
            # Every queued item is whole lines: one sealed line, or the rest of a line cut by
            # a short write (ending with its newline). Counted by item, not by scanning a
            # batch of up to megabytes for newlines (a third of the writer's time).
            self._written += stop
            os.fsync(self._fd)

    def _rotate(self) -> None:
        """Close the full file, shift the backups, open a new file. Safe to retry."""
        if self._fd >= 0:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1
        pruned = self._shift_backups()
        self._fd = self._open_fd()
        if pruned is not None:
            with self._lock:  # written with the next batch, after the new file's header
                self._seal_and_queue(pruned)

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]

    # -- lifecycle -----------------------------------------------------------------------------
    def head(self) -> tuple[str, int, str]:
        """(logId, seq, hash) of the last entry sealed."""
        with self._lock:
            return self._chain.log_id, self._chain.seq, self._chain.hash

    def stats(self) -> SinkStats:
        with self._lock:
            return SinkStats(
                written=self._written,
                accepted=self._accepted,
                dropped=self._dropped_total,
                failures=self._failures,
                pending_bytes=self._pending_bytes,
                seq=self._chain.seq,
                error=None if self._error is None else str(self._error),
            )

    @property
    def failures(self) -> int:
        return self._failures

    def close(self) -> None:
        """Flush, stop the background thread, release the file and the worker slot."""
        with self._lock:
            if self._refusal == "closed":
                return
            forked = self._refusal is not None
            self._refusal = "closed"
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        try:
            if not forked:
                self.flush()
        finally:
            with self._io_lock:
                if self._fd >= 0:
                    with contextlib.suppress(OSError):
                        os.close(self._fd)
                    self._fd = -1
            self._release_slot()
            _OPEN_SINKS.discard(self)

    def _forked(self) -> None:
        # In a child process: the lock, the descriptor and the chain belong to the parent.
        self._refusal = "audit sink inherited across fork(): open a new sink in the child"
        self._is_forked = True
        for fd in (self._fd, self._slot_fd):  # the child's copies; the parent keeps its own
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._fd = -1
        self._slot_fd = -1
        self._thread = None
        self._lock = threading.Lock()
        self._io_lock = threading.Lock()

    def __enter__(self) -> FileAuditSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StdoutAuditSink:
    """Hash-chained JSON lines on standard output (or ``stream``), one ``write`` per line.

    Each line goes out in one ``os.write`` on the descriptor, so lines of several processes
    sharing the stdout pipe do not interleave within a line (up to ``PIPE_BUF`` bytes, and in
    practice for every record on Linux pipes read promptly). Each process has its own chain.
    """

    def __init__(
        self,
        stream: BinaryIO | None = None,
        *,
        fail_closed: bool = True,
        clock: Clock | None = None,
    ) -> None:
        self._stream = stream
        self._fd = sys.stdout.fileno() if stream is None else -1
        self._fail_closed = fail_closed
        self._clock: Clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._chain = _Chain(uuid.uuid4().hex)
        self._refusal: str | None = None
        self._dropped = _Dropped(fail_closed)
        self.failures = 0
        self.dropped = 0
        header = header_entry(
            log_id=self._chain.log_id,
            created=_iso(self._clock.now()),
            pid=os.getpid(),
            host=socket.gethostname(),
            previous=None,
        )
        self._emit(self._chain.seal(header))
        _OPEN_SINKS.add(self)

    def _emit(self, line: bytes) -> None:
        if self._stream is not None:
            self._stream.write(line)
            return
        view = memoryview(line)
        while view:
            view = view[os.write(self._fd, view) :]

    def write(self, record: Mapping[str, Any]) -> None:
        self._accept(record)

    def write_parts(self, prefix: bytes, rest: bytes) -> None:
        self._accept((prefix, rest))

    def _accept(self, record: Sealable) -> None:
        with self._lock:
            error: str | None = self._refusal
            if error is None:
                chain = self._chain
                try:
                    if self._dropped.count:
                        count = self._dropped.count
                        notice = self._dropped.notice()
                        try:
                            self._emit(chain.seal(notice))
                        except OSError:
                            self._dropped.count = count  # still owed
                            raise
                    seq, last = chain.seq, chain.hash
                    line = chain.seal(record)
                    try:
                        self._emit(line)
                    except OSError:
                        chain.seq, chain.hash = seq, last
                        raise
                    return
                except (ChainError, OSError, ValueError) as exc:
                    self.failures += 1
                    error = str(exc)
            self.dropped += 1
            self._dropped.add(self._clock.now())
        if self._fail_closed:
            raise AuditWriteError(f"the audit record cannot be written: {error}")

    def flush(self) -> None:
        if self._stream is not None:
            try:
                self._stream.flush()
            except (OSError, ValueError) as exc:
                self.failures += 1
                if self._fail_closed:
                    raise AuditWriteError(str(exc)) from exc

    def close(self) -> None:
        self.flush()
        self._refusal = "closed"
        _OPEN_SINKS.discard(self)

    def _forked(self) -> None:
        # The child would continue the parent's chain on the same stream: a fork of it.
        self._refusal = "audit sink inherited across fork(): open a new sink in the child"
        self._lock = threading.Lock()


class MultiSink:
    """Every record to every sink; ``AuditWriteError`` if any (fail-closed) sink refused it."""

    def __init__(self, sinks: Sequence[AuditSink]) -> None:
        self.sinks = tuple(sinks)

    def write(self, record: Mapping[str, Any]) -> None:
        self._each("write", record)

    def write_parts(self, prefix: bytes, rest: bytes) -> None:
        self._each("write_parts", prefix, rest)

    def flush(self) -> None:
        self._each("flush")

    def close(self) -> None:
        self._each("close")

    def _each(self, method: str, *args: Any) -> None:
        first: AuditWriteError | None = None
        for sink in self.sinks:
            try:
                getattr(sink, method)(*args)
            except AuditWriteError as exc:
                first = first or exc
        if first is not None:
            raise first


class NullAuditSink:
    """Audit logging disabled."""

    def write(self, record: Mapping[str, Any]) -> None:
        return None

    def write_parts(self, prefix: bytes, rest: bytes) -> None:
        return None

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None
