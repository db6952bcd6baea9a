"""Alias attacks: managing an alias that an identity policy protects.

AWS rule (KMS Developer Guide, "Controlling access to aliases"; API reference of CreateAlias,
UpdateAlias and DeleteAlias): each needs the permission on the alias itself
(``arn:aws:kms:REGION:ACCOUNT:alias/NAME``, in an IAM policy) as well as on the KMS key in the
key policy -- for UpdateAlias on both the current and the new key. So an explicit Deny on
``alias/prod-*`` holds whatever the key policies allow, and a permission on the key alone is
not enough.
"""

from __future__ import annotations

import pytest
from botocore.client import BaseClient

from tests.conftest import Server
from tests.security.support import client, code, eventually, new_user, unique

DENIED = "AccessDeniedException"
ALIAS_ACTIONS = ["kms:CreateAlias", "kms:UpdateAlias", "kms:DeleteAlias"]


@pytest.fixture(scope="module")
def iam(server: Server) -> BaseClient:
    return client(server, "iam")


def test_explicit_deny_on_prod_aliases_holds(
    server: Server, kms: BaseClient, iam: BaseClient
) -> None:
    """The attack: a user allowed kms:* on every key, but denied alias management on
    ``alias/prod-*``, creates, repoints and deletes prod aliases through the key permission.
    AWS: the alias ARN is authorized too, so the Deny holds."""
    prod_pattern = f"arn:aws:kms:*:{server.account_id}:alias/prod-*"
    user = new_user(
        iam,
        unique("ops"),
        {"Effect": "Allow", "Action": "kms:*", "Resource": "*"},
        {"Effect": "Deny", "Action": ALIAS_ACTIONS, "Resource": prod_pattern},
    )
    ops = client(server, "kms", user.creds)
    key_a = kms.create_key()["KeyMetadata"]["KeyId"]
    key_b = kms.create_key()["KeyMetadata"]["KeyId"]
    dev = f"alias/dev-{unique('a')}"
    eventually("OK", lambda: ops.create_alias(AliasName=dev, TargetKeyId=key_a))
    mine = f"alias/prod-{unique('mine')}"
    assert code(lambda: ops.create_alias(AliasName=mine, TargetKeyId=key_a)) == DENIED
    existing = f"alias/prod-{unique('live')}"
    kms.create_alias(AliasName=existing, TargetKeyId=key_a)
    assert code(lambda: ops.update_alias(AliasName=existing, TargetKeyId=key_b)) == DENIED
    assert code(lambda: ops.delete_alias(AliasName=existing)) == DENIED
    target = kms.describe_key(KeyId=existing)["KeyMetadata"]["KeyId"]
    assert target == key_a
    # The unprotected alias is still the user's to manage.
    ops.update_alias(AliasName=dev, TargetKeyId=key_b)
    ops.delete_alias(AliasName=dev)


def test_permission_on_the_key_alone_does_not_allow_alias_management(
    server: Server, kms: BaseClient, iam: BaseClient
) -> None:
    """The attack: a user whose identity policy allows kms:CreateAlias only on one key ARN
    (and no alias resource) names that key with any alias it likes. AWS: CreateAlias needs the
    permission on the alias resource in an IAM policy as well."""
    key = kms.create_key()["KeyMetadata"]
    user = new_user(
        iam, unique("keyonly"), {"Effect": "Allow", "Action": ALIAS_ACTIONS, "Resource": key["Arn"]}
    )
    ops = client(server, "kms", user.creds)
    name = f"alias/{unique('hijack')}"
    eventually(DENIED, lambda: ops.create_alias(AliasName=name, TargetKeyId=key["KeyId"]))
    iam.put_user_policy(
        UserName=user.name,
        PolicyName="alias",
        PolicyDocument=(
            '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:CreateAlias",'
            f'"Resource":"{server.alias_arn(name)}"}}]}}'
        ),
    )
    eventually("OK", lambda: ops.create_alias(AliasName=name, TargetKeyId=key["KeyId"]))


def test_update_alias_needs_the_permission_on_the_current_key(
    server: Server, kms: BaseClient, iam: BaseClient
) -> None:
    """The attack: a user allowed UpdateAlias on its own key and on the alias repoints an alias
    that guards someone else's key to its key. AWS: UpdateAlias needs the permission on the
    current key too."""
    theirs = kms.create_key()["KeyMetadata"]
    mine = kms.create_key()["KeyMetadata"]
    name = f"alias/{unique('guarded')}"
    kms.create_alias(AliasName=name, TargetKeyId=theirs["KeyId"])
    user = new_user(
        iam,
        unique("mover"),
        {"Effect": "Allow", "Action": "kms:UpdateAlias", "Resource": mine["Arn"]},
        {"Effect": "Allow", "Action": "kms:UpdateAlias", "Resource": server.alias_arn(name)},
    )
    ops = client(server, "kms", user.creds)
    eventually(DENIED, lambda: ops.update_alias(AliasName=name, TargetKeyId=mine["KeyId"]))
    assert kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == theirs["KeyId"]
