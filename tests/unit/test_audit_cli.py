"""``openkms audit verify`` and ``openkms audit search`` (run standalone, as a subprocess),
and the search filters themselves."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from openkms.audit.events import build_record, is_read_only
from openkms.audit.search import Filters, key_candidates, matches, parse_time, search_files
from openkms.audit.sinks import FileAuditSink
from openkms.cli.audit import main, register
from openkms.service.context import Principal, RequestContext

ACCOUNT = "111122223333"
KEY_A = "1234abcd-12ab-34cd-56ef-1234567890ab"
KEY_B = "0000ffff-0000-0000-0000-000000000000"
ARN_A = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{KEY_A}"
ARN_B = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{KEY_B}"
ALICE = Principal(ACCOUNT, f"arn:aws:iam::{ACCOUNT}:user/Alice", "user", "AKIAA", "AIDAA")
BOB = Principal(ACCOUNT, f"arn:aws:iam::{ACCOUNT}:user/Bob", "user", "AKIAB", "AIDAB")
T0 = 1_714_557_600.0  # 2024-05-01T10:00:00Z

# (principal, operation, key id given, key ARN touched, seconds after T0)
CALLS = [
    (ALICE, "CreateKey", None, ARN_A, 0),
    (ALICE, "Encrypt", KEY_A, ARN_A, 60),
    (BOB, "Decrypt", None, ARN_A, 120),
    (BOB, "Encrypt", "alias/payments", ARN_B, 180),
    (ALICE, "ListKeys", None, None, 240),
    (BOB, "Decrypt", ARN_B, ARN_B, 300),
]


def write_log(path: Path) -> None:
    sink = FileAuditSink(path, max_bytes=4096, backups=100, background=False)
    for principal, operation, key_id, arn, offset in CALLS:
        request: dict[str, Any] = {"EncryptionContext": {"case": operation}}
        if key_id is not None:
            request["KeyId"] = key_id
        sink.write(
            build_record(
                ctx=RequestContext(principal=principal, region="us-east-1", request_id="r", now=0),
                operation=operation,
                request_params=request,
                response=None,
                error_code=None,
                error_message=None,
                request_id=f"req-{offset}",
                event_time=T0 + offset,
                region="us-east-1",
                source_ip="127.0.0.1",
                user_agent="test",
                read_only=is_read_only(operation),
                resources=[arn] if arn else [],
                account_id=ACCOUNT,
            )
        )
    sink.close()


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    write_log(tmp_path / "audit.log")
    return tmp_path


def files_in(directory: Path) -> list[str]:
    return sorted(str(p) for p in directory.glob("audit.log*"))


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "openkms.cli.audit", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def request_ids(stdout: str) -> list[str]:
    return [orjson.loads(line)["requestID"] for line in stdout.splitlines()]


# --- verify --------------------------------------------------------------------------------------
def test_verify_ok(log_dir: Path) -> None:
    files = files_in(log_dir)
    assert len(files) > 1  # rotated
    result = run("verify", *files)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(f"OK: {len(CALLS)} records")
    assert "chain " in result.stdout


def test_verify_reports_tampering_with_its_place(log_dir: Path) -> None:
    target = log_dir / "audit.log.1"
    lines = target.read_bytes().splitlines(keepends=True)
    seq = orjson.loads(lines[1])["openkmsChain"]["seq"]
    lines[1] = lines[1].replace(b'"eventName":"', b'"eventName":"X')
    target.write_bytes(b"".join(lines))
    result = run("verify", *files_in(log_dir))
    assert result.returncode == 1
    assert f"{target}:2 (seq {seq}): edited:" in result.stdout
    assert "FAILED: 1 problem(s)" in result.stdout


def test_verify_anchor(log_dir: Path) -> None:
    last = (log_dir / "audit.log").read_bytes().splitlines()[-1]
    chain = orjson.loads(last)["openkmsChain"]
    anchor = f"{chain['seq']}:{chain['hash']}"
    assert run("verify", "--anchor", anchor, *files_in(log_dir)).returncode == 0
    # The last record removed: only the anchor can tell.
    data = (log_dir / "audit.log").read_bytes()
    (log_dir / "audit.log").write_bytes(data[: data.rstrip(b"\n").rfind(b"\n") + 1])
    assert run("verify", *files_in(log_dir)).returncode == 0
    result = run("verify", "--anchor", anchor, *files_in(log_dir))
    assert result.returncode == 1 and "anchor" in result.stdout
    bad = run("verify", "--anchor", "12:nothex", *files_in(log_dir))
    assert bad.returncode == 2 and "SEQ:HASH" in bad.stderr


def test_verify_unreadable_file(tmp_path: Path) -> None:
    result = run("verify", str(tmp_path / "nope.log"))
    assert result.returncode == 2
    assert "unreadable" in result.stdout


# --- search --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], ["req-0", "req-60", "req-120", "req-180", "req-240", "req-300"]),
        (["--key", KEY_A], ["req-0", "req-60", "req-120"]),
        (["--key", ARN_B], ["req-180", "req-300"]),
        (["--key", "alias/payments"], ["req-180"]),
        (["--principal", "user/Bob"], ["req-120", "req-180", "req-300"]),
        (["--operation", "decrypt"], ["req-120", "req-300"]),
        (["--operation", "Encrypt,ListKeys"], ["req-60", "req-180", "req-240"]),
        (["--operation", "Encrypt", "--operation", "CreateKey"], ["req-0", "req-60", "req-180"]),
        (["--since", "2024-05-01T10:02:00Z"], ["req-120", "req-180", "req-240", "req-300"]),
        (["--until", "2024-05-01T10:01:00Z"], ["req-0", "req-60"]),
        (["--since", "2024-05-01T12:01:00+02:00", "--until", str(T0 + 180)], ["req-60", "req-120",
                                                                              "req-180"]),
        (["--principal", "Alice", "--key", KEY_A, "--operation", "Encrypt"], ["req-60"]),
        (["--principal", "Carol"], []),
    ],
)  # fmt: skip
def test_search(log_dir: Path, args: list[str], expected: list[str]) -> None:
    result = run("search", *args, *files_in(log_dir))
    assert result.returncode == 0, result.stderr
    assert request_ids(result.stdout) == expected


def test_search_prints_the_stored_lines(log_dir: Path) -> None:
    result = run("search", "--operation", "CreateKey", *files_in(log_dir))
    (line,) = result.stdout.splitlines()
    stored = b"".join(p.read_bytes() for p in map(Path, files_in(log_dir)))
    assert line.encode() + b"\n" in stored


def test_search_usage_errors(log_dir: Path) -> None:
    result = run("search", "--since", "yesterday", *files_in(log_dir))
    assert result.returncode == 2
    assert run("search", str(log_dir / "missing.log")).returncode == 2


def test_filters_directly(log_dir: Path) -> None:
    found = list(search_files(files_in(log_dir), Filters(key=KEY_B)))
    assert [orjson.loads(x)["requestID"] for x in found] == ["req-180", "req-300"]
    record = orjson.loads(found[0])
    assert {"alias/payments", ARN_B, f"key/{KEY_B}", KEY_B} <= key_candidates(record)
    assert not matches({"eventName": "Encrypt"}, Filters())  # not an audit record
    assert parse_time("2024-05-01") == parse_time("2024-05-01T00:00:00Z") == 1_714_521_600.0
    assert parse_time("1714521600") == 1_714_521_600.0
    with pytest.raises(ValueError):
        parse_time("soon")


# --- wiring --------------------------------------------------------------------------------------
def test_register_adds_the_audit_command(log_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="openkms")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(["audit", "verify", *files_in(log_dir)])
    assert args.func(args) == 0
    assert capsys.readouterr().out.startswith("OK:")
    assert main(["search", "--operation", "ListKeys", *files_in(log_dir)]) == 0
