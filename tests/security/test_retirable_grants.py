"""ListRetirableGrants attacks: reading another account's grants.

AWS rule (API reference, ListRetirableGrants): "Cross-account use: You must specify a principal
in your Amazon Web Services account. [...] The authorized resource in ListRetirableGrants calls
is the retiring principal specified in the request." A retiring principal of another account is
refused with AccessDeniedException (no resource-based policy can allow it); grants on other
accounts' keys that name one of the caller's own principals are listed.
"""

from __future__ import annotations

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from tests.conftest import Server
from tests.security.support import client, new_user, policy, unique


@pytest.fixture(scope="module")
def iam(server: Server) -> BaseClient:
    return client(server, "iam")


def test_partner_cannot_list_the_owners_retirable_grants(
    server: Server, kms: BaseClient, iam: BaseClient, second_account: Server
) -> None:
    """The attack: the partner account asks ListRetirableGrants for a retiring principal of the
    owner's account and reads the owner's grants (key ARNs, grantees, operations, constraints).
    AWS: the retiring principal must be in the caller's account."""
    retirer = new_user(iam, unique("retirer"))
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_grant(
        KeyId=key_id,
        GranteePrincipal=f"arn:aws:iam::{server.account_id}:root",
        RetiringPrincipal=retirer.arn,
        Operations=["Decrypt"],
        Constraints={"EncryptionContextEquals": {"tenant": "acme"}},
    )
    assert kms.list_retirable_grants(RetiringPrincipal=retirer.arn)["Grants"]
    partner = second_account.client()
    for principal in (retirer.arn, f"arn:aws:iam::{server.account_id}:root"):
        with pytest.raises(ClientError) as refused:
            partner.list_retirable_grants(RetiringPrincipal=principal)
        error = refused.value.response["Error"]
        assert error["Code"] == "AccessDeniedException"
        assert "ListRetirableGrants" in error["Message"] and key_id not in error["Message"]


def test_own_principal_lists_grants_on_another_accounts_key(
    server: Server, kms: BaseClient, second_account: Server
) -> None:
    """The legitimate direction still works: the partner's key names one of the owner's
    principals as retiring principal; the owner lists it (AWS: "This can include grants on KMS
    keys owned by other Amazon Web Services accounts")."""
    partner = second_account.client()
    owner_root = f"arn:aws:iam::{server.account_id}:root"
    key_policy = policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{second_account.account_id}:root"},
            "Action": "kms:*",
            "Resource": "*",
        }
    )
    key_id = partner.create_key(Policy=key_policy)["KeyMetadata"]["KeyId"]
    grant_id = partner.create_grant(
        KeyId=key_id,
        GranteePrincipal=owner_root,
        RetiringPrincipal=owner_root,
        Operations=["Encrypt"],
    )["GrantId"]
    listed = kms.list_retirable_grants(RetiringPrincipal=owner_root)["Grants"]
    assert grant_id in [g["GrantId"] for g in listed]


def test_malformed_retiring_principal_is_refused(kms: BaseClient) -> None:
    """A retiring principal that is no principal ARN names no account at all."""
    with pytest.raises(ClientError) as refused:
        kms.list_retirable_grants(RetiringPrincipal="not-an-arn")
    assert refused.value.response["Error"]["Code"] == "InvalidArnException"
