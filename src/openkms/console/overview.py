"""Overview: the server's own metrics as charts (console.js polls ``overview/metrics.json`` and
draws rates from the counters' differences with uPlot), keys by state, and the rotations and
deletions due soon."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import orjson
from prometheus_client.parser import text_string_to_metric_families

from openkms.console.client import ApiError
from openkms.console.web import Response

if TYPE_CHECKING:
    from openkms.console.page import Page

SCAN_KEYS = 500
SCAN_BUDGET_SECONDS = 1.5
SOON_SECONDS = 30 * 86400


def metrics_snapshot(text: str) -> dict[str, Any]:
    """{operation: {requests, errors, throttled, latency_sum, latency_count}} from the
    Prometheus text of /metrics."""
    ops: dict[str, dict[str, float]] = {}

    def entry(op: str) -> dict[str, float]:
        return ops.setdefault(
            op,
            {"requests": 0.0, "errors": 0.0, "throttled": 0.0, "latency_sum": 0.0,
             "latency_count": 0.0},
        )

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            op = sample.labels.get("operation")
            if op is None:
                continue
            if sample.name == "openkms_requests_total":
                item = entry(op)
                item["requests"] += sample.value
                if sample.labels.get("outcome") != "ok":
                    item["errors"] += sample.value
            elif sample.name == "openkms_throttled_requests_total":
                entry(op)["throttled"] += sample.value
            elif sample.name == "openkms_request_duration_seconds_sum":
                entry(op)["latency_sum"] += sample.value
            elif sample.name == "openkms_request_duration_seconds_count":
                entry(op)["latency_count"] += sample.value
    return ops


async def metrics_json(page: Page) -> Response:
    metrics = page.metrics
    if metrics is None:
        body: dict[str, Any] = {"enabled": False, "time": time.time(), "operations": {}}
    else:
        _, text = metrics.render()
        body = {
            "enabled": True,
            "time": time.time(),
            "operations": metrics_snapshot(text.decode("utf-8", "replace")),
        }
    return Response(200, orjson.dumps(body), "application/json")


async def overview_page(page: Page) -> Response:
    started = time.monotonic()
    states: dict[str, int] = {}
    deletions: list[dict[str, Any]] = []
    rotations: list[dict[str, Any]] = []
    scanned = 0
    complete = True
    error = None
    now = time.time()
    marker: str | None = None
    try:
        while scanned < SCAN_KEYS:
            params: dict[str, Any] = {"Limit": 100}
            if marker:
                params["Marker"] = marker
            answer = await page.kms("ListKeys", params)
            for key in answer.get("Keys", []):
                scanned += 1
                try:
                    meta = (await page.kms("DescribeKey", {"KeyId": key["KeyId"]}))["KeyMetadata"]
                except ApiError:
                    continue
                state = meta.get("KeyState", "?")
                states[state] = states.get(state, 0) + 1
                if state == "PendingDeletion" and meta.get("DeletionDate"):
                    deletions.append(meta)
                if (
                    state == "Enabled"
                    and meta.get("KeySpec") == "SYMMETRIC_DEFAULT"
                    and meta.get("KeyManager") == "CUSTOMER"
                    and meta.get("Origin") == "AWS_KMS"
                ):
                    try:
                        status = await page.kms("GetKeyRotationStatus", {"KeyId": meta["KeyId"]})
                    except ApiError:
                        status = {}
                    due = status.get("NextRotationDate")
                    if status.get("KeyRotationEnabled") and due and float(due) - now < SOON_SECONDS:
                        rotations.append({**meta, "NextRotationDate": due})
            marker = answer.get("NextMarker") if answer.get("Truncated") else None
            if marker is None:
                break
            if time.monotonic() - started > SCAN_BUDGET_SECONDS:
                break
        complete = marker is None
    except ApiError as exc:
        error = f"{exc.code}: {exc.message}"
    deletions.sort(key=lambda m: float(m["DeletionDate"]))
    rotations.sort(key=lambda m: float(m["NextRotationDate"]))
    return page.render(
        "overview.html",
        status=400 if error else 200,
        states=sorted(states.items()),
        deletions=deletions[:20],
        rotations=rotations[:20],
        scanned=scanned,
        complete=complete,
        error=error,
        metrics_enabled=page.metrics is not None,
    )


ROUTES = (
    ("GET", "/overview", overview_page),
    ("GET", "/overview/metrics.json", metrics_json),
)
