"""Grant lifecycle at the service layer (authorization by grants is tested with the evaluator)."""

from __future__ import annotations

import pytest

from openkms import scheduler
from openkms.errors import (
    AccessDeniedException,
    InvalidGrantIdException,
    InvalidGrantTokenException,
    NotFoundException,
    ValidationException,
)
from openkms.iam.store import IamStore, User
from openkms.service import grants, keys
from openkms.service.context import Principal, RequestContext
from tests.unit.service_helpers import ACCOUNT, Harness

GRANTEE = f"arn:aws:iam::{ACCOUNT}:user/alice"
RETIRER = f"arn:aws:iam::{ACCOUNT}:user/bob"
ALICE_ID = "AIDAALICEALICEALICE1"
BOB_ID = "AIDABOBBOBBOBBOBBOB1"


def _key(h: Harness) -> str:
    """A key, and the IAM users alice and bob that the grants name (they must exist)."""
    store = IamStore(h.storage, ACCOUNT)
    for name, user_id, arn in (("alice", ALICE_ID, GRANTEE), ("bob", BOB_ID, RETIRER)):
        if store.get_user(name) is None:
            store.put_user(User(name, user_id, "/", arn, h.clock.now()), h.clock.now())
    key_id: str = h.call(keys.create_key, {})["KeyMetadata"]["KeyId"]
    return key_id


def test_create_list_retire_revoke() -> None:
    h = Harness()
    key_id = _key(h)
    created = h.call(
        grants.create_grant,
        {
            "KeyId": key_id,
            "GranteePrincipal": GRANTEE,
            "RetiringPrincipal": RETIRER,
            "Operations": ["Encrypt", "Decrypt"],
            "Constraints": {"EncryptionContextSubset": {"Dept": "IT"}},
        },
    )
    assert len(created["GrantId"]) == 64 and created["GrantToken"]
    listed = h.call(grants.list_grants, {"KeyId": key_id})["Grants"]
    assert [g["GrantId"] for g in listed] == [created["GrantId"]]
    assert listed[0]["Constraints"] == {"EncryptionContextSubset": {"Dept": "IT"}}
    retirable = h.call(grants.list_retirable_grants, {"RetiringPrincipal": RETIRER})["Grants"]
    assert [g["GrantId"] for g in retirable] == [created["GrantId"]]
    # The retiring principal may retire by token.
    bob = Principal(ACCOUNT, RETIRER, "user", "AKIAB", BOB_ID)
    ctx = RequestContext(bob, "us-east-1", "r", h.clock.now(), "RetireGrant")
    grants.retire_grant(h.rt, ctx, {"GrantToken": created["GrantToken"]})
    assert h.call(grants.list_grants, {"KeyId": key_id})["Grants"] == []
    with pytest.raises(InvalidGrantTokenException):
        grants.retire_grant(h.rt, ctx, {"GrantToken": created["GrantToken"]})
    second = h.call(
        grants.create_grant,
        {"KeyId": key_id, "GranteePrincipal": GRANTEE, "Operations": ["Encrypt"]},
    )
    h.call(grants.revoke_grant, {"KeyId": key_id, "GrantId": second["GrantId"]})
    with pytest.raises(InvalidGrantIdException):
        h.call(grants.revoke_grant, {"KeyId": key_id, "GrantId": second["GrantId"]})


def test_name_makes_retries_idempotent() -> None:
    h = Harness()
    key_id = _key(h)
    req = {"KeyId": key_id, "GranteePrincipal": GRANTEE, "Operations": ["Encrypt"], "Name": "n1"}
    first = h.call(grants.create_grant, req)
    again = h.call(grants.create_grant, req)
    assert first["GrantId"] == again["GrantId"]
    assert len(h.call(grants.list_grants, {"KeyId": key_id})["Grants"]) == 1


def test_operations_must_fit_the_key() -> None:
    h = Harness()
    key_id = _key(h)
    with pytest.raises(ValidationException, match="Sign"):
        h.call(
            grants.create_grant,
            {"KeyId": key_id, "GranteePrincipal": GRANTEE, "Operations": ["Sign"]},
        )


def test_only_named_principals_may_retire() -> None:
    h = Harness()
    key_id = _key(h)
    created = h.call(
        grants.create_grant,
        {"KeyId": key_id, "GranteePrincipal": GRANTEE, "Operations": ["Encrypt"]},
    )
    mallory = Principal(ACCOUNT, f"arn:aws:iam::{ACCOUNT}:user/mallory", "user", "AKIAM", "AIDAM")
    ctx = RequestContext(mallory, "us-east-1", "r", h.clock.now(), "RetireGrant")
    with pytest.raises(AccessDeniedException):
        grants.retire_grant(h.rt, ctx, {"KeyId": key_id, "GrantId": created["GrantId"]})
    # The key's account root may.
    h.call(grants.retire_grant, {"KeyId": key_id, "GrantId": created["GrantId"]})


def test_bad_tokens_and_unknown_grants() -> None:
    h = Harness()
    key_id = _key(h)
    with pytest.raises(InvalidGrantTokenException):
        h.call(grants.retire_grant, {"GrantToken": "!!!not-a-token"})
    with pytest.raises(NotFoundException):
        h.call(grants.retire_grant, {"KeyId": key_id, "GrantId": "0" * 64})


def test_grants_are_deleted_with_their_key() -> None:
    h = Harness()
    key_id = _key(h)
    h.call(
        grants.create_grant,
        {"KeyId": key_id, "GranteePrincipal": GRANTEE, "Operations": ["Encrypt"]},
    )
    out = h.call(keys.schedule_key_deletion, {"KeyId": key_id, "PendingWindowInDays": 7})
    h.clock.set(out["DeletionDate"])
    scheduler.run_once(h.rt, h.clock.now())
    arn = out["KeyId"]
    assert h.storage.list_documents(grants.KIND, arn) == []
