"""FileAuditSink, StdoutAuditSink, MultiSink: batching, rotation without loss, restarts,
fail-closed and fail-open, worker slots and several processes."""

from __future__ import annotations

import errno
import io
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from openkms.audit.chain import parse_line, verify_files
from openkms.audit.sinks import (
    AuditWriteError,
    FileAuditSink,
    MultiSink,
    NullAuditSink,
    StdoutAuditSink,
    slot_path,
)
from openkms.clock import FixedClock


def rec(n: int, pad: int = 0) -> dict[str, Any]:
    return {"eventVersion": "1.08", "eventName": "Encrypt", "n": n, "pad": "x" * pad}


def log_files(directory: Path, name: str = "audit.log") -> list[Path]:
    """The files of one slot, oldest first."""
    rotated = sorted(directory.glob(f"{name}.*"), key=lambda p: -int(p.suffix[1:]))
    return [p for p in [*rotated, directory / name] if p.exists()]


def numbers(files: list[Path]) -> list[int]:
    found = []
    for path in files:
        for line in path.read_bytes().splitlines():
            obj = orjson.loads(line)
            if "eventVersion" in obj:
                found.append(obj["n"])
    return found


def entries(path: Path) -> list[dict[str, Any]]:
    return [parse_line(line).obj for line in path.read_bytes().splitlines(keepends=True)]


def assert_verifies(files: list[Path], records: int) -> None:
    report = verify_files(files)
    assert report.ok, [str(p) for p in report.problems]
    assert report.records == records


class DiskFull:
    """Point a sink's descriptor at /dev/full (ENOSPC on every write), and back."""

    def __init__(self, sink: FileAuditSink) -> None:
        self.sink = sink
        self.saved = -1

    def __enter__(self) -> DiskFull:
        self.saved = self.sink._fd
        self.sink._fd = os.open("/dev/full", os.O_WRONLY)
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.sink._fd)
        self.sink._fd = self.saved


# --- writing and batching ------------------------------------------------------------------------
def test_first_line_is_a_header_and_records_follow(tmp_path: Path) -> None:
    clock = FixedClock(1_700_000_000.0)
    sink = FileAuditSink(tmp_path / "audit.log", clock=clock, background=False)
    sink.write(rec(0))
    sink.write(rec(1))
    sink.close()
    header, first, second = entries(tmp_path / "audit.log")
    assert header["openkmsHeader"]["previous"] is None
    assert header["openkmsHeader"]["created"] == "2023-11-14T22:13:20Z"
    assert header["openkmsHeader"]["pid"] == os.getpid()
    assert [e["openkmsChain"]["seq"] for e in (header, first, second)] == [0, 1, 2]
    assert (first["n"], second["n"]) == (0, 1)
    assert (tmp_path / "audit.log").stat().st_mode & 0o777 == 0o600
    assert_verifies([tmp_path / "audit.log"], 2)


def test_writes_are_batched_then_flushed_by_the_background_thread(tmp_path: Path) -> None:
    sink = FileAuditSink(tmp_path / "audit.log", flush_interval=0.05)
    try:
        size = (tmp_path / "audit.log").stat().st_size  # the header only
        sink.write(rec(0))
        deadline = time.monotonic() + 5
        while (tmp_path / "audit.log").stat().st_size == size:
            assert time.monotonic() < deadline, "not flushed"
            time.sleep(0.01)
    finally:
        sink.close()
    assert numbers([tmp_path / "audit.log"]) == [0]


def test_flush_writes_at_once_and_close_flushes(tmp_path: Path) -> None:
    sink = FileAuditSink(tmp_path / "audit.log", flush_interval=3600)
    sink.write(rec(0))
    sink.flush()
    assert numbers([tmp_path / "audit.log"]) == [0]
    sink.write(rec(1))
    sink.close()
    sink.close()  # idempotent
    assert numbers([tmp_path / "audit.log"]) == [0, 1]
    with pytest.raises(AuditWriteError):
        sink.write(rec(2))


def test_synchronous_mode(tmp_path: Path) -> None:
    sink = FileAuditSink(tmp_path / "audit.log", flush_interval=0)
    sink.write(rec(0))
    assert numbers([tmp_path / "audit.log"]) == [0]
    sink.close()


