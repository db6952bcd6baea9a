"""Attacks on the audit history by strangers: records bloated with huge request headers, a flood
of failed requests that rotates the old files away, and files deleted behind verify's back.

Rules (openkms; CloudTrail keeps every event it delivered): a record copies at most a bounded
part of what the request sent (``eventName`` 128, ``userAgent`` and ``errorMessage`` 1024
characters, marked ``...[truncated N chars]``); requests that fail authentication are recorded
in full at most ``audit_failed_auth_rate`` per second per source (bursts of 10 s worth) and
``audit_failed_auth_total_rate`` overall, the rest counted in ``suppressed`` notices; rotation
never deletes a file (``audit_backups`` 0); only ``openkms audit prune`` removes old files, and
records that it did in the chain; ``openkms audit verify`` fails when a file is missing without
such a record.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.conformance import send
from tests.conftest import ServerFactory, child_env, openkms_command
from tests.security import write_config

FLOOD = 300


def _audit_files(data_dir: Path) -> list[Path]:
    return sorted(data_dir.glob("audit*.log*"))


def _entries(data_dir: Path) -> list[dict[str, Any]]:
    out = []
    for path in _audit_files(data_dir):
        for line in path.read_bytes().splitlines():
            out.append(json.loads(line))
    return out


def _verify(files: list[Path], *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        openkms_command("audit", "verify", *extra, *map(str, files)),
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=120,
        check=False,
    )


def _unauthenticated(endpoint: str, index: int) -> None:
    headers = {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "TrentService." + "A" * 12_000,
        "User-Agent": f"flood/{index} " + "u" * 3_000,
    }
    resp = send(endpoint + "/", b"{}", headers)
    assert resp.status == 400, resp.body


def test_unauthenticated_flood_cannot_erase_the_audit_history(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    """300 unsigned requests with 12 KB targets and 3 KB user agents against a log that rotates
    at 64 KiB. Before: each request wrote a 15 KB record, rotation deleted the oldest files
    (the CreateKey record with them) and verify passed. Now: the CreateKey record survives,
    the flood costs a bounded number of bounded records plus one counted summary, and verify
    passes on the complete log."""
    config = write_config(tmp_path / "audit.toml", ["audit_max_bytes = 65536"])
    managed = server_factory.start(extra_args=["--config", str(config)])
    key_id = managed.client().create_key(Description="before the flood")["KeyMetadata"]["KeyId"]
    for index in range(FLOOD):
        _unauthenticated(managed.server.endpoint, index)
    managed.stop()
    data_dir = managed.server.data_dir

    entries = _entries(data_dir)
    created = [
        e
        for e in entries
        if e.get("eventName") == "CreateKey"
        and (e.get("responseElements") or {}).get("keyMetadata", {}).get("keyId") == key_id
    ]
    assert len(created) == 1, "the record written before the flood is gone"

    flood = [e for e in entries if e.get("errorCode") == "MissingAuthenticationTokenException"]
    assert 0 < len(flood) <= 30, len(flood)  # a burst of 10 s at 1/s per source, plus slack
    for record in flood:
        assert len(record["eventName"]) < 200 and "[truncated" in record["eventName"]
        assert len(record["userAgent"]) < 1100 and "[truncated" in record["userAgent"]
    suppressed = [
        e["openkmsNotice"]
        for e in entries
        if e.get("openkmsNotice", {}).get("kind") == "suppressed"
    ]
    assert len(flood) + sum(n["count"] for n in suppressed) == FLOOD
    total = sum(p.stat().st_size for p in _audit_files(data_dir))
    assert total < 200_000, total

    result = _verify(_audit_files(data_dir))
    assert result.returncode == 0, result.stdout + result.stderr


def _rotated_log(server_factory: ServerFactory, tmp_path: Path) -> Path:
    """A stopped server's data directory whose audit log rotated several times."""
    config = write_config(tmp_path / "audit.toml", ["audit_max_bytes = 4096"])
    managed = server_factory.start(extra_args=["--config", str(config)])
    kms = managed.client()
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    for index in range(40):
        kms.encrypt(KeyId=key_id, Plaintext=b"x", EncryptionContext={"n": f"{index:0400d}"})
    managed.stop()
    data_dir = managed.server.data_dir
    assert len(_audit_files(data_dir)) >= 4
    return data_dir


def test_deleting_the_oldest_audit_files_is_detected(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    """An attacker (or a careless rotation) removes the oldest files: verify used to pass with a
    warning; now it fails with ``missing-files`` unless told ``--allow-partial``."""
    data_dir = _rotated_log(server_factory, tmp_path)
    files = _audit_files(data_dir)
    oldest = max(
        (p for p in files if p.suffix.lstrip(".").isdigit()), key=lambda p: int(p.suffix[1:])
    )
    oldest.unlink()
    remaining = _audit_files(data_dir)
    result = _verify(remaining)
    assert result.returncode == 1, result.stdout
    assert "missing-files" in result.stdout
    assert _verify(remaining, "--allow-partial").returncode == 0


def test_audit_prune_is_the_recorded_way_to_remove_old_files(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    """``openkms audit prune --before`` removes rotated files and seals a ``pruned`` notice
    first, so verify passes on what is left and says what was pruned."""
    data_dir = _rotated_log(server_factory, tmp_path)
    before = len(_audit_files(data_dir))
    proc = subprocess.run(
        openkms_command(
            "audit", "prune", "--before", "2100-01-01T00:00:00Z", "--data-dir", str(data_dir)
        ),
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    remaining = _audit_files(data_dir)
    assert [p.name for p in remaining] == ["audit.log"], remaining
    assert before > 1
    result = _verify(remaining)
    assert result.returncode == 0, result.stdout
    assert "pruned" in result.stdout
