"""The hash chain: sealing and reading lines, and verify_files finding every kind of tampering,
with its place (file, line, seq), in one file and across rotated files."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import Any

import orjson
import pytest

from openkms.audit.chain import (
    ChainError,
    Problem,
    VerifyReport,
    genesis,
    order_files,
    parse_line,
    seal,
    verify_files,
)
from openkms.audit.sinks import FileAuditSink


def rec(n: int, pad: int = 0) -> dict[str, Any]:
    return {
        "eventVersion": "1.08",
        "eventTime": f"2024-05-01T10:00:{n % 60:02d}Z",
        "eventName": "Encrypt",
        "requestParameters": {"keyId": "k", "n": n, "pad": "x" * pad},
    }


def make_log(tmp_path: Path, count: int, *, max_bytes: int = 64 * 1024 * 1024) -> list[Path]:
    """A log of ``count`` records; its files, oldest first."""
    sink = FileAuditSink(tmp_path / "audit.log", max_bytes=max_bytes, backups=1000,
                         background=False)  # fmt: skip
    for n in range(count):
        sink.write(rec(n, pad=300 if max_bytes < 1_000_000 else 0))
    sink.close()
    files = sorted(tmp_path.glob("audit.log.*"), key=lambda p: -int(p.suffix[1:]))
    return [*files, tmp_path / "audit.log"]


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def kinds(report: VerifyReport) -> list[tuple[str, int, int | None, str]]:
    return [(Path(p.file).name, p.line, p.seq, p.kind) for p in report.problems]


def only(report: VerifyReport) -> Problem:
    assert len(report.problems) == 1, [str(p) for p in report.problems]
    return report.problems[0]


# --- sealing -------------------------------------------------------------------------------------
def test_seal_and_parse_round_trip() -> None:
    line, digest = seal({"a": 1, "b": "two"}, 7, "ab" * 32)
    assert line.endswith(b"\n")
    assert line.startswith(b'{"a":1,"b":"two","openkmsChain":{"hash":"')
    entry = parse_line(line)
    assert (entry.seq, entry.prev, entry.hash) == (7, "ab" * 32, digest)
    assert entry.intact
    # The hash covers the exact line without the hash member and the newline.
    field = b'"hash":"' + digest.encode() + b'",'
    assert hashlib.sha256(line[:-1].replace(field, b"")).hexdigest() == digest
    assert entry.obj["openkmsChain"] == {"hash": digest, "prev": "ab" * 32, "seq": 7}


def test_seal_empty_object_and_genesis() -> None:
    line, _ = seal({}, 0, genesis("x"))
    assert parse_line(line).intact
    assert genesis("x") != genesis("y")
    assert len(genesis("x")) == 64


@pytest.mark.parametrize(
    "entry",
    [{"x": b"bytes"}, {1: "non-str key"}, {"openkmsChain": {}}],
)
def test_seal_refuses(entry: dict[Any, Any]) -> None:
    with pytest.raises(ChainError):
        seal(entry, 0, "0" * 64)


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"not json\n",
        b"[1,2]\n",
        b'{"a":1}\n',
        b'{"a":1,"openkmsChain":{"hash":"zz","prev":"00","seq":1}}\n',
    ],
)
def test_parse_refuses(line: bytes) -> None:
    with pytest.raises(ChainError):
        parse_line(line)


def test_a_nested_chain_member_does_not_confuse_the_reader() -> None:
    nested = {"requestParameters": {"openkmsChain": {"hash": "a" * 64, "prev": "b" * 64}}}
    line, digest = seal(nested, 3, "c" * 64)
    entry = parse_line(line)
    assert entry.intact and entry.hash == digest and entry.seq == 3


# --- one file ------------------------------------------------------------------------------------
def test_intact_log_verifies(tmp_path: Path) -> None:
    (log,) = make_log(tmp_path, 20)
    report = verify_files([log])
    assert report.ok, [str(p) for p in report.problems]
    assert report.records == 20
    assert report.entries == 21  # and the header
    assert report.warnings == []
    (chain,) = report.chains
    assert (chain.first_seq, chain.last_seq, chain.records) == (0, 20, 20)


def test_edit_in_place(tmp_path: Path) -> None:
    (log,) = make_log(tmp_path, 10)
    lines = lines_of(log)
    lines[4] = lines[4].replace(b'"n":3', b'"n":9')
    log.write_bytes(b"".join(lines))
    assert kinds(verify_files([log])) == [("audit.log", 5, 4, "edited")]


def test_edit_and_rehash_breaks_the_next_link(tmp_path: Path) -> None:
    (log,) = make_log(tmp_path, 10)
    lines = lines_of(log)
    entry = parse_line(lines[4])
    forged = dict(entry.obj)
    del forged["openkmsChain"]
    forged["eventName"] = "Decrypt"
    lines[4], _ = seal(forged, entry.seq, entry.prev)
    log.write_bytes(b"".join(lines))
    problem = only(verify_files([log]))
    assert (problem.line, problem.seq, problem.kind) == (6, 5, "broken-link")
    assert "line 5" in problem.message


def test_removed_record(tmp_path: Path) -> None:
    (log,) = make_log(tmp_path, 10)
    lines = lines_of(log)
    del lines[4]  # seq 4
    log.write_bytes(b"".join(lines))
    problem = only(verify_files([log]))
    assert (problem.line, problem.seq, problem.kind) == (5, 5, "missing")
    assert "seq 4 is missing" in problem.message


def test_removed_first_record(tmp_path: Path) -> None:
    (log,) = make_log(tmp_path, 10)
    lines = lines_of(log)
    del lines[1]  # the first record, after the header
    log.write_bytes(b"".join(lines))
    assert kinds(verify_files([log])) == [("audit.log", 2, 2, "missing")]


def test_removed_header(tmp_path: Path) -> None:
    (log,) = make_log(tmp_path, 10)
    log.write_bytes(b"".join(lines_of(log)[1:]))
    assert [k[3] for k in kinds(verify_files([log]))] == ["missing-header"]


def test_removed_header_and_first_records(tmp_path: Path) -> None:
    (log,) = make_log(tmp_path, 10)
    log.write_bytes(b"".join(lines_of(log)[3:]))
    problem = only(verify_files([log]))
    assert (problem.line, problem.kind) == (1, "missing-header")


def test_inserted_duplicate(tmp_path: Path) -> None:
    (log,) = make_log(tmp_path, 10)
    lines = lines_of(log)
    lines.insert(6, lines[3])  # a replay of seq 3 after seq 5
    log.write_bytes(b"".join(lines))
    problem = only(verify_files([log]))
    assert (problem.line, problem.seq, problem.kind) == (7, 3, "duplicate")
    assert "line 4" in problem.message


def test_inserted_forged_record(tmp_path: Path) -> None:
    (log,) = make_log(tmp_path, 10)
    lines = lines_of(log)
    before = parse_line(lines[5])
    forged, _ = seal(rec(99), before.seq + 1, before.hash)  # a perfect link after line 6
    lines.insert(6, forged)
    log.write_bytes(b"".join(lines))
    problem = only(verify_files([log]))
    # The forged line fits where it is, but the genuine chain goes on without it.
    assert (problem.line, problem.seq, problem.kind) == (7, 6, "inserted")


def test_inserted_forged_record_at_the_end(tmp_path: Path) -> None:
    (log,) = make_log(tmp_path, 10)
    lines = lines_of(log)
    before = parse_line(lines[-2])
    forged, _ = seal(rec(99), before.seq + 1, before.hash)
    lines.insert(len(lines) - 1, forged)  # before the last genuine line, claiming its seq
    log.write_bytes(b"".join(lines))
    # Nothing follows to tell which of the two is genuine: both lines are named.
    problem = only(verify_files([log]))
    assert (problem.line, problem.kind) == (12, "inserted")
    assert "line 11" in problem.message


def test_reordered_records(tmp_path: Path) -> None:
    (log,) = make_log(tmp_path, 10)
    lines = lines_of(log)
    lines[4], lines[5] = lines[5], lines[4]
    log.write_bytes(b"".join(lines))
    assert kinds(verify_files([log])) == [
        ("audit.log", 5, 5, "missing"),
        ("audit.log", 6, 4, "out-of-order"),
    ]


def test_truncated_last_line(tmp_path: Path) -> None:
    (log,) = make_log(tmp_path, 10)
    data = log.read_bytes()
    log.write_bytes(data[:-30])
    problem = only(verify_files([log]))
    assert (problem.line, problem.kind) == (11, "truncated")


def test_garbage_line(tmp_path: Path) -> None:
    (log,) = make_log(tmp_path, 10)
    lines = lines_of(log)
    lines.insert(3, b"hello\n")
    log.write_bytes(b"".join(lines))
    # Reported where it is; the line after it cannot be linked, the rest still is.
    assert kinds(verify_files([log])) == [("audit.log", 4, None, "unparseable")]


def test_removed_tail_needs_an_anchor(tmp_path: Path) -> None:
    sink = FileAuditSink(tmp_path / "audit.log", background=False)
    for n in range(10):
        sink.write(rec(n))
    _, seq, digest = sink.head()
    sink.close()
    log = tmp_path / "audit.log"
    assert verify_files([log], anchors=[(seq, digest)]).ok
    log.write_bytes(b"".join(lines_of(log)[:-2]))
    assert verify_files([log]).ok  # undetectable from the file alone
    problem = only(verify_files([log], anchors=[(seq, digest)]))
    assert (problem.seq, problem.kind) == (seq, "anchor")


def test_rewritten_log_needs_an_anchor(tmp_path: Path) -> None:
    (log,) = make_log(tmp_path, 10)
    anchor = parse_line(lines_of(log)[-1])
    lines = lines_of(log)
    # Re-seal everything after a change: a consistent, forged chain.
    header = parse_line(lines[0])
    out = [lines[0]]
    prev = header.hash
    for seq, line in enumerate(lines[1:], start=1):
        obj = dict(parse_line(line).obj)
        del obj["openkmsChain"]
        obj["eventName"] = "Decrypt"
        sealed, prev = seal(obj, seq, prev)
        out.append(sealed)
    log.write_bytes(b"".join(out))
    assert verify_files([log]).ok
    assert not verify_files([log], anchors=[(anchor.seq, anchor.hash)]).ok


# --- across rotation -----------------------------------------------------------------------------
def test_rotated_files_verify_in_any_order(tmp_path: Path) -> None:
    files = make_log(tmp_path, 60, max_bytes=4096)
    assert len(files) > 4
    shuffled = files[:]
    random.Random(7).shuffle(shuffled)
    report = verify_files(shuffled)
    assert report.ok, [str(p) for p in report.problems]
    assert report.records == 60
    assert [Path(f) for f in report.files] == files
    ((log_id, ordered),) = order_files(shuffled)
    assert [Path(f) for f in ordered] == files and log_id


def test_missing_middle_file(tmp_path: Path) -> None:
    files = make_log(tmp_path, 60, max_bytes=4096)
    gone = files.pop(2)
    problem = only(verify_files(files))
    assert problem.kind == "missing"
    assert Path(problem.file) == files[2] and problem.line == 1
    assert gone.name not in problem.message  # the file itself is not known, only the gap


def test_removed_end_of_a_rotated_file(tmp_path: Path) -> None:
    files = make_log(tmp_path, 60, max_bytes=4096)
    lines = lines_of(files[1])
    files[1].write_bytes(b"".join(lines[:-1]))
    problem = only(verify_files(files))
    assert (Path(problem.file), problem.line, problem.kind) == (files[2], 1, "missing")


def test_removed_first_record_of_a_rotated_file(tmp_path: Path) -> None:
    files = make_log(tmp_path, 60, max_bytes=4096)
    lines = lines_of(files[2])
    files[2].write_bytes(b"".join(lines[:1] + lines[2:]))
    problem = only(verify_files(files))
    assert (Path(problem.file), problem.line, problem.kind) == (files[2], 2, "missing")


def test_removed_header_of_a_rotated_file(tmp_path: Path) -> None:
    files = make_log(tmp_path, 60, max_bytes=4096)
    files[2].write_bytes(b"".join(lines_of(files[2])[1:]))
    found = kinds(verify_files(files))
    assert any(k[:2] == (files[2].name, 1) and k[3] == "missing-header" for k in found)
    # The chain goes on from the file before to the file after: the gap is reported too.
    assert any(k[0] == files[3].name and k[3] == "missing" for k in found)


def test_edit_in_a_rotated_file(tmp_path: Path) -> None:
    files = make_log(tmp_path, 60, max_bytes=4096)
    lines = lines_of(files[1])
    seq = parse_line(lines[2]).seq
    lines[2] = lines[2].replace(b'"eventName":"Encrypt"', b'"eventName":"Decrypt"')
    files[1].write_bytes(b"".join(lines))
    assert kinds(verify_files(files)) == [(files[1].name, 3, seq, "edited")]


def test_newest_file_alone_is_partial_but_ok_when_asked(tmp_path: Path) -> None:
    files = make_log(tmp_path, 60, max_bytes=4096)
    report = verify_files(files[-1:], allow_partial=True)
    assert report.ok
    assert [w.kind for w in report.warnings] == ["partial"]


def test_newest_file_alone_is_missing_files_by_default(tmp_path: Path) -> None:
    files = make_log(tmp_path, 60, max_bytes=4096)
    report = verify_files(files[-1:])
    assert [p.kind for p in report.problems] == ["missing-files"]


def test_two_chains_are_verified_separately(tmp_path: Path) -> None:
    a = FileAuditSink(tmp_path / "audit.log", background=False)
    b = FileAuditSink(tmp_path / "audit.log", background=False)  # another worker slot
    for n in range(5):
        a.write(rec(n))
        b.write(rec(n))
    a.close()
    b.close()
    report = verify_files([tmp_path / "audit.log", tmp_path / "audit.w1.log"])
    assert report.ok and report.records == 10 and len(report.chains) == 2


def test_problem_text() -> None:
    assert str(Problem("a.log", 3, 7, "edited", "m")) == "a.log:3 (seq 7): edited: m"
    assert str(Problem("", 0, 7, "anchor", "m")) == "- (seq 7): anchor: m"


def test_lines_are_compact_json_in_cloudtrail_order(tmp_path: Path) -> None:
    (log,) = make_log(tmp_path, 2)
    second = lines_of(log)[1]
    assert second.startswith(b'{"eventVersion":"1.08","eventTime":')
    assert b" " not in second.replace(b"1.08", b"")
    assert list(orjson.loads(second))[-1] == "openkmsChain"


def _reference_seal(entry: dict[str, Any], seq: int, prev: str) -> tuple[bytes, str]:
    """The format of docs/formats/audit.md, spelled out without any of seal's shortcuts."""
    body = orjson.dumps(entry)[:-1] + b',"openkmsChain":{'
    tail = b'"prev":"%s","seq":%d}}' % (prev.encode(), seq)
    digest = hashlib.sha256(body + tail).hexdigest()
    return body + b'"hash":"' + digest.encode() + b'",' + tail + b"\n", digest


def test_seal_reuses_the_hash_of_a_common_start_exactly() -> None:
    # Records of a few callers, user agents and seconds, in many orders and more distinct
    # starts than seal keeps (512): every line must be the reference line, byte for byte,
    # whichever hash state seal started from.
    rng = random.Random(7)
    prev = genesis("cafe")
    for seq in range(1500):
        who = rng.randrange(600) if seq % 3 else rng.randrange(3)
        entry = {
            "eventVersion": "1.08",
            "userIdentity": {"type": "IAMUser", "arn": f"arn:aws:iam::111122223333:user/u{who}"},
            "eventTime": f"2024-05-01T10:00:{rng.randrange(2):02d}Z",
            "userAgent": "Boto3/1.34.0 md/Botocore#1.34.0 ua/2.0 os/linux#6.1 " + "x" * (who % 7),
            "requestParameters": {"keyId": "k", "n": seq} if seq % 5 else None,
            "requestID": f"r{seq}",
        }
        if seq % 11 == 0:
            entry["userAgent"] += ',"requestParameters":'  # the cut's text inside a value
        line, digest = seal(entry, seq, prev)
        assert (line, digest) == _reference_seal(entry, seq, prev)
        assert parse_line(line).intact
        prev = digest
