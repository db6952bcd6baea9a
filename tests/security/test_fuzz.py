"""A short run of the model-driven fuzzer (tests/security/fuzzer.py) against a real server:
2,000 requests derived from the botocore models of KMS, Secrets Manager, IAM and STS, valid
and invalid, signed and not. ``make fuzz`` runs 100,000.

Properties: no 5xx answer but the model's server faults (and openkms's documented 501 for IAM
and STS operations it does not serve), no traceback in the server's logs, and ``/healthz``
answered within 100 ms throughout.
"""

from __future__ import annotations

import datetime
import json
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.conformance import kms_headers, send, sign
from tests.conftest import Server
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


def test_requests_the_fuzzer_found_answering_500_are_4xx(server: Server, kms: Any) -> None:
    """Regressions from ``make fuzz`` (seed 1): an Authorization header of only commas
    (IndexError in the SigV4 parser), an ImportKeyMaterial ``ValidTo`` beyond any calendar
    (OverflowError while auditing: the exception escaped the application), and
    SimulateCustomPolicy with a context entry without a name (KeyError)."""
    headers = {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "TrentService.ListKeys",
        "Authorization": ", ,",
        "X-Amz-Date": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
    }
    resp = send(server.endpoint + "/", b"{}", headers)
    assert resp.status == 400 and resp.error_type == "IncompleteSignatureException", resp.body

    key_id = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    with pytest.raises(ClientError) as caught:
        kms.import_key_material(
            KeyId=key_id,
            ImportToken=b"x" * 16,
            EncryptedKeyMaterial=b"y" * 16,
            ExpirationModel="KEY_MATERIAL_EXPIRES",
            ValidTo=datetime.datetime(9999, 12, 31, tzinfo=datetime.UTC),
        )
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    body = json.dumps(
        {"KeyId": key_id, "ImportToken": "eHh4", "EncryptedKeyMaterial": "eXl5", "ValidTo": 1e20}
    ).encode()
    signed = sign(
        server.endpoint + "/",
        body,
        kms_headers("ImportKeyMaterial"),
        access_key_id=server.access_key_id,
        secret_access_key=server.secret_access_key,
    )
    resp = send(server.endpoint + "/", body, signed)
    assert resp.status == 400, resp.body

    iam = boto3.session.Session().client(
        "iam",
        endpoint_url=server.endpoint,
        region_name=server.region,
        aws_access_key_id=server.access_key_id,
        aws_secret_access_key=server.secret_access_key,
        config=Config(retries={"max_attempts": 1}, parameter_validation=False),
    )
    result = iam.simulate_custom_policy(
        PolicyInputList=[
            json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}],
                }
            )
        ],
        ActionNames=["kms:Encrypt"],
        ContextEntries=[{"ContextKeyValues": ["x"], "ContextKeyType": "string"}],
    )
    assert result["EvaluationResults"][0]["EvalDecision"] == "allowed"
