"""``kms:GranteePrincipal`` and ``kms:RetiringPrincipal``, AWS's condition keys for whom a
CreateGrant names. A key policy that denies grants to whole accounts (``arn:aws:iam::*:root``)
must stop an IAM user whose identity policy allows kms:CreateGrant; a key policy that allows
CreateGrant only for one grantee must allow that one. Unknown to the evaluator, both keys were
absent: the Deny never matched (any grantee went through) and the Allow never did."""

from __future__ import annotations

from tests.conftest import Server
from tests.security.support import client, code, eventually, new_user, policy, root_statement


def test_grant_principal_condition_keys(server: Server) -> None:
    kms = client(server, "kms")
    iam = client(server, "iam")
    other_root = "arn:aws:iam::444455556666:root"
    own_root = f"arn:aws:iam::{server.account_id}:root"
    granter = new_user(iam, None, {"Effect": "Allow",
                                   "Action": ["kms:CreateGrant", "kms:DescribeKey"],
                                   "Resource": "*"})
    app = new_user(iam)
    key = kms.create_key(Policy=policy(
        root_statement(server.account_id),
        {"Effect": "Deny", "Principal": {"AWS": granter.arn}, "Action": "kms:CreateGrant",
         "Resource": "*",
         "Condition": {"StringLike": {"kms:GranteePrincipal": "arn:aws:iam::*:root"}}},
        {"Effect": "Deny", "Principal": {"AWS": granter.arn}, "Action": "kms:CreateGrant",
         "Resource": "*",
         "Condition": {"StringLike": {"kms:RetiringPrincipal": "arn:aws:iam::*:root"}}},
    ))["KeyMetadata"]["Arn"]
    # Allowed by the key policy only for the one grantee (no IAM policy involved).
    only_app = kms.create_key(Policy=policy(
        root_statement(server.account_id),
        {"Effect": "Allow", "Principal": {"AWS": app.arn}, "Action": "kms:CreateGrant",
         "Resource": "*",
         "Condition": {"StringEquals": {"kms:GranteePrincipal": app.arn}}},
    ))["KeyMetadata"]["Arn"]
    as_granter = client(server, "kms", granter.creds)
    as_app = client(server, "kms", app.creds)
    eventually("OK", lambda: as_granter.describe_key(KeyId=key))

    def grant(kms_client: object, key_id: str, grantee: str, **extra: str) -> str:
        return code(lambda: kms_client.create_grant(  # type: ignore[attr-defined]
            KeyId=key_id, GranteePrincipal=grantee, Operations=["Decrypt"], **extra))

    assert grant(as_granter, key, other_root) == "AccessDeniedException"
    assert grant(as_granter, key, own_root) == "AccessDeniedException"
    assert grant(as_granter, key, app.arn, RetiringPrincipal=own_root) == "AccessDeniedException"
    assert grant(as_granter, key, app.arn) == "OK"
    assert grant(as_granter, key, app.arn, RetiringPrincipal=granter.arn) == "OK"
    assert grant(as_app, only_app, app.arn) == "OK"
    assert grant(as_app, only_app, granter.arn) == "AccessDeniedException"
    grantees = {g["GranteePrincipal"] for g in kms.list_grants(KeyId=key)["Grants"]}
    assert grantees == {app.arn}