def test_stats_and_head(tmp_path: Path) -> None:
    sink = FileAuditSink(tmp_path / "audit.log", background=False)
    for n in range(3):
        sink.write(rec(n))
    assert sink.stats().pending_bytes > 0
    sink.flush()
    stats = sink.stats()
    assert (stats.accepted, stats.written, stats.dropped, stats.failures) == (3, 4, 0, 0)
    assert stats.seq == 3 and stats.error is None
    log_id, seq, digest = sink.head()
    sink.close()
    last = parse_line((tmp_path / "audit.log").read_bytes().splitlines()[-1])
    assert (seq, digest) == (last.seq, last.hash)
    assert entries(tmp_path / "audit.log")[0]["openkmsHeader"]["logId"] == log_id


# --- rotation ------------------------------------------------------------------------------------
def test_rotation_keeps_every_record_and_the_chain(tmp_path: Path) -> None:
    sink = FileAuditSink(tmp_path / "audit.log", max_bytes=8192, backups=1000, flush_interval=0.01)
    for n in range(500):
        sink.write(rec(n, pad=200))
    sink.close()
    files = log_files(tmp_path)
    assert len(files) > 10
    assert numbers(files) == list(range(500))
    for path in files:
        assert path.stat().st_size <= 8192
        assert "openkmsHeader" in entries(path)[0]
    assert_verifies(files, 500)


def test_rotation_in_one_batch(tmp_path: Path) -> None:
    # Several rotations pending in the same batch are carried out in order.
    sink = FileAuditSink(tmp_path / "audit.log", max_bytes=4096, backups=100, background=False)
    for n in range(60):
        sink.write(rec(n, pad=200))
    sink.close()
    files = log_files(tmp_path)
    assert numbers(files) == list(range(60))
    assert_verifies(files, 60)


def test_retention_keeps_backups_files(tmp_path: Path) -> None:
    sink = FileAuditSink(tmp_path / "audit.log", max_bytes=4096, backups=2, background=False)
    for n in range(100):
        sink.write(rec(n, pad=200))
        sink.flush()
    sink.close()
    files = log_files(tmp_path)
    assert [p.name for p in files] == ["audit.log.2", "audit.log.1", "audit.log"]
    report = verify_files(files)
    # The deletions the operator asked for (backups=2) are recorded in the chain.
    assert report.ok and [w.kind for w in report.warnings] == ["pruned"]
    assert numbers(files) == list(range(100))[-report.records :]


def test_default_rotation_keeps_every_file(tmp_path: Path) -> None:
    sink = FileAuditSink(tmp_path / "audit.log", max_bytes=4096, background=False)
    for n in range(100):
        sink.write(rec(n, pad=200))
        sink.flush()
    sink.close()
    files = log_files(tmp_path)
    assert len(files) > 10
    assert numbers(files) == list(range(100))
    assert_verifies(files, 100)


def test_deleting_the_oldest_files_fails_verification(tmp_path: Path) -> None:
    """A rotated file removed without a recorded prune: files were deleted."""
    sink = FileAuditSink(tmp_path / "audit.log", max_bytes=4096, background=False)
    for n in range(60):
        sink.write(rec(n, pad=200))
        sink.flush()
    sink.close()
    files = log_files(tmp_path)
    files[0].unlink()
    report = verify_files(files[1:])
    assert not report.ok
    assert [p.kind for p in report.problems] == ["missing-files"]
    assert verify_files(files[1:], allow_partial=True).ok


def test_a_record_larger_than_max_bytes_is_still_written(tmp_path: Path) -> None:
    sink = FileAuditSink(tmp_path / "audit.log", max_bytes=4096, backups=10, background=False)
    sink.write(rec(0))
    sink.write(rec(1, pad=10_000))
    sink.write(rec(2))
    sink.close()
    files = log_files(tmp_path)
    assert numbers(files) == [0, 1, 2]
    assert_verifies(files, 3)


