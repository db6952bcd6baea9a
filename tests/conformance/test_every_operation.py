"""Every operation of the vendored AWS KMS model is dispatched by a real server and answers a
well-formed request with success or with an error the model lists for that operation (or one of
the errors every operation may raise): never a 5xx, never UnknownOperationException.

The requests are derived from the model (required members only, each at a legal value), so a
new operation in a re-vendored model is exercised without anyone writing its test.
"""

from __future__ import annotations

import datetime
import re
from typing import Any

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from openkms.protocol import model

# Errors AWS may answer to any operation (authentication, authorization, throttling, input).
COMMON_ERRORS = frozenset(
    {
        "AccessDeniedException",
        "ValidationException",
        "ThrottlingException",
        "SerializationException",
        "UnrecognizedClientException",
        "IncompleteSignatureException",
        "InvalidSignatureException",
        "MissingAuthenticationTokenException",
    }
)
KEY_MEMBERS = frozenset(
    {"KeyId", "TargetKeyId", "SourceKeyId", "DestinationKeyId", "PrimaryKeyArn"}
)


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower().replace("k_m_s", "kms")


class RequestBuilder:
    """A minimal legal request for an operation: its required members, recursively."""

    def __init__(self, key_id: str) -> None:
        self.key_id = key_id
        self.shapes = model.shapes()

    def request(self, operation: str) -> dict[str, Any]:
        name = model.input_shape_name(operation)
        if name is None:
            return {}
        value = self.value(name, "")
        assert isinstance(value, dict)
        return value

    def value(self, shape_name: str, member: str) -> Any:
        shape = self.shapes[shape_name]
        kind = shape["type"]
        if kind == "structure":
            return {
                name: self.value(spec["shape"], name)
                for name, spec in shape.get("members", {}).items()
                if name in shape.get("required", [])
            }
        if kind == "list":
            return [self.value(shape["member"]["shape"], member)] * max(shape.get("min", 1), 1)
        if kind == "map":
            return {}
        if kind == "string":
            return self.string(shape, member)
        if kind == "blob":
            return b"x" * max(shape.get("min", 1), 1)
        if kind in ("integer", "long"):
            return int(shape.get("min", 1))
        if kind == "boolean":
            return False
        if kind == "timestamp":
            return datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=30)
        raise AssertionError(f"unhandled shape type {kind} ({shape_name})")

    def string(self, shape: dict[str, Any], member: str) -> str:
        if "enum" in shape:
            return str(shape["enum"][0])
        if member in KEY_MEMBERS:
            return self.key_id
        if member == "AliasName":
            return "alias/every-operation"
        if member == "Policy":
            return '{"Version":"2012-10-17","Statement":[]}'
        if member in ("Region", "ReplicaRegion", "PrimaryRegion"):
            return "us-west-2"
        if member == "GranteePrincipal":
            return "arn:aws:iam::111122223333:root"
        if member == "TagKey":
            return "k"
        low = int(shape.get("min", 1))
        return "a" * max(low, 1)


@pytest.fixture(scope="module")
def builder(kms: BaseClient) -> RequestBuilder:
    key_id = kms.create_key(Description="every operation")["KeyMetadata"]["KeyId"]
    return RequestBuilder(key_id)


def test_the_builder_covers_every_operation(builder: RequestBuilder) -> None:
    for operation in model.operation_names():
        builder.request(operation)  # raises on a shape it cannot fill


@pytest.mark.parametrize("operation", model.operation_names())
def test_every_model_operation_answers_a_well_formed_request(
    kms: BaseClient, builder: RequestBuilder, operation: str
) -> None:
    request = builder.request(operation)
    allowed = set(model.operation_errors(operation)) | COMMON_ERRORS
    try:
        getattr(kms, snake(operation))(**request)
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
        status = exc.response["ResponseMetadata"]["HTTPStatusCode"]
        assert code != "UnknownOperationException", operation
        assert status < 500, (operation, exc.response)
        assert code in allowed, f"{operation} answered {code}, not in its model: {sorted(allowed)}"
