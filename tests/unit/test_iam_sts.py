"""STS: GetCallerIdentity, AssumeRole, sessions and how they authenticate."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError

from openkms.errors import ExpiredTokenException, UnrecognizedClientException
from openkms.iam.sessions import SESSION_KIND, SESSION_SCOPE, load_session, purge_expired
from openkms.service.context import Principal
from tests.unit.test_iam_support import (
    ACCOUNT,
    OTHER_ACCOUNT,
    Creds,
    Harness,
    allow,
    arn,
    deny,
    error_code,
    policy,
    trust,
)

ROOT = f"arn:aws:iam::{ACCOUNT}:root"
ROLE = arn("role", "deployer")


@pytest.fixture
def h() -> Harness:
    return Harness()


def sts_error(
    h: Harness, creds: Creds | None, operation: str = "AssumeRole", **params: object
) -> ClientError:
    with pytest.raises(ClientError) as caught:
        h.sts(operation, creds, **params)
    return caught.value


def test_caller_identity_of_root_user_and_session(h: Harness) -> None:
    assert h.sts("GetCallerIdentity") | {"ResponseMetadata": None} == {
        "UserId": ACCOUNT,
        "Account": ACCOUNT,
        "Arn": ROOT,
        "ResponseMetadata": None,
    }
    alice = h.user_with_key("alice", allow("sts:AssumeRole"))
    me = h.sts("GetCallerIdentity", alice)
    assert me["Arn"] == arn("user", "alice")
    assert me["UserId"] == h.iam("GetUser", UserName="alice")["User"]["UserId"]
    role = h.role("deployer", trust(ROOT))
    session = h.assume(alice, ROLE, "build-42")
    me = h.sts("GetCallerIdentity", session)
    assert me["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/build-42"
    assert me["UserId"] == f"{role['RoleId']}:build-42"
    assert me["Account"] == ACCOUNT


def test_assume_role_answer(h: Harness) -> None:
    alice = h.user_with_key("alice", allow("sts:AssumeRole", ROLE))
    role = h.role("deployer", trust(ROOT), MaxSessionDuration=7200)
    answer = h.sts("AssumeRole", alice, RoleArn=ROLE, RoleSessionName="s9", DurationSeconds=7200)
    credentials = answer["Credentials"]
    assert re.fullmatch(r"ASIA[A-Z2-7]{16}", credentials["AccessKeyId"])
    assert len(credentials["SecretAccessKey"]) == 40
    assert len(credentials["SessionToken"]) >= 100
    assert credentials["Expiration"] == datetime.fromtimestamp(h.clock.now() + 7200, UTC)
    assert answer["AssumedRoleUser"] == {
        "AssumedRoleId": f"{role['RoleId']}:s9",
        "Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/s9",
    }
    record = load_session(h.storage, credentials["AccessKeyId"])
    assert record is not None
    assert credentials["SessionToken"] not in record.to_json()
    assert credentials["SecretAccessKey"] not in record.to_json()


def test_session_tokens_are_unique_and_random(h: Harness) -> None:
    alice = h.user_with_key("alice", allow("sts:AssumeRole"))
    h.role("deployer", trust(ROOT))
    tokens = {h.assume(alice, ROLE).token for _ in range(5)}
    assert len(tokens) == 5


def test_root_cannot_assume_roles(h: Harness) -> None:
    h.role("deployer", trust(ROOT))
    error = sts_error(h, None, RoleArn=ROLE, RoleSessionName="s9")
    assert error_code(error) == "AccessDenied"
    assert error.response["Error"]["Message"] == "Roles may not be assumed by root accounts."
    assert h.last_status == 403


def test_trust_and_identity_policies_decide(h: Harness) -> None:
    h.role("deployer", trust(ROOT))
    nobody = h.user_with_key("nobody")
    error = sts_error(h, nobody, RoleArn=ROLE, RoleSessionName="s9")
    assert error_code(error) == "AccessDenied"
    assert error.response["Error"]["Message"] == (
        f"User: {arn('user', 'nobody')} is not authorized to perform: sts:AssumeRole "
        f"on resource: {ROLE}"
    )
    denied = h.user_with_key("denied", allow("sts:AssumeRole"), deny("sts:AssumeRole", ROLE))
    assert error_code(sts_error(h, denied, RoleArn=ROLE, RoleSessionName="s9")) == "AccessDenied"
    h.iam("CreateUser", UserName="someone-else")  # a trust policy names existing principals
    h.role("closed", trust(arn("user", "someone-else")))
    allowed = h.user_with_key("allowed", allow("sts:AssumeRole"))
    closed = arn("role", "closed")
    assert error_code(sts_error(h, allowed, RoleArn=closed, RoleSessionName="s9")) == "AccessDenied"
    h.assume(allowed, ROLE)


def test_trust_naming_the_user_needs_no_identity_policy(h: Harness) -> None:
    bare = h.user_with_key("bare")
    h.role("direct", trust(arn("user", "bare")))
    session = h.assume(bare, arn("role", "direct"))
    assert h.sts("GetCallerIdentity", session)["Arn"].endswith("assumed-role/direct/s1")


def test_a_role_that_does_not_exist_is_access_denied(h: Harness) -> None:
    alice = h.user_with_key("alice", allow("sts:AssumeRole"))
    error = sts_error(h, alice, RoleArn=arn("role", "ghost"), RoleSessionName="s9")
    assert error_code(error) == "AccessDenied"
    error = sts_error(
        h, alice, RoleArn="arn:aws:iam::111122223333:user/alice", RoleSessionName="s9"
    )
    assert error_code(error) == "ValidationError"


def test_durations(h: Harness) -> None:
    alice = h.user_with_key("alice", allow("sts:AssumeRole"))
    h.role("deployer", trust(ROOT))
    error = sts_error(h, alice, RoleArn=ROLE, RoleSessionName="s9", DurationSeconds=7200)
    assert error_code(error) == "ValidationError"
    assert error.response["Error"]["Message"] == (
        "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
    )
    body = f"Action=AssumeRole&RoleArn={ROLE}&RoleSessionName=s9&DurationSeconds=600".encode()
    status, xml, code = h.raw("sts", body, alice)  # botocore itself refuses to send this
    assert (status, code) == (400, "ValidationError")
    assert b"Member must have value greater than or equal to 900" in xml
    h.assume(alice, ROLE, DurationSeconds=900)


def test_role_chaining_is_limited_to_one_hour(h: Harness) -> None:
    alice = h.user_with_key("alice", allow("sts:AssumeRole"))
    h.role("first", trust(ROOT))
    h.role("second", trust(ROOT), MaxSessionDuration=43200)
    h.iam(
        "PutRolePolicy",
        RoleName="first",
        PolicyName="p",
        PolicyDocument=policy(allow("sts:AssumeRole")),
    )
    first = h.assume(alice, arn("role", "first"))
    error = sts_error(
        h, first, RoleArn=arn("role", "second"), RoleSessionName="s2", DurationSeconds=7200
    )
    assert error.response["Error"]["Message"] == (
        "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed "
        "by role chaining."
    )
    second = h.assume(first, arn("role", "second"), "s2")
    assert h.sts("GetCallerIdentity", second)["Arn"].endswith("assumed-role/second/s2")


def test_session_permissions_are_the_roles_narrowed_by_the_session_policy(h: Harness) -> None:
    alice = h.user_with_key("alice", allow("sts:AssumeRole"), allow("iam:*"))
    h.role("deployer", trust(ROOT))
    session = h.assume(alice, ROLE)
    with pytest.raises(ClientError) as caught:
        h.iam("ListUsers", session)
    assert error_code(caught.value) == "AccessDenied"  # alice's own rights do not carry over
    h.iam(
        "PutRolePolicy",
        RoleName="deployer",
        PolicyName="p",
        PolicyDocument=policy(allow("iam:List*")),
    )
    assert h.iam("ListUsers", session)["Users"]
    narrowed = h.assume(alice, ROLE, Policy=policy(allow("iam:ListRoles")))
    assert h.iam("ListRoles", narrowed)["Roles"]
    with pytest.raises(ClientError) as caught:
        h.iam("ListUsers", narrowed)
    assert "because no session policy allows the iam:ListUsers action" in str(caught.value)
    managed = h.iam(
        "CreatePolicy", PolicyName="lg", PolicyDocument=policy(allow("iam:ListGroups"))
    )["Policy"]
    both = h.assume(
        alice, ROLE, Policy=policy(allow("iam:ListRoles")), PolicyArns=[{"arn": managed["Arn"]}]
    )
    h.iam("ListRoles", both)
    h.iam("ListGroups", both)
    with pytest.raises(ClientError):
        h.iam("ListUsers", both)


def test_session_policy_errors(h: Harness) -> None:
    alice = h.user_with_key("alice", allow("sts:AssumeRole"))
    h.role("deployer", trust(ROOT))
    error = sts_error(h, alice, RoleArn=ROLE, RoleSessionName="s9", Policy='{"Statement": 1}')
    assert error_code(error) == "MalformedPolicyDocument"
    error = sts_error(
        h,
        alice,
        RoleArn=ROLE,
        RoleSessionName="s9",
        Policy=policy(*[allow(f"kms:Op{i:04d}") for i in range(50)]),
    )
    assert error_code(error) == "ValidationError"
    error = sts_error(
        h,
        alice,
        RoleArn=ROLE,
        RoleSessionName="s9",
        PolicyArns=[{"arn": arn("policy", "missing-policy")}],
    )
    assert error_code(error) == "MalformedPolicyDocument"


def test_a_deleted_role_gives_its_sessions_nothing(h: Harness) -> None:
    alice = h.user_with_key("alice", allow("sts:AssumeRole"))
    h.role("deployer", trust(ROOT))
    h.iam(
        "PutRolePolicy", RoleName="deployer", PolicyName="p", PolicyDocument=policy(allow("iam:*"))
    )
    session = h.assume(alice, ROLE)
    h.iam("ListUsers", session)
    h.iam("DeleteRolePolicy", RoleName="deployer", PolicyName="p")
    h.iam("DeleteRole", RoleName="deployer")
    h.role("deployer", trust(ROOT))
    h.iam(
        "PutRolePolicy", RoleName="deployer", PolicyName="p", PolicyDocument=policy(allow("iam:*"))
    )
    with pytest.raises(ClientError) as caught:
        h.iam("ListUsers", session)  # the new role of the same name is another role
    assert error_code(caught.value) == "AccessDenied"


def test_session_tags_need_tag_session_and_become_principal_tags(h: Harness) -> None:
    alice = h.user_with_key("alice", allow(["sts:AssumeRole", "sts:TagSession"]))
    h.role("deployer", trust(ROOT))
    tags = [{"Key": "project", "Value": "blue"}]
    error = sts_error(h, alice, RoleArn=ROLE, RoleSessionName="s9", Tags=tags)
    assert error_code(error) == "AccessDenied"
    assert "sts:TagSession" in error.response["Error"]["Message"]
    tagging_trust = policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": ROOT},
            "Action": ["sts:AssumeRole", "sts:TagSession"],
        }
    )
    h.iam("UpdateAssumeRolePolicy", RoleName="deployer", PolicyDocument=tagging_trust)
    h.iam(
        "PutRolePolicy",
        RoleName="deployer",
        PolicyName="abac",
        PolicyDocument=policy(
            allow(
                "iam:GetRole", "*", Condition={"StringEquals": {"aws:PrincipalTag/project": "blue"}}
            )
        ),
    )
    blue = h.assume(alice, ROLE, Tags=tags)
    h.iam("GetRole", blue, RoleName="deployer")
    red = h.assume(alice, ROLE, Tags=[{"Key": "project", "Value": "red"}])
    with pytest.raises(ClientError):
        h.iam("GetRole", red, RoleName="deployer")
    assert h.identities.principal_for(blue.access_key_id, blue.token).tags == (("project", "blue"),)


def test_transitive_tags_follow_role_chains(h: Harness) -> None:
    alice = h.user_with_key("alice", allow(["sts:AssumeRole", "sts:TagSession"]))
    tagging_trust = policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": ROOT},
            "Action": ["sts:AssumeRole", "sts:TagSession"],
        }
    )
    h.role("first", tagging_trust)
    h.role("second", tagging_trust)
    h.iam(
        "PutRolePolicy",
        RoleName="first",
        PolicyName="p",
        PolicyDocument=policy(allow(["sts:AssumeRole", "sts:TagSession"])),
    )
    first = h.assume(
        alice,
        arn("role", "first"),
        Tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}],
        TransitiveTagKeys=["a"],
    )
    second = h.assume(first, arn("role", "second"), "s2")
    record = load_session(h.storage, second.access_key_id)
    assert record is not None
    assert record.tags == (("a", "1"),)
    error = sts_error(
        h,
        first,
        RoleArn=arn("role", "second"),
        RoleSessionName="s3",
        Tags=[{"Key": "A", "Value": "x"}],
    )
    assert error_code(error) == "ValidationError"
    error = sts_error(
        h,
        alice,
        RoleArn=arn("role", "first"),
        RoleSessionName="s9",
        Tags=[{"Key": "a", "Value": "1"}],
        TransitiveTagKeys=["zzz"],
    )
    assert error_code(error) == "ValidationError"


def test_external_id_condition(h: Harness) -> None:
    alice = h.user_with_key("alice", allow("sts:AssumeRole"))
    h.role(
        "vendor", trust(ROOT, Condition={"StringEquals": {"sts:ExternalId": "secret-handshake"}})
    )
    vendor = arn("role", "vendor")
    assert error_code(sts_error(h, alice, RoleArn=vendor, RoleSessionName="s9")) == "AccessDenied"
    error = sts_error(h, alice, RoleArn=vendor, RoleSessionName="s9", ExternalId="wrong-one")
    assert error_code(error) == "AccessDenied"
    h.assume(alice, vendor, ExternalId="secret-handshake")


def test_cross_account_assume_role(h: Harness) -> None:
    alice = h.user_with_key("alice", allow("sts:AssumeRole"))
    other_role = f"arn:aws:iam::{OTHER_ACCOUNT}:role/partner"
    h.iam("CreateRole", h.other_root, RoleName="partner", AssumeRolePolicyDocument=trust(ACCOUNT))
    session = h.assume(alice, other_role)
    me = h.sts("GetCallerIdentity", session)
    assert me["Account"] == OTHER_ACCOUNT
    assert me["Arn"] == f"arn:aws:sts::{OTHER_ACCOUNT}:assumed-role/partner/s1"
    # naming the user in another account's trust policy is not enough without an identity policy
    bare = h.user_with_key("bare")
    h.iam(
        "CreateRole",
        h.other_root,
        RoleName="p2",
        AssumeRolePolicyDocument=trust(arn("user", "bare")),
    )
    error = sts_error(
        h, bare, RoleArn=f"arn:aws:iam::{OTHER_ACCOUNT}:role/p2", RoleSessionName="s9"
    )
    assert error_code(error) == "AccessDenied"


# --- how sessions authenticate -----------------------------------------------------------------
@pytest.fixture
def session(h: Harness) -> Creds:
    alice = h.user_with_key("alice", allow("sts:AssumeRole"))
    h.role("deployer", trust(ROOT))
    return h.assume(alice, ROLE, DurationSeconds=900)


def test_a_session_needs_its_token(h: Harness, session: Creds) -> None:
    principal = h.identities.principal_for(session.access_key_id, session.token)
    assert principal == Principal(
        account_id=ACCOUNT,
        arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/s1",
        kind="assumed-role",
        access_key_id=session.access_key_id,
        user_id=principal.user_id,
    )
    assert h.identities.secret_for(session.access_key_id) == session.secret.encode()
    for token in (None, "", session.token[:-1] + ("A" if session.token[-1] != "A" else "B")):
        with pytest.raises(UnrecognizedClientException) as caught:
            h.identities.principal_for(session.access_key_id, token)
        assert caught.value.message == "The security token included in the request is invalid."


def test_long_term_keys_refuse_a_session_token(h: Harness) -> None:
    with pytest.raises(UnrecognizedClientException):
        h.identities.principal_for(h.root_creds.access_key_id, "some-token")


def test_sessions_expire(h: Harness, session: Creds) -> None:
    h.clock.advance(899)
    h.identities.principal_for(session.access_key_id, session.token)
    h.clock.advance(1)
    with pytest.raises(ExpiredTokenException) as caught:
        h.identities.principal_for(session.access_key_id, session.token)
    assert caught.value.message == "The security token included in the request is expired"
    assert h.identities.secret_for(session.access_key_id) is not None  # signature checked first


def test_expired_sessions_are_purged_after_a_grace_period(h: Harness, session: Creds) -> None:
    assert purge_expired(h.storage, h.clock.now()) == 0
    h.clock.advance(900 + 3601)
    assert purge_expired(h.storage, h.clock.now()) == 1
    assert h.storage.get_document(SESSION_KIND, SESSION_SCOPE, session.access_key_id) is None
    assert h.identities.secret_for(session.access_key_id) is None


def test_session_secret_is_bound_to_its_key_id(h: Harness, session: Creds) -> None:
    text = h.storage.get_document(SESSION_KIND, SESSION_SCOPE, session.access_key_id)
    assert text is not None
    h.storage.put_document(SESSION_KIND, SESSION_SCOPE, "ASIAMOVEDMOVEDMOVED0", text, h.clock.now())
    assert h.identities.secret_for("ASIAMOVEDMOVEDMOVED0") is None