# --- restarts ------------------------------------------------------------------------------------
def test_restart_resumes_the_chain(tmp_path: Path) -> None:
    sink = FileAuditSink(tmp_path / "audit.log", background=False)
    for n in range(5):
        sink.write(rec(n))
    log_id, seq, _ = sink.head()
    sink.close()
    again = FileAuditSink(tmp_path / "audit.log", background=False)
    assert again.head()[:2] == (log_id, seq + 1)  # the "resumed" notice
    for n in range(5, 10):
        again.write(rec(n))
    again.close()
    files = log_files(tmp_path)
    assert files == [tmp_path / "audit.log"]
    assert numbers(files) == list(range(10))
    notices = [e["openkmsNotice"] for e in entries(files[0]) if "openkmsNotice" in e]
    assert [n["kind"] for n in notices] == ["resumed"]
    assert_verifies(files, 10)


def test_restart_after_a_crash_mid_line(tmp_path: Path) -> None:
    sink = FileAuditSink(tmp_path / "audit.log", background=False)
    for n in range(5):
        sink.write(rec(n))
    sink.close()
    with open(tmp_path / "audit.log", "ab") as handle:
        handle.write(b'{"eventVersion":"1.08","eventName":"Enc')  # a torn write
    again = FileAuditSink(tmp_path / "audit.log", background=False)
    again.write(rec(5))
    again.close()
    files = log_files(tmp_path)
    assert [p.name for p in files] == ["audit.log.1", "audit.log"]
    header = entries(files[1])[0]["openkmsHeader"]
    assert header["previous"]["tornTail"] == len(b'{"eventVersion":"1.08","eventName":"Enc')
    report = verify_files(files)
    assert report.ok, [str(p) for p in report.problems]
    assert [w.kind for w in report.warnings] == ["torn-tail"]
    assert report.records == 6
    # Without the acknowledgment (the header), the torn line is a problem.
    assert [p.kind for p in verify_files(files[:1]).problems] == ["truncated"]


def test_restart_after_a_crash_mid_rotation(tmp_path: Path) -> None:
    sink = FileAuditSink(tmp_path / "audit.log", background=False)
    for n in range(5):
        sink.write(rec(n))
    sink.close()
    os.replace(tmp_path / "audit.log", tmp_path / "audit.log.1")  # renamed, never recreated
    again = FileAuditSink(tmp_path / "audit.log", background=False)
    again.write(rec(5))
    again.close()
    files = log_files(tmp_path)
    assert [p.name for p in files] == ["audit.log.1", "audit.log"]
    assert numbers(files) == list(range(6))
    assert_verifies(files, 6)


def test_restart_with_a_full_file_rotates(tmp_path: Path) -> None:
    sink = FileAuditSink(tmp_path / "audit.log", max_bytes=4096, background=False)
    sink.write(rec(0, pad=5000))
    sink.close()
    again = FileAuditSink(tmp_path / "audit.log", max_bytes=4096, background=False)
    again.write(rec(1))
    again.close()
    files = log_files(tmp_path)
    assert len(files) == 2
    assert_verifies(files, 2)


def test_restart_with_an_unreadable_file_starts_a_new_chain(tmp_path: Path) -> None:
    (tmp_path / "audit.log").write_bytes(b"this is not an audit log\n")
    sink = FileAuditSink(tmp_path / "audit.log", background=False)
    sink.write(rec(0))
    sink.close()
    assert (tmp_path / "audit.log.1").read_bytes() == b"this is not an audit log\n"
    header = entries(tmp_path / "audit.log")[0]["openkmsHeader"]
    assert header["previous"] is None and "note" in header
    assert_verifies([tmp_path / "audit.log"], 1)


# --- fail-closed, fail-open ----------------------------------------------------------------------
def test_fail_closed_refuses_after_a_write_error_and_recovers(tmp_path: Path) -> None:
    sink = FileAuditSink(tmp_path / "audit.log", background=False)
    sink.write(rec(0))
    with DiskFull(sink):
        sink.write(rec(1))  # accepted: the failure is not known yet
        with pytest.raises(AuditWriteError, match="No space"):
            sink.flush()
        with pytest.raises(AuditWriteError, match="No space"):
            sink.write(rec(99))  # refused: the server fails this request
        assert sink.stats().error is not None
        assert sink.failures == 1
    sink.flush()  # the disk is back: the kept batch goes out
    sink.write(rec(2))
    sink.close()
    files = log_files(tmp_path)
    assert numbers(files) == [0, 1, 2]
    assert_verifies(files, 3)
    # The refused request is accounted for in the chain.
    report = verify_files(files)
    assert [w.kind for w in report.warnings] == ["refused"]
    assert report.warnings[0].message.startswith("1 record(s) between")


