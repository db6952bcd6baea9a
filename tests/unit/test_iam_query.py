"""The Query protocol: botocore's serializer in, botocore's parser out."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import botocore
import pytest
from botocore.parsers import create_parser
from botocore.serialize import create_serializer

from openkms.errors import (
    ExpiredTokenException,
    IncompleteSignatureException,
    InvalidSignatureException,
    KMSInternalException,
    MissingAuthenticationTokenException,
    UnrecognizedClientException,
)
from openkms.iam import ValidationError
from openkms.iam.dispatch import HANDLERS, render_error
from openkms.iam.query import (
    QueryModel,
    error_xml,
    iso8601,
    load_model,
    parse_form,
    parse_input,
    result_xml,
)
from openkms.storage.base import StorageUnavailable
from tests.unit.test_iam_support import MODELS, Harness, error_code

SERIALIZER = create_serializer("query")
PARSER = create_parser("query")


def form_of(service: str, operation: str, params: dict[str, Any]) -> dict[str, str]:
    request = SERIALIZER.serialize_to_request(params, MODELS[service].operation_model(operation))
    return {k: str(v) for k, v in request["body"].items()}


def parse_xml(service: str, operation: str, body: bytes, status: int = 200) -> Any:
    shape = MODELS[service].operation_model(operation).output_shape
    return PARSER.parse({"body": body, "headers": {}, "status_code": status}, shape)


# --- the vendored models ---------------------------------------------------------------------
def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _strip(v)
            for k, v in value.items()
            if k not in ("documentation", "documentationUrl", "examples")
        }
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


@pytest.mark.parametrize(("service", "version"), [("iam", "2010-05-08"), ("sts", "2011-06-15")])
def test_vendored_model_is_botocores_without_documentation(service: str, version: str) -> None:
    path = Path(botocore.__file__).parent / "data" / service / version / "service-2.json.gz"
    original = _strip(json.loads(gzip.decompress(path.read_bytes())))
    model = load_model(service)
    assert model.operations == original["operations"]
    assert model.shapes == original["shapes"]
    assert model.api_version == version


def test_every_handler_is_an_operation_of_its_model() -> None:
    for service, handlers in HANDLERS.items():
        assert set(handlers) <= set(load_model(service).operations)


# --- in ------------------------------------------------------------------------------------
def test_parse_form_merges_query_string_and_body() -> None:
    form = parse_form(b"Action=GetUser&UserName=b%2Bob&Version=2010-05-08", "Extra=1&UserName=x")
    assert form == {"Action": "GetUser", "UserName": "b+ob", "Version": "2010-05-08", "Extra": "1"}


def test_parse_form_refuses_bytes_that_are_not_utf8() -> None:
    with pytest.raises(ValidationError):
        parse_form(b"Action=\xff\xfe", "")


ROUND_TRIPS: list[tuple[str, str, dict[str, Any]]] = [
    ("iam", "CreateUser", {"UserName": "alice", "Path": "/eng/", "Tags": []}),
    (
        "iam",
        "CreateUser",
        {"UserName": "bob", "Tags": [{"Key": "team", "Value": "a b&c"}, {"Key": "k", "Value": ""}]},
    ),
    ("iam", "ListUsers", {"MaxItems": 10, "Marker": "abc", "PathPrefix": "/"}),
    ("iam", "UpdateAccessKey", {"AccessKeyId": "AKIAAAAAAAAAAAAAAAAA", "Status": "Inactive"}),
    (
        "iam",
        "CreatePolicyVersion",
        {"PolicyArn": "arn:aws:iam::1:policy/p", "PolicyDocument": "{}", "SetAsDefault": True},
    ),
    ("iam", "UntagUser", {"UserName": "u", "TagKeys": ["a", "b", "c"]}),
    (
        "iam",
        "SimulatePrincipalPolicy",
        {
            "PolicySourceArn": "arn:aws:iam::111122223333:user/u",
            "ActionNames": ["iam:GetUser", "iam:ListUsers"],
            "ContextEntries": [
                {
                    "ContextKeyName": "aws:a",
                    "ContextKeyValues": ["1", "2"],
                    "ContextKeyType": "string",
                }
            ],
        },
    ),
    (
        "sts",
        "AssumeRole",
        {
            "RoleArn": "arn:aws:iam::111122223333:role/r",
            "RoleSessionName": "sess",
            "DurationSeconds": 900,
            "Tags": [{"Key": "project", "Value": "x"}],
            "TransitiveTagKeys": ["project"],
            "PolicyArns": [{"arn": "arn:aws:iam::111122223333:policy/p"}],
        },
    ),
    ("sts", "GetCallerIdentity", {}),
]


@pytest.mark.parametrize(("service", "operation", "params"), ROUND_TRIPS)
def test_botocore_requests_parse_to_their_parameters(
    service: str, operation: str, params: dict[str, Any]
) -> None:
    form = form_of(service, operation, params)
    parsed = parse_input(load_model(service), operation, form)
    assert parsed == params


def test_maps_and_flattened_lists_parse() -> None:
    model = QueryModel(
        service="test",
        api_version="1",
        namespace="urn:test",
        operations={"Op": {"input": {"shape": "In"}}},
        shapes={
            "In": {
                "type": "structure",
                "members": {
                    "Attrs": {"shape": "AttrMap"},
                    "Ids": {"shape": "FlatIds"},
                    "When": {"shape": "Stamp"},
                    "Ratio": {"shape": "Double"},
                    "Raw": {"shape": "Blob"},
                },
            },
            "AttrMap": {"type": "map", "key": {"shape": "S"}, "value": {"shape": "S"}},
            "FlatIds": {"type": "list", "member": {"shape": "S"}, "flattened": True},
            "Stamp": {"type": "timestamp"},
            "Double": {"type": "double"},
            "Blob": {"type": "blob"},
            "S": {"type": "string"},
        },
    )
    form = {
        "Attrs.entry.1.key": "a",
        "Attrs.entry.1.value": "1",
        "Attrs.entry.2.key": "b",
        "Attrs.entry.2.value": "2",
        "Ids.1": "x",
        "Ids.2": "y",
        "When": "2024-01-02T03:04:05Z",
        "Ratio": "0.5",
        "Raw": "aGk=",
    }
    assert parse_input(model, "Op", form) == {
        "Attrs": {"a": "1", "b": "2"},
        "Ids": ["x", "y"],
        "When": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp(),
        "Ratio": 0.5,
        "Raw": b"hi",
    }


@pytest.mark.parametrize(
    ("form", "message"),
    [
        (
            {},
            "1 validation error detected: Value null at 'userName' failed to satisfy constraint: "
            "Member must not be null",
        ),
        (
            {"UserName": "x" * 65},
            "Member must have length less than or equal to 64",
        ),
        (
            {"UserName": "no spaces"},
            "Value 'no spaces' at 'userName' failed to satisfy constraint: Member must satisfy "
            "regular expression pattern: [\\w+=,.@-]+",
        ),
        ({"UserName": "ok", "Path": "nopath"}, "at 'path' failed to satisfy constraint"),
        (
            {"UserName": "ok", "Tags.member.1.Key": "k"},
            "Value null at 'tags.1.member.value' failed to satisfy constraint",
        ),
    ],
)
def test_validation_errors_are_worded_as_aws(form: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_input(load_model("iam"), "CreateUser", form)
    assert message in caught.value.message


def test_several_validation_errors_are_counted() -> None:
    form = {"RoleArn": "short", "RoleSessionName": "x", "DurationSeconds": "60"}
    with pytest.raises(ValidationError) as caught:
        parse_input(load_model("sts"), "AssumeRole", form)
    message = caught.value.message
    assert message.startswith("3 validation errors detected: ")
    assert "Member must have value greater than or equal to 900" in message


@pytest.mark.parametrize(
    ("operation", "form", "fragment"),
    [
        ("UpdateAccessKey", {"AccessKeyId": "A" * 20, "Status": "Broken"}, "enum value set"),
        ("ListUsers", {"MaxItems": "lots"}, "Member must be a number"),
        (
            "CreatePolicyVersion",
            {"PolicyArn": "a" * 20, "PolicyDocument": "{}", "SetAsDefault": "yes"},
            "boolean",
        ),
    ],
)
def test_type_and_enum_errors(operation: str, form: dict[str, str], fragment: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_input(load_model("iam"), operation, form)
    assert fragment in caught.value.message


# --- out -----------------------------------------------------------------------------------
def test_results_render_as_botocore_parses_them() -> None:
    created = 1_700_000_000.0
    result = {
        "Users": [
            {
                "Path": "/",
                "UserName": "a&b<c>",
                "UserId": "AIDAAAAAAAAAAAAAAAAAA",
                "Arn": "arn:aws:iam::111122223333:user/a",
                "CreateDate": created,
                "Tags": [{"Key": "k", "Value": 'quote"d'}],
            }
        ],
        "IsTruncated": True,
        "Marker": "m",
    }
    body = result_xml(load_model("iam"), "ListUsers", result, "rid-1")
    assert body.startswith(b'<ListUsersResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">')
    parsed = parse_xml("iam", "ListUsers", body)
    user = parsed["Users"][0]
    assert user["UserName"] == "a&b<c>"
    assert user["CreateDate"] == datetime.fromtimestamp(created, UTC)
    assert user["Tags"] == [{"Key": "k", "Value": 'quote"d'}]
    assert parsed["IsTruncated"] is True
    assert parsed["Marker"] == "m"
    assert parsed["ResponseMetadata"]["RequestId"] == "rid-1"


def test_maps_render_as_entries() -> None:
    body = result_xml(
        load_model("iam"), "GetAccountSummary", {"SummaryMap": {"Users": 3, "Groups": 1}}, "r"
    )
    assert parse_xml("iam", "GetAccountSummary", body)["SummaryMap"] == {"Users": 3, "Groups": 1}


def test_operations_without_output_render_only_metadata() -> None:
    body = result_xml(load_model("iam"), "DeleteUser", None, "r-2")
    assert body == (
        b'<DeleteUserResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">'
        b"<ResponseMetadata><RequestId>r-2</RequestId></ResponseMetadata></DeleteUserResponse>"
    )
    assert parse_xml("iam", "DeleteUser", body)["ResponseMetadata"]["RequestId"] == "r-2"


def test_sts_results_use_the_sts_namespace() -> None:
    body = result_xml(load_model("sts"), "GetCallerIdentity", {"Account": "1"}, "r")
    assert b'xmlns="https://sts.amazonaws.com/doc/2011-06-15/"' in body
    assert b"<GetCallerIdentityResult><Account>1</Account></GetCallerIdentityResult>" in body


def test_errors_render_as_botocore_parses_them() -> None:
    body = error_xml(load_model("iam"), "NoSuchEntity", "The user <x> & co", "rid")
    parsed = parse_xml("iam", "GetUser", body, 404)
    assert parsed["Error"] == {
        "Type": "Sender",
        "Code": "NoSuchEntity",
        "Message": "The user <x> & co",
    }
    assert parsed["ResponseMetadata"]["RequestId"] == "rid"
    receiver = error_xml(load_model("sts"), "InternalFailure", "", "rid", sender_fault=False)
    assert b"<Type>Receiver</Type>" in receiver


def test_iso8601() -> None:
    assert iso8601(0) == "1970-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("exc", "code", "status"),
    [
        (
            UnrecognizedClientException("The security token included in the request is invalid."),
            "InvalidClientTokenId",
            403,
        ),
        (InvalidSignatureException("mismatch"), "SignatureDoesNotMatch", 403),
        (IncompleteSignatureException("bad"), "IncompleteSignature", 400),
        (
            MissingAuthenticationTokenException("Missing Authentication Token"),
            "MissingAuthenticationToken",
            403,
        ),
        (
            ExpiredTokenException("The security token included in the request is expired"),
            "ExpiredToken",
            403,
        ),
    ],
)
def test_authentication_errors_take_iam_and_sts_codes(exc: Any, code: str, status: int) -> None:
    for service in ("iam", "sts"):
        got_status, body, got_code = render_error(service, exc, "rid")
        assert (got_status, got_code) == (status, code)
        parsed = parse_xml(
            service, "GetCallerIdentity" if service == "sts" else "GetUser", body, status
        )
        assert parsed["Error"]["Code"] == code
        assert parsed["Error"]["Message"] == exc.message


def test_server_faults_are_service_failures() -> None:
    status, body, code = render_error("iam", KMSInternalException(""), "rid")
    assert (status, code) == (500, "ServiceFailure")
    assert b"<Type>Receiver</Type>" in body
    assert render_error("sts", KMSInternalException(""), "rid")[2] == "InternalFailure"


# --- dispatch ------------------------------------------------------------------------------
@pytest.fixture
def harness() -> Harness:
    return Harness()


def test_unknown_action_is_invalid_action(harness: Harness) -> None:
    status, body, code = harness.raw("iam", b"Action=MakeCoffee&Version=2010-05-08")
    assert (status, code) == (400, "InvalidAction")
    assert b"Could not find operation MakeCoffee for version 2010-05-08" in body
    status, _, code = harness.raw("sts", b"Action=CreateUser&Version=2011-06-15")
    assert code == "InvalidAction"


def test_known_but_unserved_operation_says_so(harness: Harness) -> None:
    status, body, code = harness.raw("iam", b"Action=CreateLoginProfile&UserName=a&Password=x")
    assert (status, code) == (501, "NotImplemented")
    assert b"CreateLoginProfile is not supported" in body


def test_parameters_may_come_in_the_query_string(harness: Harness) -> None:
    status, body, _ = harness.raw(
        "iam", b"", query=urlencode({"Action": "CreateUser", "UserName": "q"})
    )
    assert status == 200
    assert parse_xml("iam", "CreateUser", body)["User"]["UserName"] == "q"


def test_storage_outage_is_a_service_failure(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise StorageUnavailable("down")

    monkeypatch.setattr(harness.storage, "get_document", broken)
    status, body, code = harness.raw("iam", b"Action=GetUser&UserName=x")
    assert (status, code) == (500, "ServiceFailure")
    assert b"<Type>Receiver</Type>" in body
    monkeypatch.undo()
    monkeypatch.setattr(harness.storage, "put_document", lambda *a, **k: 1 / 0)
    status, body, code = harness.raw("iam", b"Action=CreateGroup&GroupName=g")
    assert (status, code) == (500, "ServiceFailure")


def test_invalid_marker_is_invalid_input(harness: Harness) -> None:
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as caught:
        harness.iam("ListUsers", Marker="!!!not-base64!!!")
    assert error_code(caught.value) == "InvalidInput"
