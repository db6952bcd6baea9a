"""Re-creation attacks: delete an IAM user or role and create it again under the same name to
inherit what a key policy, a grant or a role trust policy gave the old one.

AWS rule (IAM User Guide, "IAM identifiers -- Unique identifiers"; KMS Developer Guide, key
policies and grants): a named IAM user or role in a key policy, a grant (GranteePrincipal,
RetiringPrincipal) or a role trust policy is stored by its unique id (``AIDA...``/``AROA...``),
so a new principal of the same name -- a new unique id -- gets nothing; once the principal is
gone, GetKeyPolicy, ListGrants and GetRole show the unique id in place of the ARN. A policy or
grant naming a user or role that does not exist is refused (MalformedPolicyDocumentException,
InvalidArnException; IAM's MalformedPolicyDocument for a trust policy).
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import pytest
from botocore.client import BaseClient

from tests.conftest import Server
from tests.security.support import (
    ASSUME_ANY_ROLE,
    assume,
    client,
    code,
    delete_role,
    delete_user,
    eventually,
    new_role,
    new_user,
    policy,
    root_statement,
    unique,
)

DENIED = "AccessDeniedException"


@pytest.fixture(scope="module")
def iam(server: Server) -> BaseClient:
    return client(server, "iam")


def _principals(document: str) -> list[str]:
    """Every AWS principal value of a policy document."""
    found: list[str] = []
    for statement in json.loads(document)["Statement"]:
        value = statement.get("Principal", {}).get("AWS", [])
        found += [value] if isinstance(value, str) else value
    return found


def _use_statement(arn: str) -> dict[str, Any]:
    return {
        "Effect": "Allow",
        "Principal": {"AWS": arn},
        "Action": ["kms:Encrypt", "kms:Decrypt"],
        "Resource": "*",
    }


def test_recreated_user_does_not_inherit_key_policy_access(
    server: Server, kms: BaseClient, iam: BaseClient
) -> None:
    """The attack: a key policy names user ``bob``; bob is deleted and an attacker who may
    create users creates a new ``bob`` and uses the key. AWS: the policy names the old bob's
    unique id; GetKeyPolicy shows that id once he is gone."""
    name = unique("bob")
    old = new_user(iam, name)
    key_policy = policy(root_statement(server.account_id), _use_statement(old.arn))
    key_id = kms.create_key(Policy=key_policy)["KeyMetadata"]["KeyId"]
    eventually("OK", lambda: client(server, "kms", old.creds).encrypt(KeyId=key_id, Plaintext=b"x"))
    shown = kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]
    assert shown == key_policy  # as written while bob exists
    delete_user(iam, name)
    impostor = new_user(iam, name)
    assert impostor.arn == old.arn and impostor.user_id != old.user_id
    new_kms = client(server, "kms", impostor.creds)
    eventually(DENIED, lambda: new_kms.encrypt(KeyId=key_id, Plaintext=b"x"))
    shown = kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]
    assert old.user_id in _principals(shown) and old.arn not in _principals(shown)


def test_recreated_role_does_not_inherit_key_policy_access(
    server: Server, kms: BaseClient, iam: BaseClient
) -> None:
    """The attack: as above with a role: the key policy names role ``deployer``; the role is
    deleted and created again; its new sessions use the key. AWS: the policy names the old
    role's AROA... id."""
    name = unique("deployer")
    old = new_role(iam, server.account_id, name)
    key_policy = policy(root_statement(server.account_id), _use_statement(old.arn))
    key_id = kms.create_key(Policy=key_policy)["KeyMetadata"]["KeyId"]
    assumer = new_user(iam, unique("assumer"), ASSUME_ANY_ROLE)
    first = client(server, "kms", assume(server, assumer.creds, old.arn))
    eventually("OK", lambda: first.encrypt(KeyId=key_id, Plaintext=b"x"))
    delete_role(iam, name)
    impostor = new_role(iam, server.account_id, name)
    assert impostor.role_id != old.role_id
    second = client(server, "kms", assume(server, assumer.creds, impostor.arn))
    eventually(DENIED, lambda: second.encrypt(KeyId=key_id, Plaintext=b"x"))
    shown = kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]
    assert old.role_id in _principals(shown)


