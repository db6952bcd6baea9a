"""A short run of the model-driven fuzzer (tests/security/fuzzer.py) against a real server:
2,000 requests derived from the botocore models of KMS, IAM and STS, valid and invalid, signed
and not. ``make fuzz`` runs 100,000.

Properties: no 5xx answer but the model's server faults (and openkms's documented 501 for IAM
and STS operations it does not serve), no traceback in the server's logs, and ``/healthz``
answered within 100 ms throughout.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.security.fuzzer import make_pools, own_server, run, scan_logs

REQUESTS = 2000
SEED = 20261215


def test_model_driven_fuzzing_finds_no_5xx_traceback_or_stall(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    data_dir: Path = tmp_path_factory.mktemp("openkms-fuzz")
    servers = own_server(data_dir)
    server = next(servers)
    try:
        pools = make_pools(server.endpoint, server.creds, server.account_id)
        offsets = {p: p.stat().st_size if p.exists() else 0 for p in server.logs}
        started = time.monotonic()
        report = run(server.endpoint, pools, server.creds, requests=REQUESTS, seed=SEED)
        elapsed = time.monotonic() - started
        report.findings += scan_logs(server.logs, offsets)
    finally:
        servers.close()
    print(report.summary())
    assert report.requests == REQUESTS
    assert report.health_probes > 0
    problems = [f for f in report.findings if f.kind != "modelled-5xx"]
    assert not problems, report.summary()
    assert elapsed < 60, elapsed
