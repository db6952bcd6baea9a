#!/usr/bin/env python3
"""Authorization's share of a request, measured in process (no HTTP, no wrk):

1. evaluations per second of the pure evaluator on a realistic case (the default key policy plus
   a three-statement identity policy with conditions, parsed once);
2. the full in-process path of one signed Encrypt request (SigV4, validation, authorization,
   AES-GCM, audit) for: the account root on the default key policy; an IAM user whose identity
   policy has no conditions (its decisions are cached); an IAM user whose identity policy has
   conditions on the encryption context and the source address (evaluated every time); and the
   same with a key policy that also carries conditions.

Prints one table; compare the rows of one run (the machine is shared and noisy)."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if sys.prefix == sys.base_prefix:  # re-run inside the repository's virtualenv
    venv = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "python"
    if venv.exists():
        os.execv(str(venv), [str(venv), *sys.argv])

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from openkms.clock import SystemClock
from openkms.config import Settings
from openkms.http.app import create_app
from openkms.iam.dispatch import HANDLERS, IamDeps
from openkms.policy.document import parse_policy
from openkms.policy.evaluate import RequestFacts, evaluate_kms
from openkms.service import key_policies, keys
from openkms.service.accounts import create_account
from openkms.service.context import Principal, RequestContext

ACCOUNT = "111122223333"
CONDITIONAL = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "NotFromOutside",
            "Effect": "Deny",
            "Action": "kms:*",
            "Resource": "*",
            "Condition": {"NotIpAddress": {"aws:SourceIp": ["127.0.0.0/8", "10.0.0.0/8"]}},
        },
        {
            "Sid": "TeamKeys",
            "Effect": "Allow",
            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*"],
            "Resource": f"arn:aws:kms:*:{ACCOUNT}:key/*",
            "Condition": {"StringEquals": {"kms:EncryptionContext:team": "${aws:username}"}},
        },
        {
            "Sid": "Describe",
            "Effect": "Allow",
            "Action": "kms:DescribeKey",
            "Resource": "*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
    ],
}
UNCONDITIONAL = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["kms:Encrypt", "kms:Decrypt"], "Resource": "*"}],
}


def evaluations_per_second(seconds: float = 2.0) -> float:
    key_policy = parse_policy(key_policies.default_policy("aws", ACCOUNT), "key")
    identity = parse_policy(json.dumps(CONDITIONAL), "identity")
    facts = RequestFacts(
        principal_arn=f"arn:aws:iam::{ACCOUNT}:user/alice",
        principal_account=ACCOUNT,
        principal_type="User",
        principal_role_arn=None,
        action="kms:Encrypt",
        resource=f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        resource_account=ACCOUNT,
        context={
            "aws:sourceip": ("127.0.0.1",),
            "aws:username": ("alice",),
            "kms:encryptioncontext:team": ("alice",),
            "aws:securetransport": ("false",),
        },
    )
    assert evaluate_kms(key_policy, [identity], [], facts).allowed
    count = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        for _ in range(1000):
            evaluate_kms(key_policy, [identity], [], facts)
        count += 1000
    return count / (time.perf_counter() - started)


def _signed_scope(access_key: str, secret: str, body: bytes) -> dict[str, Any]:
    request = AWSRequest(
        method="POST",
        url="http://127.0.0.1:4566/",
        data=body,
        headers={
            "X-Amz-Target": "TrentService.Encrypt",
            "Content-Type": "application/x-amz-json-1.1",
            "Host": "127.0.0.1:4566",
        },
    )
    SigV4Auth(Credentials(access_key, secret), "kms", "us-east-1").add_auth(request)
    headers = [(k.lower().encode(), str(v).encode()) for k, v in request.headers.items()]
    return {
        "type": "http",
        "method": "POST",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "scheme": "http",
    }


def main() -> None:
    rate = evaluations_per_second()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=tmp, metrics_enabled=False, rate_limits_enabled=False)
        app = create_app(settings.validate())
        rt = app.runtime
        clock = SystemClock()
        issued = create_account(rt.storage, app.wired.root, clock, account_id=ACCOUNT)
        root = Principal(ACCOUNT, issued.principal_arn, "root", issued.access_key_id, ACCOUNT)
        ctx = RequestContext(root, "us-east-1", "bench", clock.now(), "Bench")
        deps = IamDeps(rt.storage, app.wired.root, clock)
        users: dict[str, tuple[str, str]] = {}
        for name, policy in (("plain", UNCONDITIONAL), ("alice", CONDITIONAL)):
            HANDLERS["iam"]["CreateUser"](deps, ctx, {"UserName": name})
            HANDLERS["iam"]["PutUserPolicy"](
                deps,
                ctx,
                {"UserName": name, "PolicyName": "p", "PolicyDocument": json.dumps(policy)},
            )
            key = HANDLERS["iam"]["CreateAccessKey"](deps, ctx, {"UserName": name})
            assert key is not None
            users[name] = (key["AccessKey"]["AccessKeyId"], key["AccessKey"]["SecretAccessKey"])
        default_key = keys.create_key(rt, ctx, {})["KeyMetadata"]["KeyId"]
        conditional_policy = json.loads(key_policies.default_policy("aws", ACCOUNT))
        conditional_policy["Statement"][0]["Condition"] = {
            "StringEquals": {"kms:CallerAccount": ACCOUNT}
        }
        conditional_key = keys.create_key(rt, ctx, {"Policy": json.dumps(conditional_policy)})[
            "KeyMetadata"
        ]["KeyId"]
        cases = [
            (
                "root, default key policy",
                issued.access_key_id,
                issued.secret_access_key,
                default_key,
            ),
            ("IAM user, unconditional identity policy (cached)", *users["plain"], default_key),
            ("IAM user, identity policy with conditions", *users["alice"], default_key),
            ("IAM user, conditions in both policies", *users["alice"], conditional_key),
        ]
        print(f"pure evaluator: {rate:,.0f} evaluations/s ({1e6 / rate:.1f} µs each)")
        print()
        print(f"{'Encrypt, in process':52} {'µs/request':>10}")
        for label, akid, secret, key_id in cases:
            body = json.dumps(
                {"KeyId": key_id, "Plaintext": "aGVsbG8=", "EncryptionContext": {"team": "alice"}}
            ).encode()
            scope = _signed_scope(akid, secret, body)
            status = app._dispatch(scope, body, "warmup")[0]
            assert status == 200, (label, app._dispatch(scope, body, "warmup")[1])
            n = 3000
            started = time.perf_counter()
            for _ in range(n):
                app._dispatch(scope, body, "bench")
            elapsed = time.perf_counter() - started
            print(f"{label:52} {elapsed / n * 1e6:10.1f}")
        if app.audit is not None:
            app.audit.close()


if __name__ == "__main__":
    main()
