"""Audit: search the server's audit log and show whether its hash chain verifies.

The audit log is the operator's record of every principal's calls; the console shows it to the
account's root user only, and only the records of that account (``recipientAccountId``). There
is no API for it (AWS has CloudTrail's LookupEvents), so this view reads the log files with
``openkms.audit.search`` and ``openkms.audit.chain`` (the same code as ``openkms audit``).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from openkms.audit.chain import VerifyReport, verify_files
from openkms.audit.search import Filters, parse_time, search_files
from openkms.console.client import USER_AGENT
from openkms.console.web import Response

if TYPE_CHECKING:
    from openkms.console.page import Page

MAX_RESULTS = 200
OUTCOMES = ("", "success", "error")


def audit_files(audit_path: str) -> list[Path]:
    """The audit log and its siblings: worker-slot files (``audit.w1.log``) and rotated ones
    (``audit.log.1``)."""
    if not audit_path:
        return []
    base = Path(audit_path)
    if not base.parent.is_dir():
        return []
    stem = base.stem
    return sorted(
        p
        for p in base.parent.iterdir()
        if p.is_file() and p.name.startswith(stem) and not p.name.startswith(".")
        and ".log" in p.name
    )


def _current(files: list[Path]) -> list[Path]:
    """The files being written (``audit.log``, ``audit.w1.log``), not the rotated ones."""
    return [f for f in files if not re.search(r"\.\d+$", f.name)]


# The last verification, by (name, size, mtime) of every file: a page view that finds nothing
# written since does not read the whole log again.
_verified: dict[tuple[tuple[str, int, int], ...], VerifyReport] = {}


def verify(files: list[Path]) -> VerifyReport:
    stamp = tuple((str(f), *_size_mtime(f)) for f in files)
    report = _verified.get(stamp)
    if report is None:
        report = verify_files(files)
        _verified.clear()
        _verified[stamp] = report
    return report


def _size_mtime(path: Path) -> tuple[int, int]:
    try:
        stat = path.stat()
    except OSError:
        return (-1, -1)
    return (stat.st_size, stat.st_mtime_ns)


def _records(
    page: Page,
    filters: Filters,
    outcome: str,
    limit: int,
    *,
    skip_console_reads: bool = False,
    current_only: bool = False,
) -> list[dict[str, Any]]:
    account = page.session.account_id
    found: collections.deque[dict[str, Any]] = collections.deque(maxlen=limit)
    files = audit_files(page.settings.audit_path)
    for line in search_files(_current(files) if current_only else files, filters):
        record = orjson.loads(line)
        if record.get("recipientAccountId") != account:
            continue
        if outcome == "success" and "errorCode" in record:
            continue
        if outcome == "error" and "errorCode" not in record:
            continue
        if (
            skip_console_reads
            and record.get("readOnly")
            and str(record.get("userAgent", "")).startswith(USER_AGENT)
        ):
            continue
        found.append(record)
    return sorted(found, key=lambda r: str(r.get("eventTime", "")), reverse=True)


async def recent_for_key(page: Page, arn: str, key_id: str) -> dict[str, Any]:
    """The key's last 20 records in the files being written (not the rotated ones: a key page
    must not read the whole history), for the key page (root only), without the reads the
    console made to draw its own pages."""
    if not page.session.is_root:
        return {"denied": True}
    # Reading files: on a thread, so that the worker's event loop serves everyone meanwhile.
    records = await asyncio.to_thread(
        functools.partial(
            _records, page, Filters(key=arn), "", 20, skip_console_reads=True, current_only=True
        )
    )
    return {"records": records}


async def audit_page(page: Page) -> Response:
    query = page.request.query
    values = {name: query.get(name, "").strip()[:256]
              for name in ("key", "principal", "operation", "outcome", "since", "until",
                           "reads")}
    if not page.session.is_root:
        return page.render("audit.html", status=403, denied=True, values=values)
    error = None
    records: list[dict[str, Any]] = []
    try:
        since = parse_time(values["since"]) if values["since"] else None
        until = parse_time(values["until"]) if values["until"] else None
    except ValueError as exc:
        since = until = None
        error = str(exc)
    operations = frozenset(o.strip() for o in values["operation"].split(",") if o.strip())
    filters = Filters(
        key=values["key"] or None,
        principal=values["principal"] or None,
        operations=operations or None,
        since=since,
        until=until,
    )
    started = time.perf_counter()
    if error is None:
        records = await asyncio.to_thread(
            functools.partial(
                _records, page, filters, values["outcome"], MAX_RESULTS,
                skip_console_reads=values["reads"] != "all",
            )
        )
    files = audit_files(page.settings.audit_path)
    report = await asyncio.to_thread(verify, files) if files else None
    return page.render(
        "audit.html",
        values=values,
        outcomes=OUTCOMES,
        records=records,
        error=error,
        report=report,
        files=[f.name for f in files],
        elapsed_ms=round((time.perf_counter() - started) * 1000),
        max_results=MAX_RESULTS,
        pretty=lambda r: orjson.dumps(r, option=orjson.OPT_INDENT_2).decode(),
    )


ROUTES = (("GET", "/audit", audit_page),)
