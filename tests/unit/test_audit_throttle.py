"""FailedAuthGate: full records for failed authentication at a bounded rate, per source and
overall; everything else counted in one ``suppressed`` notice."""

from __future__ import annotations

from openkms.audit.throttle import FailedAuthGate


def test_a_burst_then_one_per_second_per_source() -> None:
    gate = FailedAuthGate(rate=1.0, total_rate=1000.0)
    admitted = sum(gate.admit("10.0.0.1", 0.0, "X") for _ in range(100))
    assert admitted == 10  # 10 s worth
    assert gate.admit("10.0.0.1", 0.5, "X") is False
    assert gate.admit("10.0.0.1", 1.6, "X") is True
    assert gate.admit("10.0.0.2", 1.6, "X") is True  # another source has its own bucket


def test_the_total_rate_bounds_many_sources() -> None:
    gate = FailedAuthGate(rate=1.0, total_rate=2.0)
    admitted = sum(gate.admit(f"10.0.{i // 250}.{i % 250}", 0.0, "X") for i in range(1000))
    assert admitted == 20


def test_the_summary_accounts_for_every_suppressed_request() -> None:
    gate = FailedAuthGate(rate=1.0, total_rate=100.0)
    admitted = 0
    for i in range(50):
        admitted += gate.admit("192.0.2.7", float(i) / 100, "MissingAuthenticationTokenException")
        admitted += gate.admit("192.0.2.8", float(i) / 100, "InvalidSignatureException")
    notice = gate.summary()
    assert notice is not None
    body = notice["openkmsNotice"]
    assert body["kind"] == "suppressed"
    assert body["count"] + admitted == 100
    by_source = {s["sourceIPAddress"]: s for s in body["sources"]}
    assert by_source["192.0.2.7"]["errorCodes"] == {"MissingAuthenticationTokenException": 40}
    assert gate.summary() is None  # counted once


def test_tracked_sources_are_bounded() -> None:
    gate = FailedAuthGate(rate=0.1, total_rate=0.1, max_sources=8)
    for i in range(100):
        gate.admit(f"198.51.100.{i}", 0.0, "X")
    body = gate.summary()["openkmsNotice"]  # type: ignore[index]
    assert len(body["sources"]) <= 8
    assert body["count"] == 100 - 1  # one admitted by the total bucket's burst of 1
    assert body["other"]["count"] > 0
