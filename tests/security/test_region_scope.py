"""Attacks with made-up Regions in the SigV4 credential scope.

AWS rule: a request is accepted only when its credential scope names a Region of the endpoint's
partition; otherwise ``InvalidSignatureException`` "Credential should be scoped to a valid
region, not '<region>'." (``SignatureDoesNotMatch`` on IAM and STS). Request quotas are per
account and Region, so a made-up Region must never get a bucket of its own.
"""

from __future__ import annotations

import math
import time
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.conftest import Server, ServerFactory, make_client
from tests.security import write_config


def _sts(server: Server, region: str) -> Any:
    return boto3.session.Session().client(
        "sts",
        endpoint_url=server.endpoint,
        region_name=region,
        aws_access_key_id=server.access_key_id,
        aws_secret_access_key=server.secret_access_key,
        config=Config(retries={"max_attempts": 1}),
    )


def test_made_up_region_in_the_credential_scope_is_refused(server: Server) -> None:
    """ListKeys signed for 'xx-fake-9': refused, as AWS refuses a Region it does not have."""
    client = make_client(server, region="xx-fake-9")
    with pytest.raises(ClientError) as caught:
        client.list_keys()
    error = caught.value.response["Error"]
    assert error["Code"] == "InvalidSignatureException"
    assert error["Message"] == "Credential should be scoped to a valid region, not 'xx-fake-9'."


def test_made_up_region_on_sts_is_refused(server: Server) -> None:
    with pytest.raises(ClientError) as caught:
        _sts(server, "zz-nowhere-1").get_caller_identity()
    assert caught.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert "valid region, not 'zz-nowhere-1'" in caught.value.response["Error"]["Message"]


def test_real_regions_are_served(server: Server) -> None:
    for region in ("us-east-1", "eu-west-1", "ap-southeast-2", "sa-east-1"):
        make_client(server, region=region).list_keys(Limit=1)


def test_made_up_regions_do_not_multiply_the_request_quota(
    server_factory: ServerFactory, tmp_path: Any
) -> None:
    """With ListKeys limited to 1 request/s, 30 requests in 30 invented Regions used to get 30
    buckets and all succeed. Now none of them is served, and a real Region keeps its quota."""
    config = write_config(
        tmp_path / "quota.toml",
        ["rate_limits_enabled = true", "[rate_limit_overrides]", "ListKeys = 1"],
    )
    managed = server_factory.start(extra_args=["--config", str(config), "--rate-limits"])
    served = 0
    codes: set[str] = set()
    for index in range(30):
        client = make_client(managed.server, region=f"us-fake-{index + 1}")
        try:
            client.list_keys(Limit=1)
            served += 1
        except ClientError as exc:
            codes.add(exc.response["Error"]["Code"])
    assert served == 0
    assert codes == {"InvalidSignatureException"}
    real = make_client(managed.server, region="us-east-1")
    outcomes = []
    started = time.monotonic()
    for _ in range(10):
        try:
            real.list_keys(Limit=1)
            outcomes.append("ok")
        except ClientError as exc:
            outcomes.append(exc.response["Error"]["Code"])
    elapsed = time.monotonic() - started
    # A bucket of 1 that refills at 1/s: at most 1 + the seconds the loop took.
    assert outcomes.count("ok") <= 1 + math.ceil(elapsed), (outcomes, elapsed)
    assert "ThrottlingException" in outcomes, outcomes


def test_configured_region_list_is_the_only_one_served(
    server_factory: ServerFactory, tmp_path: Any
) -> None:
    """``regions = "us-east-1,eu-west-1"``: a real AWS Region outside the list is refused too."""
    config = write_config(tmp_path / "regions.toml", ['regions = "us-east-1,eu-west-1"'])
    managed = server_factory.start(extra_args=["--config", str(config)])
    make_client(managed.server, region="eu-west-1").list_keys(Limit=1)
    with pytest.raises(ClientError) as caught:
        make_client(managed.server, region="us-west-2").list_keys(Limit=1)
    assert caught.value.response["Error"]["Code"] == "InvalidSignatureException"