def test_short_writes_lose_and_repeat_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from openkms.audit import sinks

    real_os = os
    calls = {"n": 0}

    class FlakyOs:
        def __getattr__(self, name: str) -> Any:
            return getattr(real_os, name)

        @staticmethod
        def write(fd: int, data: Any) -> int:
            calls["n"] += 1
            if calls["n"] == 1:
                return real_os.write(fd, bytes(data[:37]))  # a short write
            if calls["n"] == 2:
                raise OSError(errno.EIO, "I/O error")
            return real_os.write(fd, data)

    sink = FileAuditSink(tmp_path / "audit.log", background=False)
    for n in range(5):
        sink.write(rec(n))
    monkeypatch.setattr(sinks, "os", FlakyOs())
    with pytest.raises(AuditWriteError):
        sink.flush()
    sink.flush()
    monkeypatch.undo()
    # Lines are counted by item, also across the retried rest of a cut batch.
    written = sink.stats().written
    sink.close()
    files = log_files(tmp_path)
    assert numbers(files) == list(range(5))
    assert_verifies(files, 5)
    assert written == sum(len(f.read_bytes().splitlines()) for f in files)


def test_fail_open_counts_drops_and_leaves_a_notice(tmp_path: Path) -> None:
    sink = FileAuditSink(
        tmp_path / "audit.log", fail_closed=False, max_pending_bytes=1000, background=False
    )
    sink.write(rec(0))
    sink.flush()
    with DiskFull(sink):
        for n in range(1, 40):
            sink.write(rec(n))  # never raises
        sink.flush()  # fails quietly
        stats = sink.stats()
        assert stats.failures >= 1 and stats.dropped > 0
        dropped = stats.dropped
    sink.flush()
    sink.write(rec(100))
    sink.close()
    files = log_files(tmp_path)
    kept = numbers(files)
    assert kept[0] == 0 and kept[-1] == 100
    assert len(kept) == 40 + 1 - dropped
    report = verify_files(files)
    assert report.ok, [str(p) for p in report.problems]
    assert [w.kind for w in report.warnings] == ["dropped"]
    assert report.warnings[0].message.startswith(f"{dropped} record(s) between")


def test_unserializable_record(tmp_path: Path) -> None:
    closed = FileAuditSink(tmp_path / "a.log", background=False)
    with pytest.raises(AuditWriteError, match="JSON"):
        closed.write({"eventVersion": "1.08", "Plaintext": b"secret"})
    with pytest.raises(AuditWriteError):
        closed.write({"openkmsChain": {}})
    closed.write(rec(1))
    closed.close()
    assert_verifies([tmp_path / "a.log"], 1)
    assert b"secret" not in (tmp_path / "a.log").read_bytes()

    open_ = FileAuditSink(tmp_path / "b.log", fail_closed=False, background=False)
    open_.write({"x": b"secret"})
    assert open_.stats().failures == 1 and open_.stats().dropped == 1
    open_.write(rec(1))
    open_.close()
    report = verify_files([tmp_path / "b.log"])
    assert report.ok and report.records == 1


def test_full_batch_refuses_when_fail_closed(tmp_path: Path) -> None:
    sink = FileAuditSink(tmp_path / "audit.log", max_pending_bytes=500, background=False)
    sink.write(rec(0, pad=600))
    with pytest.raises(AuditWriteError, match="keeping up"):
        sink.write(rec(1))
    sink.flush()
    sink.write(rec(2))
    sink.close()
    assert numbers([tmp_path / "audit.log"]) == [0, 2]


