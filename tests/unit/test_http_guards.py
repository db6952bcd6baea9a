"""Transport-level guards: development mode's Host/Origin checks, the caller-string bounds and
the Regions a credential scope may name."""

from __future__ import annotations

from typing import Any

import pytest

from openkms.auth.regions import parse_region_list, partition_regions
from openkms.config import Settings, SettingsError
from openkms.errors import ValidationException
from openkms.http.limits import check_caller_strings
from openkms.http.localonly import cross_site_refusal, is_loopback_name, reset_refusal


def scope(**headers: str) -> dict[str, Any]:
    return {"headers": [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]}


@pytest.mark.parametrize(
    "name", ["localhost", "LOCALHOST.", "127.0.0.1", "127.9.9.9", "[::1]", "::1"]
)
def test_loopback_names(name: str) -> None:
    assert is_loopback_name(name)


@pytest.mark.parametrize(
    "name", ["evil.example", "localhost.evil.example", "10.0.0.1", "0.0.0.0", "[::2]", ""]
)
def test_not_loopback_names(name: str) -> None:
    assert not is_loopback_name(name)


def test_cross_site_refusals() -> None:
    assert cross_site_refusal(scope(host="127.0.0.1:4566")) is None
    assert cross_site_refusal(scope(host="localhost:4566", origin="http://localhost:3000")) is None
    assert cross_site_refusal(scope()) is None  # HTTP/1.0 without Host: not a browser
    assert cross_site_refusal(scope(host="rebound.example:4566")) is not None
    assert cross_site_refusal(scope(host="[::1]:4566", origin="https://evil.example")) is not None
    assert cross_site_refusal(scope(host="127.0.0.1", origin="null")) is not None
    assert cross_site_refusal(scope(host="127.0.0.1", sec_fetch_site="cross-site")) is not None


def test_reset_needs_a_non_simple_request() -> None:
    assert reset_refusal(scope(content_type="text/plain")) is not None
    assert reset_refusal(scope(content_type="application/x-www-form-urlencoded")) is not None
    assert reset_refusal(scope()) is not None
    assert reset_refusal(scope(content_type="application/json; charset=utf-8")) is None
    assert reset_refusal(scope(x_openkms_reset="1")) is None


def test_encryption_context_bound() -> None:
    check_caller_strings({"EncryptionContext": {"k": "v" * 99}}, 100)
    with pytest.raises(ValidationException, match="encryptionContext"):
        check_caller_strings({"EncryptionContext": {"k": "v" * 100}}, 100)
    with pytest.raises(ValidationException, match="destinationEncryptionContext"):
        check_caller_strings({"DestinationEncryptionContext": {"kk": "v" * 99}}, 100)


def test_grant_constraint_bounds() -> None:
    ok = {"EncryptionContextSubset": {f"k{i}": "v" * 384 for i in range(8)}}
    check_caller_strings({"Constraints": ok}, 8192)
    with pytest.raises(ValidationException, match="2 validation errors"):
        check_caller_strings(
            {"Constraints": {"EncryptionContextEquals": {f"k{i}": "v" * 385 for i in range(9)}}},
            8192,
        )


def test_partition_regions_come_from_botocore() -> None:
    aws = partition_regions("aws")
    assert {"us-east-1", "eu-west-1", "ap-southeast-2"} <= aws
    assert "aws-global" not in aws and "cn-north-1" not in aws
    assert "cn-north-1" in partition_regions("aws-cn")
    assert "us-east-1" in partition_regions("no-such-partition")  # all of them


def test_region_setting() -> None:
    assert parse_region_list(" us-east-1, eu-west-1 ") == {"us-east-1", "eu-west-1"}
    assert Settings(regions="us-east-1").validate().region_set() == {"us-east-1"}
    with pytest.raises(SettingsError, match="regions"):
        Settings(regions="us-east-1,nowhere").validate()
    with pytest.raises(SettingsError, match="regions"):
        Settings(regions=" , ").validate()
