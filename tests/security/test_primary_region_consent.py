"""UpdatePrimaryRegion swaps a multi-Region primary key with one of its replicas. AWS requires
``kms:UpdatePrimaryRegion`` on both keys, each from its own key policy: an IAM user allowed the
action on the primary key only, or a replica whose key policy denies it, cannot promote the
replica (the console's "Change primary Region" form calls the same operation as the user)."""

from __future__ import annotations

from tests.conftest import Server
from tests.security.support import client, code, eventually, new_user, policy

WEST = "us-west-2"


def test_the_replicas_key_policy_must_allow_the_swap(server: Server) -> None:
    kms = client(server, "kms")
    primary = kms.create_key(MultiRegion=True)["KeyMetadata"]
    root = f"arn:aws:iam::{server.account_id}:root"
    iam = client(server, "iam")
    # Allowed on the primary key (by its ARN) only.
    narrow = new_user(iam, None, {"Effect": "Allow",
                                  "Action": ["kms:UpdatePrimaryRegion", "kms:DescribeKey"],
                                  "Resource": primary["Arn"]})
    # Allowed on every key by IAM, denied by the replica's key policy.
    broad = new_user(iam, None, {"Effect": "Allow",
                                 "Action": ["kms:UpdatePrimaryRegion", "kms:DescribeKey"],
                                 "Resource": "*"})
    replica_policy = policy(
        {"Effect": "Allow", "Principal": {"AWS": root}, "Action": "kms:*", "Resource": "*"},
        {"Effect": "Deny", "Principal": {"AWS": broad.arn}, "Action": "kms:UpdatePrimaryRegion",
         "Resource": "*"},
    )
    kms.replicate_key(KeyId=primary["Arn"], ReplicaRegion=WEST, Policy=replica_policy)
    as_narrow = client(server, "kms", narrow.creds)
    as_broad = client(server, "kms", broad.creds)
    swap = {"KeyId": primary["Arn"], "PrimaryRegion": WEST}
    # A new user's policy takes effect within the identity cache's TTL.
    for user in (as_narrow, as_broad):
        eventually("OK", lambda user=user: user.describe_key(KeyId=primary["Arn"]))
    assert code(lambda: as_narrow.update_primary_region(**swap)) == "AccessDeniedException"
    assert code(lambda: as_broad.update_primary_region(**swap)) == "AccessDeniedException"
    described = kms.describe_key(KeyId=primary["Arn"])["KeyMetadata"]
    assert described["MultiRegionConfiguration"]["MultiRegionKeyType"] == "PRIMARY"
    # The refusals were the replica's, not the operation's: root may swap.
    kms.update_primary_region(**swap)
    described = kms.describe_key(KeyId=primary["Arn"])["KeyMetadata"]
    assert described["MultiRegionConfiguration"]["PrimaryKey"]["Region"] == WEST