# --- several writers -----------------------------------------------------------------------------
def test_worker_slots(tmp_path: Path) -> None:
    base = tmp_path / "audit.log"
    first = FileAuditSink(base, background=False)
    second = FileAuditSink(base, background=False)
    assert (first.path, second.path) == (base, tmp_path / "audit.w1.log")
    assert slot_path(base, 2) == tmp_path / "audit.w2.log"
    assert slot_path(tmp_path / "audit", 1) == tmp_path / "audit.w1"
    first.write(rec(0))
    second.write(rec(1))
    log_id = first.head()[0]
    first.close()
    third = FileAuditSink(base, background=False)  # slot 0 is free again: resumes its chain
    assert third.path == base and third.head()[0] == log_id
    third.write(rec(2))
    third.close()
    second.close()
    assert not list(tmp_path.glob("audit.log.lock"))  # the lock file is hidden
    report = verify_files(sorted(tmp_path.glob("audit*.log*")))
    assert report.ok and report.records == 3 and len(report.chains) == 2


_WRITER = textwrap.dedent(
    """
    import sys
    from openkms.audit.sinks import FileAuditSink
    sink = FileAuditSink(sys.argv[1], max_bytes=16384, backups=1000, flush_interval=0.01)
    sys.stdout.write(str(sink.path) + "\\n"); sys.stdout.flush()
    sys.stdin.readline()  # start together
    for n in range(300):
        sink.write({"eventVersion": "1.08", "eventName": "Encrypt", "n": n, "who": sys.argv[2]})
    sink.close()
    """
)


def test_several_processes_on_one_path(tmp_path: Path) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(tmp_path / "audit.log"), str(i)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(3)
    ]
    paths = []
    for proc in procs:
        assert proc.stdout is not None
        paths.append(proc.stdout.readline().strip())
    assert len(set(paths)) == 3
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        assert proc.wait(timeout=60) == 0
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.close()
        proc.stdout.close()
    every = sorted(tmp_path.glob("audit*.log*"))
    report = verify_files(every)
    assert report.ok, [str(p) for p in report.problems]
    assert report.records == 900 and len(report.chains) == 3
    for name in ("audit.log", "audit.w1.log", "audit.w2.log"):
        assert numbers(log_files(tmp_path, name)) == list(range(300))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_sink_inherited_across_fork_refuses_in_the_child(tmp_path: Path) -> None:
    sink = FileAuditSink(tmp_path / "audit.log", background=False)
    sink.write(rec(0))
    pid = os.fork()
    if pid == 0:  # child
        code = 0
        try:
            sink.write(rec(1))
            code = 3
        except AuditWriteError:
            code = 0
        except BaseException:
            code = 4
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    sink.write(rec(2))
    sink.close()
    assert numbers([tmp_path / "audit.log"]) == [0, 2]
    assert_verifies([tmp_path / "audit.log"], 2)


# --- stdout, several sinks -----------------------------------------------------------------------
def test_stdout_sink_writes_a_verifiable_chain(tmp_path: Path) -> None:
    stream = io.BytesIO()
    sink = StdoutAuditSink(stream)
    for n in range(3):
        sink.write(rec(n))
    sink.close()
    (tmp_path / "out.log").write_bytes(stream.getvalue())
    assert_verifies([tmp_path / "out.log"], 3)


def test_stdout_sink_on_the_real_stdout(tmp_path: Path) -> None:
    code = (
        "from openkms.audit.sinks import StdoutAuditSink\n"
        "s = StdoutAuditSink()\n"
        "for n in range(3): s.write({'eventVersion': '1.08', 'n': n})\n"
        "s.close()\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, check=True, timeout=60
    ).stdout
    (tmp_path / "out.log").write_bytes(out)
    assert_verifies([tmp_path / "out.log"], 3)


def test_stdout_sink_fail_closed_and_open() -> None:
    class Broken(io.BytesIO):
        def write(self, data: Any) -> int:
            raise OSError(errno.EPIPE, "Broken pipe")

    stream = Broken()
    with pytest.raises(OSError):
        StdoutAuditSink(stream)  # the header cannot even be written
    good = io.BytesIO()
    sink = StdoutAuditSink(good, fail_closed=True)
    with pytest.raises(AuditWriteError):
        sink.write({"x": b"bytes"})
    relaxed = StdoutAuditSink(io.BytesIO(), fail_closed=False)
    relaxed.write({"x": b"bytes"})
    assert relaxed.failures == 1 and relaxed.dropped == 1


