"""Encryption-context attacks: two keys that differ only in case.

AWS rules: an encryption context is case-sensitive for cryptography (``{"Tenant": "x",
"tenant": "y"}`` is a valid context of two pairs), while grant constraints compare keys
case-insensitively (API reference, GrantConstraints) and condition key names are
case-insensitive (``kms:EncryptionContext:tenant`` names both). Which of two colliding pairs a
grant or a condition reads is therefore undefined; an evaluator that takes the last one lets the
caller choose the answer by ordering the pairs.

openkms (README, Authorization): such a context satisfies no grant constraint, and a request
whose authorization reads a ``kms:EncryptionContext:<key>`` condition for a colliding key is
denied; CreateGrant refuses constraints with colliding keys. Contexts without collisions behave
exactly as before, and so do colliding contexts that no grant or condition looks at.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.client import BaseClient

from tests.conftest import Server
from tests.security.support import client, code, eventually, new_user, policy, unique

DENIED = "AccessDeniedException"
# Both orders: an evaluator keeping the first or the last pair is beaten by one of them.
COLLIDING = [
    {"Tenant": "globex", "tenant": "acme"},
    {"tenant": "acme", "Tenant": "globex"},
]


@pytest.fixture(scope="module")
def iam(server: Server) -> BaseClient:
    return client(server, "iam")


@pytest.mark.parametrize("constraint", ["EncryptionContextSubset", "EncryptionContextEquals"])
def test_colliding_context_does_not_satisfy_a_grant_constraint(
    constraint: str, server: Server, kms: BaseClient, iam: BaseClient
) -> None:
    """The attack: a grantee limited to tenant ``acme`` by a grant constraint makes data keys
    (and decrypts) for another tenant by adding ``Tenant`` beside ``tenant``. A colliding
    context satisfies no constraint."""
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    user = new_user(iam, unique("tenant"))
    token = kms.create_grant(
        KeyId=key_id,
        GranteePrincipal=user.arn,
        Operations=["GenerateDataKey", "Encrypt", "Decrypt"],
        Constraints={constraint: {"tenant": "acme"}},
    )["GrantToken"]
    grantee = client(server, "kms", user.creds)

    def generate(context: dict[str, str]) -> Any:
        return grantee.generate_data_key(
            KeyId=key_id, KeySpec="AES_256", EncryptionContext=context, GrantTokens=[token]
        )

    eventually("OK", lambda: generate({"tenant": "acme"}))
    for context in COLLIDING:
        assert code(lambda context=context: generate(context)) == DENIED
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"globex data", EncryptionContext=COLLIDING[0])[
        "CiphertextBlob"
    ]
    assert (
        code(
            lambda: grantee.decrypt(
                CiphertextBlob=blob, EncryptionContext=COLLIDING[0], GrantTokens=[token]
            )
        )
        == DENIED
    )


def test_colliding_context_does_not_satisfy_an_allow_condition(
    server: Server, kms: BaseClient, iam: BaseClient
) -> None:
    """The attack: an identity policy allows kms:Encrypt only for
    ``kms:EncryptionContext:tenant = acme``; the caller encrypts for ``Tenant = globex`` by
    sending both spellings in the order that makes the condition read ``acme``."""
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    user = new_user(
        iam,
        unique("cond"),
        {
            "Effect": "Allow",
            "Action": "kms:Encrypt",
            "Resource": "*",
            "Condition": {"StringEquals": {"kms:EncryptionContext:tenant": "acme"}},
        },
    )
    caller = client(server, "kms", user.creds)
    eventually(
        "OK",
        lambda: caller.encrypt(KeyId=key_id, Plaintext=b"x", EncryptionContext={"tenant": "acme"}),
    )
    for context in COLLIDING:
        assert (
            code(
                lambda context=context: caller.encrypt(
                    KeyId=key_id, Plaintext=b"x", EncryptionContext=context
                )
            )
            == DENIED
        )


def test_colliding_context_cannot_dodge_a_deny_condition(
    server: Server, kms: BaseClient, iam: BaseClient
) -> None:
    """The attack: the key policy denies kms:Decrypt when ``kms:EncryptionContext:tenant`` is
    ``payroll``; the caller hides ``tenant = payroll`` behind a ``Tenant`` pair so the Deny reads
    the other value."""
    account = server.account_id
    key_policy = policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
            "Action": "kms:*",
            "Resource": "*",
        },
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "kms:Decrypt",
            "Resource": "*",
            "Condition": {"StringEquals": {"kms:EncryptionContext:tenant": "payroll"}},
        },
    )
    key_id = kms.create_key(Policy=key_policy)["KeyMetadata"]["KeyId"]
    for context in ({"tenant": "payroll", "Tenant": "x"}, {"Tenant": "x", "tenant": "payroll"}):
        blob = kms.encrypt(KeyId=key_id, Plaintext=b"salaries", EncryptionContext=context)[
            "CiphertextBlob"
        ]
        assert (
            code(lambda blob=blob, context=context: kms.decrypt(
                CiphertextBlob=blob, EncryptionContext=context))
            == DENIED
        )  # fmt: skip


def test_create_grant_refuses_colliding_constraint_keys(kms: BaseClient, server: Server) -> None:
    """A constraint whose keys differ only in case has no single meaning (constraint keys are
    case-insensitive), so CreateGrant refuses it rather than pick one pair."""
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    got = code(
        lambda: kms.create_grant(
            KeyId=key_id,
            GranteePrincipal=f"arn:aws:iam::{server.account_id}:root",
            Operations=["Decrypt"],
            Constraints={"EncryptionContextSubset": {"Tenant": "a", "tenant": "b"}},
        )
    )
    assert got == "ValidationException"


def test_colliding_context_still_works_where_nothing_reads_it(kms: BaseClient) -> None:
    """Not a denial of service: with no grant or condition looking at the context, a colliding
    context encrypts and decrypts (it is a valid, case-sensitive AWS encryption context)."""
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    context = COLLIDING[0]
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"x", EncryptionContext=context)["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext=context)["Plaintext"] == b"x"
