"""parse_policy: the document model, immutability, caching and the variable grammar."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from openkms.policy.document import (
    PolicyDocument,
    PolicyError,
    parse_policy,
    parse_policy_cached,
)
from openkms.policy.matching import MatchKind, PrincipalSpec
from openkms.policy.variables import Text, Variable, parse_template, resolve_text

ALICE = "arn:aws:iam::111122223333:user/alice"


def key_policy(**statement: Any) -> str:
    base: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"AWS": ALICE},
        "Action": "kms:*",
        "Resource": "*",
    }
    base.update(statement)
    return json.dumps({"Version": "2012-10-17", "Statement": [base]})


def test_document_shape() -> None:
    doc = parse_policy(key_policy(Sid="One"), "key")
    assert isinstance(doc, PolicyDocument)
    assert doc.kind == "key"
    assert doc.version == "2012-10-17"
    assert doc.variables_enabled
    (stmt,) = doc.statements
    assert stmt.sid == "One"
    assert stmt.allow and stmt.effect == "Allow"
    assert stmt.effective
    assert stmt.principal == PrincipalSpec(entities=frozenset({ALICE}))


def test_documents_are_immutable() -> None:
    doc = parse_policy(key_policy(), "key")
    with pytest.raises(dataclasses.FrozenInstanceError):
        doc.statements = ()  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        doc.statements[0].allow = False  # type: ignore[misc]
    assert isinstance(doc.statements, tuple)


def test_cached_parse_shares_documents() -> None:
    text = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole"}],
        }
    )
    assert parse_policy_cached(text, "key") is parse_policy_cached(text, "key")
    assert parse_policy_cached(text, "key") is not parse_policy_cached(text, "trust")


def test_policy_error_carries_a_message() -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(key_policy(Effect="Maybe"), "key")
    assert isinstance(info.value, ValueError)
    assert info.value.message == str(info.value)
    assert "Effect" in info.value.message


def test_unsupported_operator_message_names_it() -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(key_policy(Condition={"StringEqualsFoo": {"kms:CallerAccount": "1"}}), "key")
    assert info.value.message == (
        "Policy contains a statement with an unsupported condition operator StringEqualsFoo."
    )


def test_invalid_principal_message() -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(key_policy(Principal={"AWS": "arn:aws:iam::1:user/x"}), "key")
    assert info.value.message == "Policy contains a statement with one or more invalid principals."


def test_unknown_kind_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown policy kind"):
        parse_policy(key_policy(), "bucket")  # type: ignore[arg-type]


def test_principals_are_normalized() -> None:
    doc = parse_policy(
        key_policy(
            Principal={
                "AWS": [
                    "111122223333",
                    "arn:aws:iam::444455556666:root",
                    "arn:aws:iam::111122223333:role/Path/App",
                    "arn:aws:sts::111122223333:assumed-role/App/s1",
                ],
                "Service": "kms.amazonaws.com",
            }
        ),
        "key",
    )
    spec = doc.statements[0].principal
    assert spec is not None
    assert spec.accounts == {"111122223333", "444455556666"}
    assert spec.entities == {"arn:aws:iam::111122223333:role/path/app"}
    assert spec.sessions == {"arn:aws:sts::111122223333:assumed-role/App/s1"}
    assert spec.services == {"kms.amazonaws.com"}
    assert not spec.wildcard


def test_match_kinds_order() -> None:
    assert MatchKind.NONE < MatchKind.ACCOUNT < MatchKind.ENTITY < MatchKind.SESSION


def test_statement_without_resource_is_kept_but_ineffective() -> None:
    doc = parse_policy(
        json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt"}]}),
        "key",
    )
    assert doc.version is None
    assert not doc.variables_enabled
    assert not doc.statements[0].effective


def test_trust_statements_need_no_resource() -> None:
    doc = parse_policy(
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": {
                    "Effect": "Allow",
                    "Principal": {"Service": "ec2.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                },
            }
        ),
        "trust",
    )
    assert doc.statements[0].effective


@pytest.mark.parametrize(
    "element",
    ["Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource"],
)
def test_element_names_are_case_sensitive(element: str) -> None:
    text = key_policy(**{element.lower(): "x"})
    with pytest.raises(PolicyError, match="unknown element"):
        parse_policy(text, "key")


# --- variables -----------------------------------------------------------------------------


def test_template_without_variables() -> None:
    t = parse_template("arn:aws:s3:::b/*", variables=True)
    assert t.pieces == (Text("arn:aws:s3:::b/*", wild=True),)
    assert not t.has_variables


def test_template_with_variable_and_escape() -> None:
    t = parse_template("home/${aws:UserName}/${*}x", variables=True)
    assert t.pieces == (
        Text("home/", wild=True),
        Variable("aws:username", None),
        Text("/", wild=True),
        Text("*", wild=False),
        Text("x", wild=True),
    )
    assert t.has_variables


def test_template_default_with_spaces_and_quotes() -> None:
    t = parse_template("${ aws:username , 'it''s' }", variables=True)
    assert t.pieces == (Variable("aws:username", "it's"),)
    assert resolve_text(t, {}) == "it's"
    assert resolve_text(t, {"aws:username": ("bob",)}) == "bob"


@pytest.mark.parametrize("text", ["${", "${aws:username", "${}", "${a, b}", "${a, 'b'", "x${$"])
def test_malformed_variables_stay_text(text: str) -> None:
    t = parse_template(text, variables=True)
    assert not t.has_variables
    assert resolve_text(t, {}) == text


def test_templates_are_text_when_variables_are_off() -> None:
    t = parse_template("${aws:username}", variables=False)
    assert t.pieces == (Text("${aws:username}", wild=True),)


def test_resolution_needs_exactly_one_value() -> None:
    t = parse_template("${aws:TagKeys}", variables=True)
    assert resolve_text(t, {"aws:tagkeys": ("a",)}) == "a"
    assert resolve_text(t, {"aws:tagkeys": ("a", "b")}) is None
    assert resolve_text(t, {"aws:tagkeys": ()}) is None
    assert resolve_text(t, {}) is None


def test_a_number_beyond_pythons_digit_limit_is_invalid_json() -> None:
    """json.loads raises a plain ValueError (not JSONDecodeError) for an integer of more than
    4,300 digits: a policy error, not an exception that escapes as a 500."""
    text = '{"Version":"2012-10-17","Statement":[{"Sid":' + "9" * 5_000 + "}]}"
    with pytest.raises(PolicyError, match="not valid JSON"):
        parse_policy(text, "key")
