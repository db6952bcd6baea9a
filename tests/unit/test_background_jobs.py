"""The key-usage flush runs in a thread: a slow database commit does not stall the event loop
(and with it every request of the worker)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from pathlib import Path
from typing import Any

from openkms.config import Settings, load_settings
from openkms.http.app import create_app
from openkms.service import keys
from openkms.service.context import Principal, RequestContext
from tests.conftest import create_account

COMMIT_SECONDS = 0.6


def _settings(data_dir: Path, **env: str) -> Settings:
    # Metrics off: prometheus-client's multiprocess mode is process-wide state (an environment
    # variable), which would leak into the metrics tests of this pytest worker.
    return load_settings(
        None, {"OPENKMS_DATA_DIR": str(data_dir), "OPENKMS_METRICS_ENABLED": "0", **env}, {}
    )


def test_a_slow_usage_flush_leaves_the_event_loop_free(tmp_path: Path) -> None:
    account = create_account(tmp_path)
    app = create_app(_settings(tmp_path, OPENKMS_USAGE_FLUSH_SECONDS="0.05"))
    runtime = app.runtime
    account_id = account["AccountId"]
    principal = Principal(account_id, f"arn:aws:iam::{account_id}:root", "root", "AKIA", account_id)
    ctx = RequestContext(principal, "us-east-1", "req-1", time.time(), "Encrypt")
    arn = keys.create_key(runtime, ctx, {})["KeyMetadata"]["Arn"]
    record = runtime.load_key(arn)
    assert record is not None
    runtime.note_usage(record, ctx)

    started = threading.Event()
    real = runtime.storage.record_key_usage
    committed: list[str] = []

    def slow_commit(batch: Any) -> None:
        committed.extend(usage.key_arn for usage in batch)
        started.set()
        time.sleep(COMMIT_SECONDS)  # a commit waiting for the disk
        real(batch)

    runtime.storage.record_key_usage = slow_commit  # type: ignore[method-assign]

    async def lag_during_the_commit() -> float:
        app._start_background()
        deadline = time.monotonic() + 5
        while not started.is_set():
            assert time.monotonic() < deadline, "the flush did not run"
            await asyncio.sleep(0.01)
        worst = 0.0
        end = time.monotonic() + COMMIT_SECONDS / 2
        while time.monotonic() < end:
            before = time.monotonic()
            await asyncio.sleep(0.005)
            worst = max(worst, time.monotonic() - before)
        await app._stop_background()
        return worst

    worst = asyncio.run(lag_during_the_commit())
    # On the event loop, one step would have taken the whole commit (0.6 s).
    assert worst < COMMIT_SECONDS / 3, worst
    assert committed == [arn]


def test_a_background_job_that_fails_runs_again(tmp_path: Path) -> None:
    create_account(tmp_path)
    app = create_app(_settings(tmp_path))
    runs: list[float] = []

    def flaky() -> None:
        runs.append(time.monotonic())
        if len(runs) == 1:
            raise RuntimeError("the first run fails")

    async def run_a_while() -> None:
        task = asyncio.ensure_future(app._every(0.01, flaky, in_thread=True))
        # Until the third run, or 10 s on a machine too busy to give a thread 10 ms (a fixed
        # 0.3 s saw one run under the load of a full CI run).
        deadline = time.monotonic() + 10
        while len(runs) < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if app.audit is not None:
            app.audit.close()

    asyncio.run(run_a_while())
    assert len(runs) >= 3
