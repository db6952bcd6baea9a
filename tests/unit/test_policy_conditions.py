"""Condition operators one by one, outside any policy."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from openkms.policy.conditions import (
    OPERATORS,
    ConditionValueError,
    UnsupportedOperatorError,
    compile_condition,
    condition_matches,
    parse_date,
    parse_operator,
)

AWS_OPERATORS = {
    "StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase",
    "StringLike", "StringNotLike",
    "NumericEquals", "NumericNotEquals", "NumericLessThan", "NumericLessThanEquals",
    "NumericGreaterThan", "NumericGreaterThanEquals",
    "DateEquals", "DateNotEquals", "DateLessThan", "DateLessThanEquals", "DateGreaterThan",
    "DateGreaterThanEquals",
    "Bool", "BinaryEquals", "IpAddress", "NotIpAddress",
    "ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike", "Null",
}  # fmt: skip

SAMPLE_VALUE = {
    "String": "x",
    "Numeric": "1",
    "Date": "2020-01-01T00:00:00Z",
    "Bool": "true",
    "BinaryEquals": "AAAA",
    "IpAddress": "10.0.0.0/8",
    "NotIpAddress": "10.0.0.0/8",
    "Arn": "arn:aws:s3:::b",
    "Null": "true",
}


def sample(op: str) -> str:
    for prefix, value in SAMPLE_VALUE.items():
        if op.startswith(prefix):
            return value
    raise AssertionError(op)


def matches(
    operator: str,
    values: str | list[str],
    context: Mapping[str, str | list[str]],
    *,
    key: str = "a:k",
    variables: bool = True,
) -> bool:
    raw = (values,) if isinstance(values, str) else tuple(values)
    cond = compile_condition(operator, key, raw, variables=variables)
    ctx = {k.lower(): (v,) if isinstance(v, str) else tuple(v) for k, v in context.items()}
    return condition_matches(cond, ctx)


def test_every_aws_operator_is_supported() -> None:
    assert {op.name for op in OPERATORS.values()} == AWS_OPERATORS


@pytest.mark.parametrize("name", sorted(AWS_OPERATORS - {"Null"}))
def test_every_operator_but_null_has_ifexists(name: str) -> None:
    op, qualifier, if_exists = parse_operator(f"{name}IfExists")
    assert (op.name, qualifier, if_exists) == (name, "", True)
    assert matches(f"{name}IfExists", sample(name), {})  # a missing key is true


@pytest.mark.parametrize("name", sorted(AWS_OPERATORS))
@pytest.mark.parametrize("qualifier", ["ForAllValues", "ForAnyValue"])
def test_every_operator_takes_both_qualifiers(name: str, qualifier: str) -> None:
    op, parsed, if_exists = parse_operator(f"{qualifier}:{name}")
    assert (op.name, parsed, if_exists) == (name, qualifier, False)


@pytest.mark.parametrize(
    "name",
    ["StringEqualsFoo", "NullIfExists", "ForAll:StringEquals", "IfExists", "", "StringEquals:"],
)
def test_unsupported_operators(name: str) -> None:
    with pytest.raises(UnsupportedOperatorError):
        parse_operator(name)


def test_operator_names_are_case_insensitive() -> None:
    op, qualifier, if_exists = parse_operator("foranyvalue:stringlikeifexists")
    assert (op.name, qualifier, if_exists) == ("StringLike", "ForAnyValue", True)


@pytest.mark.parametrize(
    ("name", "missing"),
    [
        ("StringNotEquals", True),
        ("StringNotEqualsIgnoreCase", True),
        ("StringNotLike", True),
        ("NumericNotEquals", True),
        ("DateNotEquals", True),
        ("NotIpAddress", True),
        ("ArnNotEquals", True),
        ("ArnNotLike", True),
        ("StringEquals", False),
        ("NumericLessThan", False),
        ("DateGreaterThan", False),
        ("Bool", False),
        ("BinaryEquals", False),
        ("IpAddress", False),
        ("ArnLike", False),
    ],
)
def test_missing_key_negated_true_positive_false(name: str, missing: bool) -> None:
    assert matches(name, sample(name), {}) is missing


@pytest.mark.parametrize("name", sorted(AWS_OPERATORS - {"Null"}))
def test_set_qualifiers_on_missing_keys(name: str) -> None:
    assert matches(f"ForAllValues:{name}", sample(name), {}) is True
    assert matches(f"ForAnyValue:{name}", sample(name), {}) is False
    assert matches(f"ForAnyValue:{name}IfExists", sample(name), {}) is True


@pytest.mark.parametrize(
    ("positive", "negated", "policy_values", "request_values"),
    [
        ("StringEquals", "StringNotEquals", ["1", "x"], ["1", "2", "x", "X"]),
        ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase", ["a"], ["A", "b"]),
        ("StringLike", "StringNotLike", ["x*", "?"], ["xy", "y", "yy"]),
        ("NumericEquals", "NumericNotEquals", ["1", "2.5"], ["1", "2.50", "3"]),
        ("DateEquals", "DateNotEquals", ["2020-01-01"], ["2020-01-01T00:00:00Z", "2021-01-01"]),
        ("IpAddress", "NotIpAddress", ["10.0.0.0/8"], ["10.1.2.3", "11.0.0.1"]),
        ("ArnLike", "ArnNotLike", ["arn:aws:s3:::a*"], ["arn:aws:s3:::ab", "arn:aws:s3:::b"]),
    ],
)
def test_negated_operators_are_the_complement_on_present_keys(
    positive: str, negated: str, policy_values: list[str], request_values: list[str]
) -> None:
    outcomes = set()
    for value in request_values:
        ctx = {"a:k": value}
        hit = matches(positive, policy_values, ctx)
        outcomes.add(hit)
        assert matches(negated, policy_values, ctx) is not hit
    assert outcomes == {True, False}


def test_ip_address_families() -> None:
    assert matches("IpAddress", "203.0.113.0/24", {"a:k": "203.0.113.255"})
    assert not matches("IpAddress", "203.0.113.0/24", {"a:k": "203.0.114.0"})
    assert matches("IpAddress", "2001:db8::/32", {"a:k": "2001:DB8:ffff::1"})
    assert not matches("IpAddress", "::ffff:0:0/96", {"a:k": "203.0.113.1"})
    assert matches("NotIpAddress", "2001:db8::/32", {"a:k": "203.0.113.1"})


def test_numeric_comparisons() -> None:
    assert matches("NumericLessThan", "10", {"a:k": "9.99"})
    assert matches("NumericGreaterThan", "-1", {"a:k": "0"})
    assert matches("NumericEquals", "1e2", {"a:k": "100"})
    assert not matches("NumericEquals", "1", {"a:k": "one"})
    assert matches("NumericNotEquals", "1", {"a:k": "one"})


@pytest.mark.parametrize(
    ("text", "epoch"),
    [
        ("2020-01-01", 1577836800.0),
        ("2020-01-01T00:00:00Z", 1577836800.0),
        ("2020-01-01T00:00:00z", 1577836800.0),
        ("2020-01-01T01:00:00+01:00", 1577836800.0),
        ("2020-01-01T00:00:00", 1577836800.0),
        ("2020-01-01T00:00:00.500Z", 1577836800.5),
        ("1577836800", 1577836800.0),
    ],
)
def test_date_formats(text: str, epoch: float) -> None:
    assert parse_date(text) == epoch


@pytest.mark.parametrize("text", ["", "tomorrow", "2020-13-01", "2020-01-01T25:00:00Z"])
def test_bad_dates(text: str) -> None:
    assert parse_date(text) is None


def test_string_like_wildcards_do_not_cross_into_regex_syntax() -> None:
    assert matches("StringLike", "a.b*", {"a:k": "a.bcd"})
    assert not matches("StringLike", "a.b*", {"a:k": "axbcd"})
    assert matches("StringLike", "(x)[y]+", {"a:k": "(x)[y]+"})
    assert matches("StringLike", "line*", {"a:k": "line1\nline2"})


def test_bool_and_null() -> None:
    assert matches("Bool", "false", {"a:k": "False"})
    assert not matches("Bool", "false", {"a:k": "no"})
    assert matches("Null", "true", {})
    assert matches("Null", ["true", "false"], {"a:k": "x"})
    assert not matches("Null", "false", {"a:k": []})


def test_binary_equals_compares_bytes() -> None:
    assert matches("BinaryEquals", "aGVsbG8=", {"a:k": "aGVsbG8="})
    assert not matches("BinaryEquals", "aGVsbG8=", {"a:k": "d29ybGQ="})


def test_arn_components_are_compared_separately() -> None:
    pattern = "arn:aws:iam::*:role/*"
    assert matches("ArnLike", pattern, {"a:k": "arn:aws:iam::111122223333:role/a/b"})
    assert not matches("ArnLike", pattern, {"a:k": "arn:aws:iam::111122223333:user/a"})
    assert not matches("ArnLike", "arn:aws:iam::1?:root", {"a:k": "arn:aws:iam::1:x:root"})


def test_condition_key_lookup_is_case_insensitive() -> None:
    assert matches("StringEquals", "v", {"A:K": "v"}, key="a:K")


def test_variables_only_where_aws_supports_them() -> None:
    ctx = {"aws:username": "7", "a:k": "7"}
    assert matches("StringEquals", "${aws:username}", ctx)
    assert matches("ArnLike", "${aws:username}", ctx)
    with pytest.raises(ConditionValueError):
        compile_condition("NumericEquals", "a:k", ("${aws:username}",), variables=True)
    with pytest.raises(ConditionValueError):
        compile_condition("IpAddress", "a:k", ("${aws:SourceIp}",), variables=True)


def test_bool_with_a_variable() -> None:
    ctx = {"aws:principaltag/flag": "TRUE", "a:k": "true"}
    assert matches("Bool", "${aws:PrincipalTag/flag}", ctx)
    assert not matches(
        "Bool", "${aws:PrincipalTag/flag}", {"aws:principaltag/flag": "x", "a:k": "true"}
    )


@pytest.mark.parametrize(
    ("operator", "value"),
    [
        ("NumericEquals", "ten"),
        ("NumericEquals", "NaN"),
        ("NumericEquals", "Infinity"),
        ("DateEquals", "now"),
        ("IpAddress", "10.0.0.0/33"),
        ("BinaryEquals", "***"),
        ("Bool", "1"),
        ("Null", "yes"),
    ],
)
def test_values_checked_at_parse_time(operator: str, value: str) -> None:
    with pytest.raises(ConditionValueError):
        compile_condition(operator, "a:k", (value,), variables=True)


def test_empty_value_lists() -> None:
    assert not matches("StringEquals", [], {"a:k": "x"})
    assert matches("StringNotEquals", [], {"a:k": "x"})
    assert matches("ForAllValues:StringEquals", [], {"a:k": []})
