"""Replication to other Regions of the deployment, driven with boto3 in each Region: replicas
readable where they are, encrypted under their own Region's key, kept in step with their
primary, read-only; removal, promotion (StopReplicationToReplica), name clashes, a replica key
that fails, and the cross-account operations that are refused."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from botocore.client import BaseClient

from tests.conftest import Server
from tests.secretsmanager.conftest import sm_client
from tests.security.support import code, unique

WEST = "us-west-2"
EU = "eu-west-1"


@pytest.fixture(scope="module")
def clients(sm_server: Server) -> Callable[[str, str], BaseClient]:
    made: dict[tuple[str, str], BaseClient] = {}

    def get(service: str, region: str) -> BaseClient:
        if (service, region) not in made:
            if service == "secretsmanager":
                made[service, region] = sm_client(dataclasses.replace(sm_server, region=region))
            else:
                made[service, region] = sm_server.client(region=region)
        return made[service, region]

    return get


def in_region(arn: str, region: str) -> str:
    parts = arn.split(":")
    parts[3] = region
    return ":".join(parts)


def statuses(out: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["Region"]: s for s in out["ReplicationStatus"]}


def test_replicate_read_sync_and_protect(
    sm: BaseClient, clients: Callable[[str, str], BaseClient]
) -> None:
    west_key = clients("kms", WEST).create_key()["KeyMetadata"]["Arn"]
    name = unique("repl/db")
    primary = sm.create_secret(Name=name, SecretString="v1", Description="replicated",
                               Tags=[{"Key": "team", "Value": "a"}])  # fmt: skip
    out = sm.replicate_secret_to_regions(
        SecretId=name, AddReplicaRegions=[{"Region": WEST, "KmsKeyId": west_key}, {"Region": EU}]
    )
    assert out["ARN"] == primary["ARN"]
    got = statuses(out)
    assert got[WEST]["Status"] == "InSync" and got[WEST]["KmsKeyId"] == west_key
    assert got[EU]["Status"] == "InSync" and got[EU]["KmsKeyId"] == "alias/aws/secretsmanager"

    west = clients("secretsmanager", WEST)
    replica = west.get_secret_value(SecretId=name)
    assert replica["SecretString"] == "v1"
    assert replica["ARN"] == in_region(primary["ARN"], WEST)
    assert replica["VersionId"] == primary["VersionId"]
    described = west.describe_secret(SecretId=name)
    assert described["PrimaryRegion"] == sm.meta.region_name
    assert described["Description"] == "replicated"
    assert described["Tags"] == [{"Key": "team", "Value": "a"}]
    assert described["KmsKeyId"] == west_key
    on_primary = sm.describe_secret(SecretId=name)
    assert on_primary["PrimaryRegion"] == sm.meta.region_name
    assert set(statuses(on_primary)) == {WEST, EU}

    # A write to the primary reaches the replicas.
    put = sm.put_secret_value(SecretId=name, SecretString="v2")
    for region in (WEST, EU):
        there = clients("secretsmanager", region).get_secret_value(SecretId=name)
        assert there["SecretString"] == "v2" and there["VersionId"] == put["VersionId"]
    previous = west.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")
    assert previous["SecretString"] == "v1"

    # A replica is read-only; a primary with replicas is not deleted.
    replica_only = "InvalidRequestException"
    assert code(lambda: west.put_secret_value(SecretId=name, SecretString="x")) == replica_only
    assert code(lambda: west.update_secret(SecretId=name, Description="x")) == replica_only
    assert code(lambda: west.delete_secret(SecretId=name)) == replica_only
    assert code(lambda: sm.delete_secret(SecretId=name)) == replica_only
    again = [{"Region": WEST}]
    assert code(lambda: sm.replicate_secret_to_regions(SecretId=name, AddReplicaRegions=again)) == (
        "InvalidParameterException"
    )

    # Removing a Region deletes its replica; the primary can then be deleted once none is left.
    removed = sm.remove_regions_from_replication(SecretId=name, RemoveReplicaRegions=[WEST])
    assert set(statuses(removed)) == {EU}
    assert code(lambda: west.describe_secret(SecretId=name)) == "ResourceNotFoundException"

    # Promotion: the EU replica becomes a secret of its own, writable, no longer synced.
    eu = clients("secretsmanager", EU)
    stopped = eu.stop_replication_to_replica(SecretId=name)
    assert stopped["ARN"] == in_region(primary["ARN"], EU)
    assert "PrimaryRegion" not in eu.describe_secret(SecretId=name)
    eu.put_secret_value(SecretId=name, SecretString="eu only")
    assert "ReplicationStatus" not in sm.describe_secret(SecretId=name)
    sm.put_secret_value(SecretId=name, SecretString="v3")
    assert eu.get_secret_value(SecretId=name)["SecretString"] == "eu only"
    sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)


def test_name_clash_and_overwrite(
    sm: BaseClient, clients: Callable[[str, str], BaseClient]
) -> None:
    name = unique("repl/clash")
    sm.create_secret(Name=name, SecretString="primary")
    west = clients("secretsmanager", WEST)
    west.create_secret(Name=name, SecretString="someone else's")
    out = sm.replicate_secret_to_regions(SecretId=name, AddReplicaRegions=[{"Region": WEST}])
    assert statuses(out)[WEST]["Status"] == "Failed"
    assert west.get_secret_value(SecretId=name)["SecretString"] == "someone else's"
    sm.remove_regions_from_replication(SecretId=name, RemoveReplicaRegions=[WEST])
    # RemoveRegionsFromReplication deletes only a replica of this primary.
    assert west.get_secret_value(SecretId=name)["SecretString"] == "someone else's"
    out = sm.replicate_secret_to_regions(
        SecretId=name, AddReplicaRegions=[{"Region": WEST}], ForceOverwriteReplicaSecret=True
    )
    assert statuses(out)[WEST]["Status"] == "InSync"
    assert west.get_secret_value(SecretId=name)["SecretString"] == "primary"


def test_create_with_replicas_and_a_failing_replica_key(
    sm: BaseClient, clients: Callable[[str, str], BaseClient]
) -> None:
    west_kms = clients("kms", WEST)
    west_key = west_kms.create_key()["KeyMetadata"]["Arn"]
    name = unique("repl/create")
    made = sm.create_secret(Name=name, SecretString="one",
                            AddReplicaRegions=[{"Region": WEST, "KmsKeyId": west_key}])  # fmt: skip
    assert statuses(made)[WEST]["Status"] == "InSync"
    west = clients("secretsmanager", WEST)
    assert west.get_secret_value(SecretId=name)["SecretString"] == "one"
    # The replica's key is disabled: the primary's write succeeds, the replica reports Failed.
    west_kms.disable_key(KeyId=west_key)
    sm.put_secret_value(SecretId=name, SecretString="two")
    failed = statuses(sm.describe_secret(SecretId=name))[WEST]
    assert failed["Status"] == "Failed" and failed["StatusMessage"]
    west_kms.enable_key(KeyId=west_key)
    assert west.get_secret_value(SecretId=name)["SecretString"] == "one"
    sm.update_secret(SecretId=name, Description="again")
    assert statuses(sm.describe_secret(SecretId=name))[WEST]["Status"] == "InSync"
    assert west.get_secret_value(SecretId=name)["SecretString"] == "two"


def test_cross_account_replicas_are_refused(sm: BaseClient, sm_server: Server) -> None:
    arn = sm.create_secret(Name=unique("repl/xacct"), SecretString="x")["ARN"]
    other = f"arn:aws:secretsmanager:{sm_server.region}:444455556666:secret:x-AbCdEf"
    assert code(lambda: sm.associate_cross_account_replica(
        SecretId=arn, CrossAccountReplicaARN=other)) == "InvalidRequestException"  # fmt: skip
    assert code(lambda: sm.disassociate_cross_account_replica(
        SecretId=arn, CrossAccountReplicaARN=other)) == "InvalidRequestException"  # fmt: skip
