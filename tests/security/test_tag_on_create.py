"""Tags decide who may use a key wherever policies test ``aws:ResourceTag``, so AWS requires
``kms:TagResource`` (IAM policy) to use the ``Tags`` parameter of CreateKey and ReplicateKey.
An IAM user allowed to create keys but not to tag them, or denied a tag value by an
``aws:RequestTag`` condition, cannot attach those tags by creating a key or a replica."""

from __future__ import annotations

from tests.conftest import Server
from tests.security.support import client, code, eventually, new_user

WEST = "us-west-2"
FINANCE = [{"TagKey": "team", "TagValue": "finance"}]


def test_tags_on_create_need_tag_resource(server: Server) -> None:
    kms = client(server, "kms")
    iam = client(server, "iam")
    primary = kms.create_key(MultiRegion=True)["KeyMetadata"]["Arn"]
    creator = new_user(iam, None, {
        "Effect": "Allow", "Action": ["kms:CreateKey", "kms:ReplicateKey", "kms:DescribeKey"],
        "Resource": "*"})
    tagger = new_user(iam, None, {
        "Effect": "Allow", "Action": ["kms:CreateKey", "kms:TagResource"], "Resource": "*"}, {
        "Effect": "Deny", "Action": "kms:TagResource", "Resource": "*",
        "Condition": {"StringEquals": {"aws:RequestTag/team": "finance"}}})
    as_creator = client(server, "kms", creator.creds)
    as_tagger = client(server, "kms", tagger.creds)
    eventually("OK", lambda: as_creator.describe_key(KeyId=primary))
    assert code(lambda: as_creator.create_key(Tags=FINANCE)) == "AccessDeniedException"
    assert code(lambda: as_creator.replicate_key(KeyId=primary, ReplicaRegion=WEST,
                                                  Tags=FINANCE)) == "AccessDeniedException"
    replicas = kms.describe_key(KeyId=primary)["KeyMetadata"]["MultiRegionConfiguration"]
    assert replicas["ReplicaKeys"] == []
    assert code(lambda: as_tagger.create_key(Tags=FINANCE)) == "AccessDeniedException"
    # The refusals were the tags: without them, or with a tag the condition allows, it works.
    assert code(lambda: as_creator.create_key()) == "OK"
    assert code(lambda: as_tagger.create_key(
        Tags=[{"TagKey": "team", "TagValue": "dev"}])) == "OK"
