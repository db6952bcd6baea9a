"""Prometheus metrics, correct across uvicorn's worker processes.

The server process calls :func:`prepare_multiprocess_dir` once, before any worker starts: it
empties the directory (its ``*.db`` files only) and sets ``PROMETHEUS_MULTIPROC_DIR``, which
the workers inherit. Each worker builds one :class:`Metrics` with that directory; prometheus-
client's multiprocess mode then keeps every worker's values in its own memory-mapped file, and
:meth:`Metrics.render` (GET /metrics, answered by whichever worker gets the request) merges the
files of all workers, including workers that have exited, so counters never go backwards when
a worker restarts.

Cost per request: :meth:`Metrics.observe` only adds to in-process dictionaries (well under a
microsecond; the app calls the compiled ``Metrics.tally`` directly); the totals reach the
shared files in :meth:`Metrics.flush`, which ``observe`` calls itself once ``flush_interval``
seconds have passed, which :meth:`Metrics.render` calls first, and which the app should also
call from a periodic task and at shutdown (so an idle worker's last second of traffic is not
held back). A scrape therefore sees the other workers' traffic with at most ``flush_interval``
seconds of delay.

Cache hit ratios: :meth:`Metrics.register_cache` takes a callable returning ``(hits, misses)``
(e.g. a ``TtlCache``'s counters); each flush adds the growth since the last flush to the
``openkms_cache_hits_total``/``openkms_cache_misses_total`` counters, and a custom collector
derives ``openkms_cache_hit_ratio`` from the merged totals of all workers when rendering.

Labels are bounded: an operation outside the known set is recorded as ``"other"`` (the
X-Amz-Target header is chosen by the client); the outcome is ``"ok"`` or the error code the
server answered with (a fixed set).

Exposed series::

    openkms_requests_total{operation, outcome}          counter
    openkms_request_duration_seconds{operation}         histogram
    openkms_throttled_requests_total{operation}         counter
    openkms_cache_hits_total{cache} / _misses_total     counter
    openkms_cache_hit_ratio{cache}                      gauge (derived at render time)
    openkms_scheduler_runs_total{outcome}               counter ("ok" | "error")
    openkms_scheduler_actions_total{action}             counter ("deleted" | "rotated" | "expired")
    openkms_audit_write_failures_total                  counter
    openkms_build_info{version}                         gauge (multiprocess_mode="max")
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import values as _prom_values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from openkms.http.request_tally import RequestTally

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

__all__ = [
    "CONTENT_TYPE",
    "LATENCY_BUCKETS",
    "MULTIPROC_ENV",
    "Metrics",
    "prepare_multiprocess_dir",
    "start_metrics_server",
]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# The text exposition format generate_latest() writes.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Seconds. The upper bound of the last finite bucket is 10 s; +Inf is implicit.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
OTHER = "other"
_INF = float("inf")

CacheStats = Callable[[], tuple[int, int]]


def prepare_multiprocess_dir(path: str | os.PathLike[str]) -> Path:
    """Creates ``path`` (mode 0700), deletes the ``*.db`` files a previous run left there, and
    sets ``PROMETHEUS_MULTIPROC_DIR`` for this process and the workers it will start.

    Call it in the server process before any worker starts, and before anything in that
    process imports metrics. Only ``*.db`` files directly in ``path`` are removed, so a
    mistyped path cannot wipe anything else.
    """
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    for stale in directory.glob("*.db"):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
    os.environ[MULTIPROC_ENV] = str(directory)
    return directory


def _use_multiprocess_values(directory: str) -> None:
    """prometheus-client picks its value class when ``prometheus_client.values`` is first
    imported, from ``PROMETHEUS_MULTIPROC_DIR``; make sure it is the memory-mapped one even if
    the import happened before the variable was set."""
    if os.environ.get(MULTIPROC_ENV) != directory:
        os.environ[MULTIPROC_ENV] = directory
    if not getattr(_prom_values.ValueClass, "_multiprocess", False):
        _prom_values.ValueClass = _prom_values.MultiProcessValue()  # type: ignore[no-untyped-call]


def _multiprocess_collector(directory: str) -> Collector:
    collector: Collector = MultiProcessCollector(None, path=directory)  # type: ignore[no-untyped-call]
    return collector


def _default_operations() -> frozenset[str]:
    from openkms.protocol.operations import OPERATIONS

    return frozenset(OPERATIONS)


class _RatioCollector(Collector):
    """Yields everything ``source`` yields, plus ``openkms_cache_hit_ratio`` computed from the
    (already merged) cache hit and miss counters."""

    def __init__(self, source: Collector) -> None:
        self._source = source

    def collect(self) -> Iterable[Metric]:
        hits: dict[str, float] = {}
        misses: dict[str, float] = {}
        for family in self._source.collect():
            for sample in family.samples:
                if sample.name == "openkms_cache_hits_total":
                    hits[sample.labels.get("cache", "")] = sample.value
                elif sample.name == "openkms_cache_misses_total":
                    misses[sample.labels.get("cache", "")] = sample.value
            yield family
        ratio = GaugeMetricFamily(
            "openkms_cache_hit_ratio",
            "Cache hits / (hits + misses) since the server started, all workers.",
            labels=["cache"],
        )
        for cache in sorted(set(hits) | set(misses)):
            total = hits.get(cache, 0.0) + misses.get(cache, 0.0)
            if total > 0:
                ratio.add_metric([cache], hits.get(cache, 0.0) / total)
        yield ratio


def _render_registry(source: Collector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_RatioCollector(source))
    return registry


class Metrics:
    """One per worker process. ``multiprocess_dir`` None: a single-process registry (tests,
    ``--workers 1`` without a directory)."""

    def __init__(
        self,
        multiprocess_dir: str | os.PathLike[str] | None = None,
        *,
        operations: Iterable[str] | None = None,
        flush_interval: float = 1.0,
        version: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._dir = str(multiprocess_dir) if multiprocess_dir is not None else None
        if self._dir is not None:
            Path(self._dir).mkdir(parents=True, exist_ok=True, mode=0o700)
            _use_multiprocess_values(self._dir)
        self._ops = frozenset(operations) if operations is not None else _default_operations()
        self._lock = threading.Lock()  # the registered caches
        # Pending (not yet flushed) per-request data; the app calls ``tally.observe`` itself.
        self.tally = RequestTally(self._ops, OTHER, LATENCY_BUCKETS, flush_interval, clock)
        # Prometheus metrics; a private registry (never the global one) in single-process mode.
        self._registry = CollectorRegistry(auto_describe=True)
        reg = self._registry
        self.requests = Counter(
            "openkms_requests",
            "KMS API requests by operation and outcome (ok or the error code).",
            ["operation", "outcome"],
            registry=reg,
        )
        self.latency = Histogram(
            "openkms_request_duration_seconds",
            "Time from the request's arrival to its response, by operation.",
            ["operation"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.throttled_requests = Counter(
            "openkms_throttled_requests",
            "Requests refused with ThrottlingException by the request-rate quotas.",
            ["operation"],
            registry=reg,
        )
        self.cache_hits = Counter(
            "openkms_cache_hits", "Cache lookups that found an entry.", ["cache"], registry=reg
        )
        self.cache_misses = Counter(
            "openkms_cache_misses", "Cache lookups that found none.", ["cache"], registry=reg
        )
        self.scheduler_runs = Counter(
            "openkms_scheduler_runs",
            "Runs of the scheduled jobs (deletions, rotations, expirations).",
            ["outcome"],
            registry=reg,
        )
        self.scheduler_actions = Counter(
            "openkms_scheduler_actions",
            "Keys deleted, rotated or whose imported material expired, by the scheduler.",
            ["action"],
            registry=reg,
        )
        self.audit_write_failures = Counter(
            "openkms_audit_write_failures",
            "Audit records that could not be written.",
            registry=reg,
        )
        self.build_info = Gauge(
            "openkms_build_info",
            "Always 1; the version label tells the openkms version.",
            ["version"],
            registry=reg,
            multiprocess_mode="max",
        )
        if version is None:
            from openkms import __version__ as version
        self.build_info.labels(version).set(1)
        self._req_children: dict[tuple[str, str], Any] = {}
        self._lat_children: dict[str, Any] = {}
        self._caches: dict[str, CacheStats] = {}
        self._cache_seen: dict[str, tuple[int, int]] = {}

    @property
    def multiprocess_dir(self) -> str | None:
        return self._dir

    # -- hot path ---------------------------------------------------------------------------
    def observe(self, operation: str, outcome: str, seconds: float) -> None:
        """One finished request: its operation, ``"ok"`` or its error code, its duration."""
        if self.tally.observe(operation, outcome, seconds):
            self.flush()

    # -- rarer events (written through at once) -----------------------------------------------
    def throttled(self, operation: str) -> None:
        if operation not in self._ops:
            operation = OTHER
        self.throttled_requests.labels(operation).inc()

    def scheduler_run(
        self, ok: bool, *, deleted: int = 0, rotated: int = 0, expired: int = 0
    ) -> None:
        self.scheduler_runs.labels("ok" if ok else "error").inc()
        for action, count in (("deleted", deleted), ("rotated", rotated), ("expired", expired)):
            if count:
                self.scheduler_actions.labels(action).inc(count)

    def audit_write_failure(self) -> None:
        self.audit_write_failures.inc()

    def register_cache(self, name: str, stats: CacheStats) -> None:
        """``stats()`` returns the cache's ``(hits, misses)`` counts so far in this process."""
        with self._lock:
            self._caches[name] = stats
            self._cache_seen.setdefault(name, (0, 0))
        self.cache_hits.labels(name)
        self.cache_misses.labels(name)

    # -- flushing and rendering ---------------------------------------------------------------
    def flush(self) -> None:
        """Moves what ``observe`` gathered, and the caches' growth, to the shared counters."""
        counts, latency = self.tally.take()
        with self._lock:
            caches = list(self._caches.items())
        for (operation, outcome), n in counts.items():
            child = self._req_children.get((operation, outcome))
            if child is None:
                child = self._req_children[(operation, outcome)] = self.requests.labels(
                    operation, outcome
                )
            child.inc(n)
        for operation, lat in latency.items():
            hist = self._lat_children.get(operation)
            if hist is None:
                hist = self._lat_children[operation] = self.latency.labels(operation)
            # prometheus-client keeps a histogram child's sum and per-bucket (non-cumulative)
            # counts in ``_sum`` and ``_buckets``; adding whole batches to them is what
            # ``observe`` would do one value at a time (pinned by the unit tests).
            hist._sum.inc(lat[0])
            for index, batch in enumerate(lat[1:]):
                if batch:
                    hist._buckets[index].inc(batch)
        for name, stats in caches:
            try:
                hits, misses = stats()
            except Exception:  # noqa: S112 - a broken stats callable must not break requests
                continue
            seen_hits, seen_misses = self._cache_seen.get(name, (0, 0))
            # A counter that went down was reset (e.g. a new cache object): count it afresh.
            grew_hits = hits - seen_hits if hits >= seen_hits else hits
            grew_misses = misses - seen_misses if misses >= seen_misses else misses
            self._cache_seen[name] = (hits, misses)
            if grew_hits:
                self.cache_hits.labels(name).inc(grew_hits)
            if grew_misses:
                self.cache_misses.labels(name).inc(grew_misses)

    def render(self) -> tuple[str, bytes]:
        """``(content type, body)`` for GET /metrics."""
        self.flush()
        source: Collector = self._registry
        if self._dir is not None:
            source = _multiprocess_collector(self._dir)
        return CONTENT_TYPE, generate_latest(_render_registry(source))

    def close(self) -> None:
        """Flush; call at shutdown."""
        self.flush()


def render_directory(multiprocess_dir: str | os.PathLike[str]) -> bytes:
    """The merged metrics of every process that wrote to ``multiprocess_dir``."""
    source = _multiprocess_collector(str(multiprocess_dir))
    return generate_latest(_render_registry(source))


def start_metrics_server(
    host: str,
    port: int,
    multiprocess_dir: str | os.PathLike[str],
    *,
    certfile: str | None = None,
    keyfile: str | None = None,
) -> tuple[WSGIServer, threading.Thread]:
    """Serves /metrics on its own port from a daemon thread (for ``metrics_port``): meant
    for the server process that supervises the workers, reading their files."""
    from prometheus_client import start_http_server

    source = _multiprocess_collector(str(multiprocess_dir))
    return start_http_server(
        port,
        addr=host,
        registry=_render_registry(source),
        certfile=certfile,
        keyfile=keyfile,
    )
