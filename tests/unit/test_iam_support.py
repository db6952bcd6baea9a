"""Shared harness for the IAM/STS unit tests (no tests here).

``Harness`` wires MemoryStorage, a memory root of trust and a fixed clock, creates an account,
and calls ``openkms.iam.dispatch.handle_query`` with requests serialized by botocore's own Query
serializer from botocore's own models, parsing the XML with botocore's Query parser: what
passes here is what boto3 and the AWS CLI send and read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlencode

import botocore.session
from botocore.exceptions import ClientError
from botocore.parsers import create_parser
from botocore.serialize import create_serializer

from openkms.clock import FixedClock
from openkms.http.identity import Identities
from openkms.iam.dispatch import handle_query
from openkms.iam.handler import IamDeps
from openkms.rootoftrust.memory import MemoryRoot
from openkms.service.accounts import create_account
from openkms.service.context import RequestContext
from openkms.storage.memory import MemoryStorage

ACCOUNT = "111122223333"
OTHER_ACCOUNT = "444455556666"

_SESSION = botocore.session.get_session()
MODELS = {name: _SESSION.get_service_model(name) for name in ("iam", "sts")}
_SERIALIZER = create_serializer("query")
_PARSER = create_parser("query")


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: str | list[str], resource: str | list[str] = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: str | list[str], resource: str | list[str] = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def trust(*principals: str, **extra: Any) -> str:
    return policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": list(principals)},
            "Action": "sts:AssumeRole",
            **extra,
        }
    )


def decoded(document: str) -> Any:
    return json.loads(unquote(document))


@dataclass(frozen=True)
class Creds:
    access_key_id: str
    secret: str = ""
    token: str | None = None


class Harness:
    def __init__(self) -> None:
        self.storage = MemoryStorage()
        self.root = MemoryRoot()
        self.clock = FixedClock()
        issued = create_account(self.storage, self.root, self.clock, account_id=ACCOUNT)
        self.root_creds = Creds(issued.access_key_id, issued.secret_access_key)
        other = create_account(self.storage, self.root, self.clock, account_id=OTHER_ACCOUNT)
        self.other_root = Creds(other.access_key_id, other.secret_access_key)
        self.deps = IamDeps(
            storage=self.storage, root=self.root, clock=self.clock, partition="aws", access=None
        )
        self.identities = Identities(self.storage, self.root, "aws", 0.0, clock=self.clock)
        self.last_status = 0

    def raw(
        self, service: str, body: bytes, creds: Creds | None = None, query: str = ""
    ) -> tuple[int, bytes, str | None]:
        creds = creds or self.root_creds
        principal = self.identities.principal_for(creds.access_key_id, creds.token)
        ctx = RequestContext(
            principal=principal, region="us-east-1", request_id="req-1", now=self.clock.now()
        )
        return handle_query(self.deps, service, ctx, body, query)

    def call(self, service: str, operation: str, creds: Creds | None = None, **params: Any) -> Any:
        model = MODELS[service].operation_model(operation)
        request = _SERIALIZER.serialize_to_request(params, model)
        status, body, _ = self.raw(service, urlencode(request["body"]).encode(), creds)
        self.last_status = status
        parsed = _PARSER.parse(
            {"body": body, "headers": {}, "status_code": status}, model.output_shape
        )
        if status >= 300:
            raise ClientError(parsed, operation)
        return parsed

    def iam(self, operation: str, creds: Creds | None = None, **params: Any) -> Any:
        return self.call("iam", operation, creds, **params)

    def sts(self, operation: str, creds: Creds | None = None, **params: Any) -> Any:
        return self.call("sts", operation, creds, **params)

    # -- conveniences ---------------------------------------------------------------------------
    def user_with_key(self, name: str, *statements: dict[str, Any]) -> Creds:
        self.iam("CreateUser", UserName=name)
        if statements:
            self.iam(
                "PutUserPolicy", UserName=name, PolicyName="p", PolicyDocument=policy(*statements)
            )
        key = self.iam("CreateAccessKey", UserName=name)["AccessKey"]
        return Creds(key["AccessKeyId"], key["SecretAccessKey"])

    def role(self, name: str, trust_policy: str, **params: Any) -> dict[str, Any]:
        role: dict[str, Any] = self.iam(
            "CreateRole", RoleName=name, AssumeRolePolicyDocument=trust_policy, **params
        )["Role"]
        return role

    def assume(self, creds: Creds, role_arn: str, session: str = "s1", **params: Any) -> Creds:
        result = self.sts("AssumeRole", creds, RoleArn=role_arn, RoleSessionName=session, **params)[
            "Credentials"
        ]
        return Creds(result["AccessKeyId"], result["SecretAccessKey"], result["SessionToken"])


def error_code(exc: ClientError) -> str:
    return str(exc.response["Error"]["Code"])


def arn(kind: str, name: str, account: str = ACCOUNT) -> str:
    return f"arn:aws:iam::{account}:{kind}/{name}"