def test_recreated_user_does_not_inherit_a_grant(
    server: Server, kms: BaseClient, iam: BaseClient
) -> None:
    """The attack: a grant's grantee and retiring principal is user ``carol``; a new ``carol``
    uses the grant and retires it. AWS: the grant names the old carol's unique id (ListGrants
    shows it once she is gone)."""
    name = unique("carol")
    old = new_user(iam, name)
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    grant = kms.create_grant(
        KeyId=key_id, GranteePrincipal=old.arn, RetiringPrincipal=old.arn, Operations=["Encrypt"]
    )
    eventually("OK", lambda: client(server, "kms", old.creds).encrypt(KeyId=key_id, Plaintext=b"x"))
    delete_user(iam, name)
    impostor = new_user(iam, name)
    new_kms = client(server, "kms", impostor.creds)
    eventually(DENIED, lambda: new_kms.encrypt(KeyId=key_id, Plaintext=b"x"))
    assert (
        code(
            lambda: new_kms.encrypt(KeyId=key_id, Plaintext=b"x", GrantTokens=[grant["GrantToken"]])
        )
        == DENIED
    )
    assert code(lambda: new_kms.retire_grant(KeyId=key_id, GrantId=grant["GrantId"])) == DENIED
    listed = kms.list_grants(KeyId=key_id)["Grants"]
    assert [(g["GranteePrincipal"], g["RetiringPrincipal"]) for g in listed] == [
        (old.user_id, old.user_id)
    ]
    assert kms.list_retirable_grants(RetiringPrincipal=impostor.arn)["Grants"] == []


def test_recreated_user_is_not_trusted_by_a_role(server: Server, iam: BaseClient) -> None:
    """The attack: a role's trust policy names user ``dave``; a new ``dave`` (with an identity
    policy allowing sts:AssumeRole) assumes the role. AWS: the trust policy names the old dave's
    unique id, and GetRole shows it once he is gone."""
    name = unique("dave")
    old = new_user(iam, name, ASSUME_ANY_ROLE)
    trust = policy({"Effect": "Allow", "Principal": {"AWS": old.arn}, "Action": "sts:AssumeRole"})
    role_name = unique("trusting")
    role_arn = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    assume(server, old.creds, role_arn)
    delete_user(iam, name)
    impostor = new_user(iam, name, ASSUME_ANY_ROLE)
    sts = client(server, "sts", impostor.creds)
    eventually("AccessDenied", lambda: sts.assume_role(RoleArn=role_arn, RoleSessionName="s2"))
    document = iam.get_role(RoleName=role_name)["Role"]["AssumeRolePolicyDocument"]
    if isinstance(document, str):
        document = json.loads(urllib.parse.unquote(document))
    assert _principals(json.dumps(document)) == [old.user_id]


def test_policies_and_grants_naming_missing_principals_are_refused(
    server: Server, kms: BaseClient, iam: BaseClient
) -> None:
    """The attack's other half: name a user who does not exist yet, then create it. AWS refuses
    the policy or grant: "The principals in the key policy must exist and be visible to KMS"
    (MalformedPolicyDocumentException), an invalid grantee is InvalidArnException, and IAM
    refuses the trust policy (MalformedPolicyDocument)."""
    ghost = f"arn:aws:iam::{server.account_id}:user/{unique('ghost')}"
    key_policy = policy(root_statement(server.account_id), _use_statement(ghost))
    assert code(lambda: kms.create_key(Policy=key_policy)) == "MalformedPolicyDocumentException"
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    put = lambda bypass: kms.put_key_policy(  # noqa: E731
        KeyId=key_id, PolicyName="default", Policy=key_policy, BypassPolicyLockoutSafetyCheck=bypass
    )
    assert code(lambda: put(False)) == "MalformedPolicyDocumentException"
    assert code(lambda: put(True)) == "MalformedPolicyDocumentException"
    grant = lambda **p: kms.create_grant(KeyId=key_id, Operations=["Encrypt"], **p)  # noqa: E731
    assert code(lambda: grant(GranteePrincipal=ghost)) == "InvalidArnException"
    # Not a principal at all: no grant that nobody could ever use.
    for nobody in ("nobody", "sns.amazonaws.com", f"arn:aws:s3:::{unique('bucket')}"):
        assert code(lambda n=nobody: grant(GranteePrincipal=n)) == "InvalidArnException"
        assert (
            code(lambda n=nobody: grant(GranteePrincipal=f"arn:aws:iam::{server.account_id}:root",
                                        RetiringPrincipal=n))
            == "InvalidArnException"
        )  # fmt: skip
    assert (
        code(lambda: grant(GranteePrincipal=f"arn:aws:iam::{server.account_id}:root",
                           RetiringPrincipal=ghost))
        == "InvalidArnException"
    )  # fmt: skip
    trust = policy({"Effect": "Allow", "Principal": {"AWS": ghost}, "Action": "sts:AssumeRole"})
    assert (
        code(lambda: iam.create_role(RoleName=unique("r"), AssumeRolePolicyDocument=trust))
        == "MalformedPolicyDocument"
    )
    # A shown unique id is not a way to name a principal either.
    by_id = policy(root_statement(server.account_id), _use_statement("AIDAABCDEFGHIJKLMNOPQ"))
    assert code(lambda: kms.create_key(Policy=by_id)) == "MalformedPolicyDocumentException"
