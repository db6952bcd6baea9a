"""Metrics: per-request observations, derived cache ratios, and multiprocess merging."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from openkms.http.metrics import (
    CONTENT_TYPE,
    LATENCY_BUCKETS,
    MULTIPROC_ENV,
    Metrics,
    prepare_multiprocess_dir,
    render_directory,
)

OPS = ("Encrypt", "Decrypt", "CreateKey", "DescribeKey")


def samples(body: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(body: bytes, name: str, **labels: str) -> float | None:
    return samples(body).get((name, tuple(sorted(labels.items()))))


def test_requests_and_latency_are_counted() -> None:
    metrics = Metrics(operations=OPS)
    for _ in range(3):
        metrics.observe("Encrypt", "ok", 0.002)
    metrics.observe("Encrypt", "AccessDeniedException", 0.0004)
    metrics.observe("CreateKey", "ok", 0.3)
    content_type, body = metrics.render()
    assert content_type == CONTENT_TYPE
    assert value(body, "openkms_requests_total", operation="Encrypt", outcome="ok") == 3
    assert (
        value(body, "openkms_requests_total", operation="Encrypt", outcome="AccessDeniedException")
        == 1
    )
    assert value(body, "openkms_requests_total", operation="CreateKey", outcome="ok") == 1
    assert value(body, "openkms_request_duration_seconds_count", operation="Encrypt") == 4
    assert value(body, "openkms_request_duration_seconds_sum", operation="Encrypt") == (
        pytest.approx(0.0064)
    )
    assert value(body, "openkms_request_duration_seconds_bucket", operation="Encrypt", le="0.0005")
    assert value(body, "openkms_build_info", version=__import__("openkms").__version__) == 1


def test_batched_histogram_matches_prometheus_observe() -> None:
    """The flush adds whole batches to prometheus-client's histogram internals; the result
    must be what observing one value at a time gives (pins those internals)."""
    durations = [0.0001, 0.0005, 0.0007, 0.001, 0.004, 0.01, 0.2, 0.5, 1.0, 3.0, 9.0, 12.0, 0.0]
    metrics = Metrics(operations=OPS)
    reference_registry = CollectorRegistry()
    reference = Histogram(
        "openkms_request_duration_seconds",
        "x",
        ["operation"],
        buckets=LATENCY_BUCKETS,
        registry=reference_registry,
    )
    for seconds in durations:
        metrics.observe("Decrypt", "ok", seconds)
        reference.labels("Decrypt").observe(seconds)
    _, body = metrics.render()
    ours = {
        k: v
        for k, v in samples(body).items()
        if k[0].startswith("openkms_request_duration") and not k[0].endswith("_created")
    }
    expected = {
        k: v
        for k, v in samples(generate_latest(reference_registry)).items()
        if not k[0].endswith("_created")
    }
    assert ours == pytest.approx(expected)


def test_unknown_operations_share_one_label() -> None:
    metrics = Metrics(operations=OPS)
    metrics.observe("Made-Up-By-The-Client", "UnknownOperationException", 0.001)
    metrics.observe("AlsoMadeUp", "UnknownOperationException", 0.001)
    metrics.throttled("AnotherOne")
    _, body = metrics.render()
    assert (
        value(
            body, "openkms_requests_total", operation="other", outcome="UnknownOperationException"
        )
        == 2
    )
    assert value(body, "openkms_throttled_requests_total", operation="other") == 1
    assert b"Made-Up" not in body


def test_default_operations_are_the_kms_operations() -> None:
    metrics = Metrics()
    metrics.observe("GenerateDataKeyPairWithoutPlaintext", "ok", 0.01)
    _, body = metrics.render()
    assert value(
        body,
        "openkms_requests_total",
        operation="GenerateDataKeyPairWithoutPlaintext",
        outcome="ok",
    )


def test_events_counters() -> None:
    metrics = Metrics(operations=OPS)
    metrics.throttled("Encrypt")
    metrics.throttled("Encrypt")
    metrics.audit_write_failure()
    metrics.scheduler_run(True, deleted=2, rotated=1)
    metrics.scheduler_run(False)
    _, body = metrics.render()
    assert value(body, "openkms_throttled_requests_total", operation="Encrypt") == 2
    assert value(body, "openkms_audit_write_failures_total") == 1
    assert value(body, "openkms_scheduler_runs_total", outcome="ok") == 1
    assert value(body, "openkms_scheduler_runs_total", outcome="error") == 1
    assert value(body, "openkms_scheduler_actions_total", action="deleted") == 2
    assert value(body, "openkms_scheduler_actions_total", action="rotated") == 1


class FakeCache:
    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0


def test_cache_hit_ratio_from_callables() -> None:
    metrics = Metrics(operations=OPS)
    key_cache, alias_cache, empty = FakeCache(), FakeCache(), FakeCache()
    metrics.register_cache("key", lambda: (key_cache.hits, key_cache.misses))
    metrics.register_cache("alias", lambda: (alias_cache.hits, alias_cache.misses))
    metrics.register_cache("empty", lambda: (empty.hits, empty.misses))
    key_cache.hits, key_cache.misses = 3, 1
    alias_cache.misses = 5
    _, body = metrics.render()
    assert value(body, "openkms_cache_hit_ratio", cache="key") == 0.75
    assert value(body, "openkms_cache_hit_ratio", cache="alias") == 0.0
    assert value(body, "openkms_cache_hit_ratio", cache="empty") is None  # no lookups yet
    # Growth is added once; a counter that went down (a new cache object) counts afresh.
    key_cache.hits = 9
    _, body = metrics.render()
    assert value(body, "openkms_cache_hits_total", cache="key") == 9
    key_cache.hits, key_cache.misses = 2, 0
    _, body = metrics.render()
    assert value(body, "openkms_cache_hits_total", cache="key") == 11
    assert value(body, "openkms_cache_misses_total", cache="key") == 1


def test_a_broken_cache_callable_does_not_break_rendering() -> None:
    metrics = Metrics(operations=OPS)

    def broken() -> tuple[int, int]:
        raise RuntimeError("boom")

    metrics.register_cache("broken", broken)
    metrics.observe("Encrypt", "ok", 0.001)
    _, body = metrics.render()
    assert value(body, "openkms_requests_total", operation="Encrypt", outcome="ok") == 1


def test_observe_flushes_by_itself_after_the_interval() -> None:
    now = [100.0]
    metrics = Metrics(operations=OPS, flush_interval=1.0, clock=lambda: now[0])
    metrics.observe("Encrypt", "ok", 0.001)
    assert metrics.requests.labels("Encrypt", "ok")._value.get() == 0  # still pending
    now[0] += 1.5
    metrics.observe("Encrypt", "ok", 0.001)
    assert metrics.requests.labels("Encrypt", "ok")._value.get() == 2


def test_observe_leaves_prometheus_alone_until_the_flush() -> None:
    """Why observe is cheap (its cost is measured in benchmarks/, never timed here): it adds to
    plain counters and touches no prometheus child until the flush interval has passed."""
    now = [100.0]
    metrics = Metrics(operations=OPS, flush_interval=1.0, clock=lambda: now[0])
    touched: list[tuple[str, ...]] = []
    real_labels = metrics.requests.labels

    def counting_labels(*values: str) -> object:
        touched.append(values)
        return real_labels(*values)

    metrics.requests.labels = counting_labels  # type: ignore[method-assign,assignment]
    for i in range(20_000):
        metrics.observe(OPS[i & 3], "ok", 0.001)
    assert touched == []
    now[0] += 1.5
    metrics.observe(OPS[0], "ok", 0.001)
    assert touched and sum(
        real_labels(op, "ok")._value.get() for op in OPS
    ) == 20_001


WORKER = textwrap.dedent(
    """
    import sys, time
    from openkms.http.metrics import Metrics
    directory, op, n, hits, misses, mode = sys.argv[1:7]
    m = Metrics(directory, operations=["Encrypt", "Decrypt", "CreateKey"])
    m.register_cache("key", lambda: (int(hits), int(misses)))
    for _ in range(int(n)):
        m.observe(op, "ok", 0.002)
    m.throttled(op)
    if mode == "exit":
        m.close()
        print("done", flush=True)
    else:
        # Stay alive: render what every process wrote, then exit.
        sys.stdin.readline()
        ctype, body = m.render()
        sys.stdout.write(body.decode())
    """
)


def _spawn(directory: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, str(directory), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={
            **os.environ,
            MULTIPROC_ENV: str(directory),
            "PYTHONWARNINGS": "error",
        },
    )


def test_processes_share_metrics_through_the_multiprocess_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "counter_999999.db").write_bytes(b"stale from a previous run")
    keep = directory / "notes.txt"
    keep.write_text("not ours")
    monkeypatch.setenv(MULTIPROC_ENV, "restored-after-the-test")
    prepare_multiprocess_dir(directory)
    assert os.environ[MULTIPROC_ENV] == str(directory)
    assert not list(directory.glob("*.db"))  # wiped...
    assert keep.exists()  # ...but only the metric files

    # Two workers write at the same time; one exits, the other stays and renders.
    a = _spawn(directory, "Encrypt", "300", "30", "10", "exit")
    b = _spawn(directory, "Decrypt", "200", "10", "30", "stay")
    out_a, _ = a.communicate(timeout=60)
    assert a.returncode == 0 and "done" in out_a
    out_b, _ = b.communicate("render\n", timeout=60)
    assert b.returncode == 0
    body = out_b.encode()
    # The rendering worker sees the exited worker's counts as well as its own.
    assert value(body, "openkms_requests_total", operation="Encrypt", outcome="ok") == 300
    assert value(body, "openkms_requests_total", operation="Decrypt", outcome="ok") == 200
    assert value(body, "openkms_request_duration_seconds_count", operation="Encrypt") == 300
    assert value(body, "openkms_throttled_requests_total", operation="Encrypt") == 1
    assert value(body, "openkms_throttled_requests_total", operation="Decrypt") == 1
    # Cache ratios merge every process's hits and misses: (30 + 10) / (30 + 10 + 10 + 30).
    assert value(body, "openkms_cache_hit_ratio", cache="key") == 0.5
    # One build_info series (multiprocess_mode="max"), not one per process.
    assert len([k for k in samples(body) if k[0] == "openkms_build_info"]) == 1

    # The server process (or a separate metrics port) reads the same files.
    merged = render_directory(directory)
    assert value(merged, "openkms_requests_total", operation="Decrypt", outcome="ok") == 200
    assert value(merged, "openkms_cache_hits_total", cache="key") == 40
