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

# Keys by state, deletions and rotations due come from the key search extensions, over every
# key; each key listed is described (DescribeKey, GetKeyRotationStatus) as the signed-in user.
# At most this many of each list are read (the page shows the 20 due first).
DUE_READ = 200
SCAN_BUDGET_SECONDS = 1.5
FULL_COUNT_BUDGET_SECONDS = 60.0
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


async def _states(page: Page, deadline: float) -> tuple[dict[str, int], bool]:
    """Keys by state over every key of the Region the signed-in principal may describe
    (``OpenKMS.CountKeysByState``, window after window): (counts, complete)."""
    states: dict[str, int] = {}
    marker: str | None = None
    while True:
        params: dict[str, Any] = {"Marker": marker} if marker else {}
        asked = time.monotonic()
        answer = await page.openkms("CountKeysByState", params)
        for state, count in answer.get("KeyStates", {}).items():
            states[state] = states.get(state, 0) + int(count)
        marker = answer.get("NextMarker") if answer.get("Truncated") else None
        if marker is None:
            return states, True
        # Stop before a window that would likely end past the deadline (windows cost alike).
        now = time.monotonic()
        if now + (now - asked) > deadline:
            return states, False


async def _due(
    page: Page, params: dict[str, Any], deadline: float
) -> tuple[list[dict[str, Any]], bool]:
    """Keys found by the key search (``OpenKMS.SearchKeys``), each described by DescribeKey:
    (their metadata, whether the search covered every key)."""
    found: list[dict[str, Any]] = []
    marker: str | None = None
    while len(found) < DUE_READ:
        request: dict[str, Any] = {**params, "Limit": 100}
        if marker:
            request["Marker"] = marker
        answer = await page.openkms("SearchKeys", request)
        for key in answer.get("Keys", []):
            try:
                meta = (await page.kms("DescribeKey", {"KeyId": key["KeyId"]}))["KeyMetadata"]
            except ApiError:
                continue
            found.append(meta)
        marker = answer.get("NextMarker") if answer.get("Truncated") else None
        if marker is None:
            return found, True
        if time.monotonic() > deadline:
            break
    return found, False


async def _deletions(page: Page, deadline: float) -> tuple[list[dict[str, Any]], bool]:
    found, complete = await _due(page, {"KeyState": "PendingDeletion"}, deadline)
    return [m for m in found if m.get("DeletionDate")], complete


async def _rotations(
    page: Page, deadline: float, now: float
) -> tuple[list[dict[str, Any]], bool]:
    """Automatic rotations due within SOON_SECONDS; the date shown is GetKeyRotationStatus's."""
    found, complete = await _due(page, {"RotationDueBefore": now + SOON_SECONDS}, deadline)
    rotations: list[dict[str, Any]] = []
    for meta in found:
        try:
            status = await page.kms("GetKeyRotationStatus", {"KeyId": meta["KeyId"]})
        except ApiError:
            continue
        due = status.get("NextRotationDate")
        if status.get("KeyRotationEnabled") and due and float(due) - now < SOON_SECONDS:
            rotations.append({**meta, "NextRotationDate": due})
    return rotations, complete


async def overview_page(page: Page) -> Response:
    started = time.monotonic()
    states: dict[str, int] = {}
    deletions: list[dict[str, Any]] = []
    rotations: list[dict[str, Any]] = []
    states_complete = deletions_complete = rotations_complete = True
    error = None
    try:
        # "Count all" (?all=1) when the budget did not reach the end: each key is authorized
        # on the server, about 40 µs a key on a 2-core machine.
        full = page.request.query.get("all") == "1"
        budget = FULL_COUNT_BUDGET_SECONDS if full else SCAN_BUDGET_SECONDS
        states, states_complete = await _states(page, started + budget)
        started = time.monotonic()
        deletions, deletions_complete = await _deletions(page, started + SCAN_BUDGET_SECONDS)
        rotations, rotations_complete = await _rotations(
            page, started + SCAN_BUDGET_SECONDS, time.time()
        )
    except ApiError as exc:
        error = f"{exc.code}: {exc.message}"
    deletions.sort(key=lambda m: float(m["DeletionDate"]))
    rotations.sort(key=lambda m: float(m["NextRotationDate"]))
    return page.render(
        "overview.html",
        status=400 if error else 200,
        states=sorted(states.items()),
        counted=sum(states.values()),
        states_complete=states_complete,
        deletions=deletions[:20],
        deletions_complete=deletions_complete,
        rotations=rotations[:20],
        rotations_complete=rotations_complete,
        error=error,
        metrics_enabled=page.metrics is not None,
    )


ROUTES = (
    ("GET", "/overview", overview_page),
    ("GET", "/overview/metrics.json", metrics_json),
)
