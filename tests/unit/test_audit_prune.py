"""``openkms audit prune``: old rotated files removed on purpose, recorded in the chain, so that
``verify`` tells that from files deleted behind its back."""

from __future__ import annotations

import time
from pathlib import Path

from openkms.audit.chain import verify_files
from openkms.audit.prune import plan_prune, prune
from openkms.audit.sinks import FileAuditSink
from openkms.cli.audit import main as audit_main
from openkms.clock import FixedClock
from tests.unit.test_audit_sinks import log_files, numbers, rec

T0 = 1_700_000_000.0


def _log(tmp_path: Path, clock: FixedClock, count: int) -> None:
    sink = FileAuditSink(tmp_path / "audit.log", max_bytes=4096, background=False, clock=clock)
    for n in range(count):
        record = rec(n, pad=200)
        record["eventTime"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(clock.now()))
        sink.write(record)
        sink.flush()
        clock.advance(60)
    sink.close()


def test_prune_removes_only_old_rotated_files_and_records_it(tmp_path: Path) -> None:
    clock = FixedClock(T0)
    _log(tmp_path, clock, 60)
    files = log_files(tmp_path)
    cut = T0 + 30 * 60
    remove, kept = plan_prune(tmp_path / "audit.log", cut)
    assert remove and kept
    assert all(p.name != "audit.log" for p in remove)
    report = prune(tmp_path / "audit.log", cut)
    assert set(report.removed) == set(remove)
    assert report.notice_file == tmp_path / "audit.log"  # no server: the main chain
    left = log_files(tmp_path)
    assert len(left) == len(files) - len(remove)
    result = verify_files(left)
    assert result.ok, [str(p) for p in result.problems]
    assert [w.kind for w in result.warnings] == ["pruned"]
    assert numbers(left)[-1] == 59


def test_a_second_prune_carries_the_first_forward(tmp_path: Path) -> None:
    clock = FixedClock(T0)
    _log(tmp_path, clock, 60)
    prune(tmp_path / "audit.log", T0 + 20 * 60)
    _log(tmp_path, clock, 40)
    prune(tmp_path / "audit.log", T0 + 200 * 60)
    result = verify_files(log_files(tmp_path))
    assert result.ok, [str(p) for p in result.problems]


def test_nothing_to_prune_writes_nothing(tmp_path: Path) -> None:
    clock = FixedClock(T0)
    _log(tmp_path, clock, 5)
    before = (tmp_path / "audit.log").read_bytes()
    report = prune(tmp_path / "audit.log", T0 - 1)
    assert report.removed == () and report.notice_file is None
    assert (tmp_path / "audit.log").read_bytes() == before


def test_cli_prune_and_verify(tmp_path: Path, capsys: object) -> None:
    clock = FixedClock(T0)
    _log(tmp_path, clock, 40)
    assert audit_main(["prune", "--before", "2100-01-01", "--log", str(tmp_path / "audit.log"),
                       "--dry-run"]) == 0  # fmt: skip
    assert len(log_files(tmp_path)) > 1  # a dry run removes nothing
    assert (
        audit_main(["prune", "--before", "2100-01-01", "--log", str(tmp_path / "audit.log")]) == 0
    )
    assert [p.name for p in log_files(tmp_path)] == ["audit.log"]
    assert audit_main(["verify", str(tmp_path / "audit.log")]) == 0