def test_multi_sink(tmp_path: Path) -> None:
    stream = io.BytesIO()
    file_sink = FileAuditSink(tmp_path / "audit.log", background=False)
    multi = MultiSink([file_sink, StdoutAuditSink(stream), NullAuditSink()])
    multi.write(rec(0))
    with DiskFull(file_sink):
        multi.write(rec(1))
        with pytest.raises(AuditWriteError):
            multi.flush()
        with pytest.raises(AuditWriteError):
            multi.write(rec(2))  # the file refuses; stdout still got it
    multi.close()
    assert numbers([tmp_path / "audit.log"]) == [0, 1]
    (tmp_path / "out.log").write_bytes(stream.getvalue())
    assert_verifies([tmp_path / "out.log"], 3)


def test_bad_settings(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        FileAuditSink(tmp_path / "a.log", backups=-1)
    with pytest.raises(ValueError):
        FileAuditSink(tmp_path / "a.log", max_bytes=100)


# --- records serialized on the request path (events.record_parts) ------------------------------
def _parts(n: int, pad: int = 0) -> tuple[bytes, bytes]:
    """A record as record_parts hands it over: its start, and the rest from a member on."""
    body = orjson.dumps(rec(n, pad))
    cut = body.index(b',"n":')
    return body[:cut], body[cut:]


def test_write_parts_and_write_share_one_chain_across_rotations(tmp_path: Path) -> None:
    sink = FileAuditSink(tmp_path / "audit.log", max_bytes=4096, background=False)
    for n in range(60):
        if n % 2:
            sink.write_parts(*_parts(n, pad=100))
        else:
            sink.write(rec(n, pad=100))
        if n % 7 == 0:
            sink.flush()
    sink.close()
    files = log_files(tmp_path)
    assert len(files) > 2  # rotated, with parts records on both sides of a rotation
    assert numbers(files) == list(range(60))
    assert_verifies(files, 60)


def test_write_parts_on_stdout_and_several_sinks(tmp_path: Path) -> None:
    stream = io.BytesIO()
    file_sink = FileAuditSink(tmp_path / "audit.log", background=False)
    both = MultiSink([StdoutAuditSink(stream), file_sink, NullAuditSink()])
    for n in range(4):
        both.write_parts(*_parts(n))
    both.close()
    (tmp_path / "out.log").write_bytes(stream.getvalue())
    for path in (tmp_path / "out.log", tmp_path / "audit.log"):
        assert numbers([path]) == [0, 1, 2, 3]
        assert_verifies([path], 4)


def test_write_parts_refuses_what_is_not_a_json_object(tmp_path: Path) -> None:
    sink = FileAuditSink(tmp_path / "audit.log", background=False)
    with pytest.raises(AuditWriteError):
        sink.write_parts(b'{"eventVersion":"1.08"', b',"n":1')  # no closing brace
    sink.write_parts(*_parts(2))
    sink.close()
    assert numbers([tmp_path / "audit.log"]) == [2]


def test_write_parts_after_drops_and_after_close(tmp_path: Path) -> None:
    """The fast path of write_parts steps aside whenever write would do more: a notice of
    dropped records is owed, the last write failed, the sink is closed."""
    sink = FileAuditSink(
        tmp_path / "audit.log", fail_closed=False, max_pending_bytes=1000, background=False
    )
    sink.write_parts(*_parts(0))
    sink.flush()
    with DiskFull(sink):
        for n in range(1, 20):
            sink.write_parts(*_parts(n))  # fail-open: never raises
        sink.flush()
    sink.flush()
    sink.write_parts(*_parts(100))
    sink.close()
    closed = FileAuditSink(tmp_path / "other.log", background=False)
    closed.close()
    with pytest.raises(AuditWriteError):
        closed.write_parts(*_parts(101))  # fail-closed: refused once closed
    files = log_files(tmp_path)
    kept = numbers(files)
    assert kept[0] == 0 and kept[-1] == 100
    report = verify_files(files)
    assert report.ok
    assert any(w.kind == "dropped" for w in report.warnings)
