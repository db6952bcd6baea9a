"""A model-driven fuzzer for a real openkms server.

Requests are derived from the vendored botocore models (``openkms/protocol/data`` for KMS's
JSON protocol, ``openkms/secretsmanager/data`` for Secrets Manager's, ``openkms/iam/data`` for
IAM's and STS's Query protocol). Each request takes one
strategy:

* ``valid``: every required member, optional ones at random, values within the model's
  constraints (enums, lengths, ranges), key ids and ciphertexts from keys made at start-up;
* ``boundary``: values at and one past the model's min/max lengths and ranges, empty and
  extreme numbers, control characters and non-BMP text;
* ``wrong-type``: a member of the wrong JSON type (or a malformed Query value);
* ``oversized``: a string or list far beyond its constraint (up to about 600 KB of body);
* ``structure``: required members dropped, unknown members added, nulls;
* ``random``: random bytes or random JSON as the body, random targets and actions;
* ``auth``: a correct request with a broken signature (unknown key, wrong secret, unsigned
  target, made-up Region, UNSIGNED-PAYLOAD, no signature at all).

Everything but ``auth`` is signed with valid credentials, as botocore signs. The properties
checked while it runs, against the server's own process:

1. no 5xx answer other than one the model lists as a server fault for that operation (KMS:
   ``KMSInternalException``, ``DependencyTimeoutException``, ``KeyUnavailableException``; IAM:
   ``ServiceFailure``) -- and every 5xx is reported (``findings``) even when modelled;
2. no traceback in the server's logs;
3. ``GET /healthz`` answers within the latency bound (100 ms) throughout: a prober thread asks
   every 50 ms on a connection of its own.

Operations that would make the server connect elsewhere (external key store proxies) are only
sent with invalid input. Seeded: the same seed gives the same requests.

    python -m tests.security.fuzzer --requests 100000 --seed 1 [--endpoint URL ...]

Without ``--endpoint`` it starts a server of its own (in a temporary data directory).
"""

from __future__ import annotations

import argparse
import base64
import collections
import http.client
import json
import random
import string
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

JSON_TYPE = "application/x-amz-json-1.1"
FORM_TYPE = "application/x-www-form-urlencoded; charset=utf-8"
HEALTH_BOUND_SECONDS = 0.1
STRATEGIES = (
    ("valid", 40),
    ("boundary", 15),
    ("wrong-type", 10),
    ("oversized", 5),
    ("structure", 10),
    ("random", 8),
    ("auth", 12),
)
# Never valid: they would make the server reach out to a proxy or an HSM cluster.
NETWORK_OPERATIONS = frozenset(
    {"CreateCustomKeyStore", "ConnectCustomKeyStore", "UpdateCustomKeyStore"}
)
KMS_SERVER_FAULTS = frozenset(
    {"KMSInternalException", "DependencyTimeoutException", "KeyUnavailableException"}
)
IAM_SERVER_FAULTS = frozenset({"ServiceFailure", "InternalFailure"})
SECRETS_SERVER_FAULTS = frozenset({"InternalServiceError"})
# The services of the JSON 1.1 protocol, and the X-Amz-Target prefix of each.
JSON_SERVICES = {"kms": "TrentService", "secretsmanager": "secretsmanager"}


def _json_headers(service: str, operation: str) -> dict[str, str]:
    return {"Content-Type": JSON_TYPE, "X-Amz-Target": f"{JSON_SERVICES[service]}.{operation}"}


def _json_default(value: object) -> object:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(type(value).__name__)


BREAKS = (
    "none",
    "unknown-key",
    "wrong-secret",
    "region",
    "unsigned-target",
    "unsigned-payload",
    "garbled",
    "expired-format",
    "session-token",
)
WEIRD_TEXT = ["", " ", "\x00", "\u202e", "\U0001f512", "../../etc/passwd", "%00", "'\"<>&", "a" * 3]


def _model(package: str, name: str) -> dict[str, Any]:
    text = resources.files(package).joinpath("data", name).read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


# --- values ------------------------------------------------------------------------------------
@dataclass
class Pools:
    """Real resources the valid requests point at (filled at start-up)."""

    key_ids: list[str] = field(default_factory=list)
    key_arns: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)
    ciphertexts: list[bytes] = field(default_factory=list)
    grant_ids: list[str] = field(default_factory=list)
    grant_tokens: list[str] = field(default_factory=list)
    user_names: list[str] = field(default_factory=list)
    role_arns: list[str] = field(default_factory=list)
    account_id: str = "000000000000"


class Values:
    """Values for a model's shapes under a strategy."""

    def __init__(self, shapes: dict[str, Any], rng: random.Random, pools: Pools) -> None:
        self.shapes = shapes
        self.rng = rng
        self.pools = pools

    def structure(self, shape_name: str, strategy: str, depth: int = 0) -> dict[str, Any]:
        shape = self.shapes[shape_name]
        rng = self.rng
        out: dict[str, Any] = {}
        required = set(shape.get("required", ()))
        members = shape.get("members", {})
        # One member takes the strategy's blow; the others stay plausible.
        target = rng.choice(list(members)) if members else None
        for name, spec in members.items():
            if name not in required and rng.random() < (0.6 if depth == 0 else 0.3):
                continue
            if strategy == "structure" and name in required and rng.random() < 0.3:
                continue
            member_strategy = strategy if name == target else "valid"
            out[name] = self.value(spec["shape"], member_strategy, name, depth + 1)
        if strategy == "structure":
            roll = rng.random()
            if roll < 0.3:
                out[rng.choice(["Bogus", "__proto__", "KeyId ", "keyid"])] = "x"
            elif roll < 0.5 and out:
                out[rng.choice(list(out))] = None
        return out

    def value(self, shape_name: str, strategy: str, member: str = "", depth: int = 0) -> Any:
        shape = self.shapes[shape_name]
        kind = shape["type"]
        rng = self.rng
        if strategy == "wrong-type":
            return rng.choice(self._wrong(kind))
        if kind == "structure":
            if depth > 4:
                return {}
            return self.structure(shape_name, strategy, depth)
        if kind == "list":
            low, high = shape.get("min", 0), shape.get("max", 4)
            if strategy == "oversized":
                count = rng.choice([high + 1, 1000, 5000])
                return [self.value(shape["member"]["shape"], "valid", member, depth + 1)] * count
            if strategy == "boundary":
                count = rng.choice([low, high, high + 1, max(0, low - 1)])
                count = min(count, 300)
            else:
                count = rng.randint(low, min(high, low + 3))
            return [
                self.value(shape["member"]["shape"], "valid", member, depth + 1)
                for _ in range(count)
            ]
        if kind == "map":
            low, high = shape.get("min", 0), shape.get("max", 4)
            count = rng.randint(low, min(high, 4))
            if strategy == "oversized":
                count = rng.choice([50, 2000])
            result = {}
            for index in range(count):
                key = self.value(shape["key"]["shape"], "valid", "", depth + 1)
                if strategy == "oversized" and rng.random() < 0.5:
                    key = f"k{index}" + "K" * rng.choice([10, 5000])
                result[str(key) + ("" if count < 5 else str(index))] = self.value(
                    shape["value"]["shape"],
                    "oversized" if strategy == "oversized" and rng.random() < 0.3 else "valid",
                    "",
                    depth + 1,
                )
            return result
        if kind == "string":
            return self._string(shape, strategy, member)
        if kind in ("integer", "long"):
            low, high = shape.get("min", 0), shape.get("max", 1000)
            if strategy in ("boundary", "oversized"):
                return rng.choice([low, high, low - 1, high + 1, 0, -1, 2**31, 2**63, -(2**63)])
            return rng.randint(low, min(high, low + 1000))
        if kind == "boolean":
            return rng.random() < 0.5
        if kind == "timestamp":
            if strategy == "boundary":
                return rng.choice([0, -1, 253402300800, 1e20])
            return int(time.time()) + rng.randint(-86400, 86400 * 30)
        if kind == "blob":
            return self._blob(shape, strategy, member)
        return None

    def _wrong(self, kind: str) -> list[Any]:
        options: list[Any] = [None, 1, 1.5, True, "x", [], {}, ["x"], {"a": 1}, -1, 10**30]
        if kind == "string":
            return [o for o in options if not isinstance(o, str)]
        if kind in ("integer", "long"):
            return ["1", "one", 1.5, True, None, [], {}, 1e400 if False else 10**40]
        if kind == "boolean":
            return ["true", 1, 0, None, [], "yes"]
        if kind == "blob":
            return ["not base64!", "====", 5, [], {}, "A" * 3]
        if kind in ("list",):
            return ["x", {}, 1, None]
        if kind in ("map", "structure"):
            return ["x", [], 1, None, [["a", "b"]]]
        return options

    def _string(self, shape: dict[str, Any], strategy: str, member: str) -> str:
        rng = self.rng
        low, high = shape.get("min", 0), shape.get("max", 64)
        if strategy == "oversized":
            return rng.choice(string.ascii_letters) * rng.choice([high + 1, 70_000, 600_000])
        if strategy == "boundary":
            length = rng.choice([low, high, high + 1, max(0, low - 1)])
            length = min(length, 40_000)
            fill = rng.choice(["a", "\U0001f512", "\x07", "/", "*"])
            return (fill * length)[:length] if fill != "\U0001f512" else fill * length
        enum = shape.get("enum")
        if enum and (strategy == "valid" or rng.random() < 0.7):
            return str(rng.choice(enum))
        pooled = self._pooled(member)
        if pooled is not None and (strategy == "valid" or rng.random() < 0.5):
            return pooled
        if strategy == "random" or rng.random() < 0.05:
            return rng.choice(WEIRD_TEXT)
        length = rng.randint(max(low, 1), max(low, min(high, 24)))
        return "".join(
            rng.choice(string.ascii_letters + string.digits + "-_/") for _ in range(length)
        )

    def _pooled(self, member: str) -> str | None:
        pools, rng = self.pools, self.rng
        if member in ("KeyId", "TargetKeyId", "SourceKeyId", "DestinationKeyId", "PrimaryKeyArn"):
            choices = pools.key_ids + pools.key_arns + pools.aliases
            return rng.choice(choices) if choices else None
        if member == "AliasName":
            return rng.choice([*pools.aliases, f"alias/fz-{rng.randrange(10**6)}"])
        if member in ("GranteePrincipal", "RetiringPrincipal", "Principal"):
            return f"arn:aws:iam::{pools.account_id}:root"
        if member == "GrantId" and pools.grant_ids:
            return rng.choice(pools.grant_ids)
        if member == "GrantToken" and pools.grant_tokens:
            return rng.choice(pools.grant_tokens)
        if member in ("UserName",) and pools.user_names:
            return rng.choice([*pools.user_names, f"fz-{rng.randrange(10**6)}"])
        if member == "RoleArn" and pools.role_arns:
            return rng.choice(pools.role_arns)
        if member in ("Policy", "PolicyDocument", "AssumeRolePolicyDocument"):
            return json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            # Mostly Allow: Deny policies lock the pool's keys for the rest.
                            "Effect": "Deny" if rng.random() < 0.1 else "Allow",
                            "Principal": {"AWS": f"arn:aws:iam::{pools.account_id}:root"},
                            "Action": rng.choice(["kms:*", "kms:Encrypt", "sts:AssumeRole"]),
                            "Resource": "*",
                            "Condition": {
                                "StringLike": {
                                    "kms:EncryptionContext:p": rng.choice(["*/*", "a?*"])
                                }
                            },
                        }
                    ],
                }
            )
        if member in ("Region", "ReplicaRegion"):
            return rng.choice(["us-west-2", "eu-west-1", "xx-fake-1"])
        return None

    def _blob(self, shape: dict[str, Any], strategy: str, member: str) -> str:
        rng = self.rng
        low, high = shape.get("min", 0), shape.get("max", 64)
        pooled = member in ("CiphertextBlob", "SourceCiphertextBlob") and self.pools.ciphertexts
        if pooled and (strategy == "valid" or rng.random() < 0.5):
            blob = rng.choice(self.pools.ciphertexts)
            if rng.random() < 0.2:  # one flipped bit
                index = rng.randrange(len(blob))
                blob = blob[:index] + bytes([blob[index] ^ 1]) + blob[index + 1 :]
            return base64.b64encode(blob).decode()
        if strategy == "oversized":
            size = rng.choice([high + 1, 400_000])
        elif strategy == "boundary":
            size = min(rng.choice([low, high, high + 1, max(0, low - 1)]), 300_000)
        else:
            size = rng.randint(max(low, 1), max(low, min(high, 64)))
        return base64.b64encode(rng.randbytes(size)).decode()


# --- the Query protocol ------------------------------------------------------------------------
def query_form(
    shapes: dict[str, Any], shape_name: str, value: Any, prefix: str
) -> list[tuple[str, str]]:
    """``value`` (of shape ``shape_name``) as Query parameters under ``prefix``."""
    if value is None:
        return []
    shape = shapes[shape_name]
    kind = shape["type"]
    if kind == "structure" and isinstance(value, dict):
        out: list[tuple[str, str]] = []
        for name, item in value.items():
            spec = shape.get("members", {}).get(name)
            key = f"{prefix}.{name}" if prefix else name
            if spec is None:
                out.append((key, str(item)))
            else:
                out += query_form(shapes, spec["shape"], item, key)
        return out
    if kind == "list" and isinstance(value, list):
        out = []
        for index, item in enumerate(value, start=1):
            out += query_form(shapes, shape["member"]["shape"], item, f"{prefix}.member.{index}")
        return out or [(prefix, "")]
    if kind == "map" and isinstance(value, dict):
        out = []
        for index, (k, v) in enumerate(value.items(), start=1):
            out.append((f"{prefix}.entry.{index}.key", str(k)))
            out += query_form(shapes, shape["value"]["shape"], v, f"{prefix}.entry.{index}.value")
        return out
    if isinstance(value, bool):
        return [(prefix, "true" if value else "false")]
    if isinstance(value, (dict, list)):
        return [(prefix, json.dumps(value))]
    return [(prefix, str(value))]


def encode_form(pairs: list[tuple[str, str]]) -> bytes:
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs).encode()


# --- requests ----------------------------------------------------------------------------------
@dataclass
class Request:
    service: str
    operation: str
    strategy: str
    body: bytes
    headers: dict[str, str]
    query: str = ""


class Generator:
    def __init__(self, rng: random.Random, pools: Pools, creds: Credentials, host: str) -> None:
        self.rng = rng
        self.creds = creds
        self.host = host
        self.kms = _model("openkms.protocol", "kms-2014-11-01.json")
        self.iam = _model("openkms.iam", "iam-2010-05-08.json")
        self.sts = _model("openkms.iam", "sts-2011-06-15.json")
        self.sm = _model("openkms.secretsmanager", "secretsmanager-2017-10-17.json")
        self.values = {
            "kms": Values(self.kms["shapes"], rng, pools),
            "secretsmanager": Values(self.sm["shapes"], rng, pools),
            "iam": Values(self.iam["shapes"], rng, pools),
            "sts": Values(self.sts["shapes"], rng, pools),
        }
        names, weights = zip(*STRATEGIES, strict=True)
        self._strategies = list(names)
        self._weights = list(weights)

    def next(self) -> Request:
        rng = self.rng
        strategy = rng.choices(self._strategies, self._weights)[0]
        service = rng.choices(["kms", "iam", "sts", "secretsmanager"], [65, 12, 8, 15])[0]
        if service in JSON_SERVICES:
            request = self._json(service, strategy)
        else:
            request = self._query(service, strategy)
        if strategy == "auth":
            self._break_auth(request)
        else:
            self._sign(request)
        return request

    def _json(self, service: str, strategy: str) -> Request:
        """A JSON 1.1 request to KMS or Secrets Manager."""
        rng = self.rng
        operations = (self.kms if service == "kms" else self.sm)["operations"]
        operation = rng.choice(list(operations))
        if strategy == "random":
            roll = rng.random()
            if roll < 0.3:
                body = rng.randbytes(rng.randint(0, 2048))
            elif roll < 0.6:
                body = json.dumps(rng.choice([[], 1, "x", None, {"a": [1, {"b": None}]}])).encode()
            else:
                body = b"{}"
            if rng.random() < 0.4:
                operation = rng.choice(["", "Nope", "encrypt", "Encrypt ", "../" * 10, "A" * 500])
            return Request(service, operation, strategy, body, _json_headers(service, operation))
        if strategy == "valid" and operation in NETWORK_OPERATIONS and service == "kms":
            strategy = "wrong-type"
        input_shape = operations[operation].get("input", {}).get("shape")
        params = self.values[service].structure(input_shape, strategy) if input_shape else {}
        body = json.dumps(params, default=_json_default).encode()
        return Request(service, operation, strategy, body, _json_headers(service, operation))

    def _query(self, service: str, strategy: str) -> Request:
        rng = self.rng
        model = self.iam if service == "iam" else self.sts
        operation = rng.choice(list(model["operations"]))
        version = model["metadata"]["apiVersion"]
        if strategy == "random":
            body = rng.choice(
                [
                    rng.randbytes(rng.randint(0, 512)),
                    f"Action={operation}&Version={version}&".encode() + b"%ZZ&&==&a=%ff%fe",
                    b"Action=" + b"A" * 3000,
                    f"Action={operation}".encode(),
                ]
            )
            return Request(service, operation, strategy, body, {"Content-Type": FORM_TYPE})
        input_shape = model["operations"][operation].get("input", {}).get("shape")
        params = self.values[service].structure(input_shape, strategy) if input_shape else {}
        pairs = [("Action", operation), ("Version", version)]
        if input_shape:
            pairs += query_form(model["shapes"], input_shape, params, "")
        if strategy == "wrong-type" and len(pairs) > 2:
            index = rng.randrange(2, len(pairs))
            pairs[index] = (pairs[index][0] + rng.choice([".member.x", ".entry", ""]), "\x00")
        return Request(
            service, operation, strategy, encode_form(pairs), {"Content-Type": FORM_TYPE}
        )

    def _sign(
        self, request: Request, *, creds: Credentials | None = None, region: str = "us-east-1"
    ) -> None:
        aws = AWSRequest(
            method="POST",
            url=f"http://{self.host}/",
            data=request.body,
            headers=dict(request.headers),
        )
        SigV4Auth(creds or self.creds, request.service, region).add_auth(aws)
        request.headers = dict(aws.prepare().headers.items())

    def _break_auth(self, request: Request) -> None:
        rng = self.rng
        how = rng.choice(BREAKS)
        if how == "none":
            return
        if how == "unknown-key":
            self._sign(request, creds=Credentials("AKIA" + "F" * 16, "x" * 40))
        elif how == "wrong-secret":
            self._sign(request, creds=Credentials(self.creds.access_key, "wrong"))
        elif how == "region":
            self._sign(request, region=rng.choice(["xx-fake-1", "us-east-99", "", "US-EAST-1"]))
        elif how == "unsigned-target":
            self._sign(request)
            request.headers["X-Amz-Target"] = "TrentService.ScheduleKeyDeletion"
        elif how == "unsigned-payload":
            request.headers["X-Amz-Content-Sha256"] = "UNSIGNED-PAYLOAD"
            self._sign(request)
        elif how == "session-token":
            request.headers["X-Amz-Security-Token"] = "t" * rng.choice([10, 5000])
            self._sign(request)
        elif how == "garbled":
            self._sign(request)
            auth = request.headers.get("Authorization", "")
            cut = rng.randrange(len(auth) + 1)
            request.headers["Authorization"] = auth[:cut] + rng.choice(["", "=", ",", "\t", "Ω"])
        else:
            self._sign(request)
            request.headers["X-Amz-Date"] = rng.choice(["19700101T000000Z", "nonsense", "2999"])


# --- driving -----------------------------------------------------------------------------------
@dataclass
class Finding:
    kind: str
    detail: str


@dataclass
class Report:
    requests: int = 0
    seconds: float = 0.0
    by_status: collections.Counter[str] = field(default_factory=collections.Counter)
    by_strategy: collections.Counter[str] = field(default_factory=collections.Counter)
    by_service: collections.Counter[str] = field(default_factory=collections.Counter)
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    modelled_5xx: collections.Counter[str] = field(default_factory=collections.Counter)
    unimplemented: collections.Counter[str] = field(default_factory=collections.Counter)
    closed: collections.Counter[str] = field(default_factory=collections.Counter)
    findings: list[Finding] = field(default_factory=list)
    health_probes: int = 0
    health_worst: float = 0.0
    health_slow: int = 0
    transport_errors: int = 0

    def summary(self) -> str:
        lines = [
            f"requests: {self.requests} in {self.seconds:.1f} s "
            f"({self.requests / max(self.seconds, 1e-9):.0f}/s)",
            f"  by service: {dict(self.by_service)}",
            f"  by strategy: {dict(self.by_strategy)}",
            f"  by status: {dict(sorted(self.by_status.items()))}",
            f"  most frequent errors: {dict(self.errors.most_common(12))}",
            f"  modelled 5xx: {dict(self.modelled_5xx)}",
            f"  IAM/STS operations openkms does not serve (501 NotImplemented, documented): "
            f"{sum(self.unimplemented.values())} requests, {len(self.unimplemented)} operations",
            f"  no HTTP answer: {self.transport_errors} {dict(self.closed)}",
            f"/healthz: {self.health_probes} probes, worst {self.health_worst * 1000:.1f} ms, "
            f"{self.health_slow} over {HEALTH_BOUND_SECONDS * 1000:.0f} ms",
            f"findings: {len(self.findings)}",
        ]
        for finding in self.findings[:40]:
            lines.append(f"  - {finding.kind}: {finding.detail}")
        return "\n".join(lines)


_PROBE_SCRIPT = """
import http.client, json, sys, time
host, port, bound = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
conn = http.client.HTTPConnection(host, port, timeout=5)
probes = 0; worst = 0.0; slow = []
while sys.stdin.readline().strip() != "stop":
    started = time.monotonic()
    try:
        conn.request("GET", "/healthz")
        conn.getresponse().read()
        elapsed = time.monotonic() - started
    except (OSError, http.client.HTTPException):
        conn.close()
        conn = http.client.HTTPConnection(host, port, timeout=5)
        elapsed = 5.0
    probes += 1
    worst = max(worst, elapsed)
    if elapsed > bound:
        slow.append((started, elapsed))
    print("ok", flush=True)
print(json.dumps({"probes": probes, "worst": worst, "slow": slow}), flush=True)
"""


class _Prober(threading.Thread):
    """Asks /healthz every 50 ms on its own keep-alive connection, from a process of its own
    (so that the fuzzer's own work cannot delay the measurement)."""

    def __init__(self, host: str, port: int, report: Report) -> None:
        super().__init__(daemon=True)
        self.report = report
        self.stop = threading.Event()
        self.slow: list[tuple[float, float]] = []  # (time.monotonic() at start, seconds)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _PROBE_SCRIPT, host, str(port), str(HEALTH_BOUND_SECONDS)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(self) -> None:
        proc = self.proc
        assert proc.stdin is not None and proc.stdout is not None
        while not self.stop.wait(0.05):
            proc.stdin.write("probe\n")
            proc.stdin.flush()
            proc.stdout.readline()
        proc.stdin.write("stop\n")
        proc.stdin.flush()
        result = json.loads(proc.stdout.readline())
        proc.wait(timeout=10)
        proc.stdin.close()
        proc.stdout.close()
        self.report.health_probes = result["probes"]
        self.report.health_worst = result["worst"]
        self.report.health_slow = len(result["slow"])
        self.slow = [(float(a), float(b)) for a, b in result["slow"]]


def _error_code(service: str, body: bytes, headers: dict[str, str]) -> str:
    if service in JSON_SERVICES:
        code = headers.get("x-amzn-errortype", "")
        if code:
            return code
        try:
            return str(json.loads(body).get("__type", ""))
        except (ValueError, AttributeError):
            return ""
    start = body.find(b"<Code>")
    end = body.find(b"</Code>")
    return body[start + 6 : end].decode("utf-8", "replace") if 0 <= start < end else ""


def run(
    endpoint: str,
    pools: Pools,
    creds: Credentials,
    *,
    requests: int,
    seed: int,
    connections: int = 2,
    progress: bool = False,
) -> Report:
    """Sends ``requests`` generated requests over ``connections`` keep-alive connections."""
    parts = urlsplit(endpoint)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    report = Report()
    prober = _Prober(host, port, report)
    prober.start()
    lock = threading.Lock()
    counter = iter(range(requests))
    timings: list[tuple[float, float, str]] = []
    started = time.perf_counter()

    def worker(index: int) -> None:
        rng = random.Random(f"{seed}-{index}")
        generator = Generator(rng, pools, creds, f"{host}:{port}")
        conn = http.client.HTTPConnection(host, port, timeout=60)
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                break
            request = generator.next()
            sent_at = time.monotonic()
            status, body, headers = _send(conn, request)
            done_at = time.monotonic()
            if status is None:
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=60)
            with lock:
                _record(report, request, status, body, headers)
                label = (
                    f"{request.service}:{request.operation[:40]}[{request.strategy},"
                    f"{len(request.body)}B]"
                )
                timings.append((sent_at, done_at, label))
                if len(timings) > 200_000:
                    del timings[:100_000]
                if progress and report.requests % 10_000 == 0:
                    print(f"  ... {report.requests} requests", file=sys.stderr, flush=True)
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report.seconds = time.perf_counter() - started
    prober.stop.set()
    prober.join()
    for probe_start, seconds in sorted(prober.slow, key=lambda p: -p[1])[:5]:
        # The requests in flight while the probe waited, longest first: the likely cause.
        overlapping = sorted(
            (t for t in timings if t[0] < probe_start + seconds and t[1] > probe_start),
            key=lambda t: t[0] - t[1],
        )[:3]
        culprits = "; ".join(f"{t[2]} {(t[1] - t[0]) * 1000:.0f} ms" for t in overlapping)
        report.findings.append(
            Finding("slow-healthz", f"{seconds * 1000:.0f} ms, in flight: {culprits or 'none'}")
        )
    return report


def _send(
    conn: http.client.HTTPConnection, request: Request
) -> tuple[int | None, bytes, dict[str, str]]:
    try:
        conn.putrequest("POST", "/" + (f"?{request.query}" if request.query else ""),
                        skip_host=True, skip_accept_encoding=True)  # fmt: skip
        headers = dict(request.headers)
        headers.setdefault("Host", conn.host + f":{conn.port}")
        headers["Content-Length"] = str(len(request.body))
        for name, value in headers.items():
            conn.putheader(name, value if value.isascii() else value.encode("utf-8"))
        conn.endheaders(request.body)
        resp = conn.getresponse()
        body = resp.read()
        result_headers = {k.lower(): v for k, v in resp.getheaders()}
        if result_headers.get("connection", "").lower() == "close":
            conn.close()
        return resp.status, body, result_headers
    except (OSError, http.client.HTTPException, UnicodeEncodeError, ValueError) as exc:
        return None, type(exc).__name__.encode(), {}


def _record(
    report: Report, request: Request, status: int | None, body: bytes, headers: dict[str, str]
) -> None:
    report.requests += 1
    report.by_strategy[request.strategy] += 1
    report.by_service[request.service] += 1
    if status is None:
        report.transport_errors += 1
        report.by_status["closed"] += 1
        report.closed[f"{body.decode()} ({request.strategy})"] += 1
        return
    report.by_status[f"{status // 100}xx"] += 1
    code = _error_code(request.service, body, headers)
    if code:
        report.errors[code] += 1
    if status == 501 and code == "NotImplemented" and request.service not in JSON_SERVICES:
        report.unimplemented[request.operation] += 1  # documented: not served by openkms
        return
    if status >= 500:
        faults = {
            "kms": KMS_SERVER_FAULTS,
            "secretsmanager": SECRETS_SERVER_FAULTS,
        }.get(request.service, IAM_SERVER_FAULTS)
        if code in faults:
            report.modelled_5xx[code] += 1
        detail = (
            f"{request.service}:{request.operation[:60]} [{request.strategy}] -> {status} "
            f"{code}: {body[:200]!r}"
        )
        report.findings.append(Finding("5xx" if code not in faults else "modelled-5xx", detail))


def scan_logs(paths: list[Path], offsets: dict[Path, int] | None = None) -> list[Finding]:
    """Tracebacks (and errors) the server wrote to its logs since ``offsets``."""
    findings = []
    for path in paths:
        if not path.exists():
            continue
        text = path.read_bytes()[(offsets or {}).get(path, 0) :].decode("utf-8", "replace")
        for marker in ("Traceback (most recent call last)", "Exception in ASGI application"):
            count = text.count(marker)
            if count:
                at = text.find(marker)
                findings.append(
                    Finding("traceback", f"{path.name}: {count} x; {text[at : at + 600]!r}")
                )
    return findings


# --- setting up a server and its pools -----------------------------------------------------------
def make_pools(endpoint: str, creds: Credentials, account_id: str) -> Pools:
    import boto3
    from botocore.config import Config

    session = boto3.session.Session()
    options = {
        "endpoint_url": endpoint,
        "region_name": "us-east-1",
        "aws_access_key_id": creds.access_key,
        "aws_secret_access_key": creds.secret_key,
        "config": Config(retries={"max_attempts": 1}),
    }
    kms = session.client("kms", **options)
    iam = session.client("iam", **options)
    pools = Pools(account_id=account_id)
    for spec, usage in (
        ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT"),
        ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT"),
        ("RSA_2048", "ENCRYPT_DECRYPT"),
        ("ECC_NIST_P256", "SIGN_VERIFY"),
        ("HMAC_256", "GENERATE_VERIFY_MAC"),
    ):
        meta = kms.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]
        pools.key_ids.append(meta["KeyId"])
        pools.key_arns.append(meta["Arn"])
    for index, key_id in enumerate(pools.key_ids[:2]):
        alias = f"alias/fuzz-{index}-{random.randrange(10**9)}"
        kms.create_alias(AliasName=alias, TargetKeyId=key_id)
        pools.aliases.append(alias)
        for context in ({}, {"purpose": "fuzz"}):
            blob = kms.encrypt(KeyId=key_id, Plaintext=b"fuzz", EncryptionContext=context)
            pools.ciphertexts.append(blob["CiphertextBlob"])
    grant = kms.create_grant(
        KeyId=pools.key_ids[0],
        GranteePrincipal=f"arn:aws:iam::{account_id}:root",
        Operations=["Encrypt", "Decrypt"],
    )
    pools.grant_ids.append(grant["GrantId"])
    pools.grant_tokens.append(grant["GrantToken"])
    name = f"fuzz-{random.randrange(10**9)}"
    iam.create_user(UserName=name)
    pools.user_names.append(name)
    role = iam.create_role(
        RoleName=name,
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}
                ],
            }
        ),
    )
    pools.role_arns.append(role["Role"]["Arn"])
    return pools


@dataclass
class FuzzServer:
    endpoint: str
    creds: Credentials
    account_id: str
    logs: list[Path]


def own_server(data_dir: Path) -> Iterator[FuzzServer]:
    """Starts ``openkms serve`` on ``data_dir`` (a generator: stops it when closed)."""
    from tests.conftest import ServerProcess, create_account

    account = create_account(data_dir)
    proc = ServerProcess(data_dir)
    proc.start()
    try:
        yield FuzzServer(
            proc.endpoint,
            Credentials(account["AccessKeyId"], account["SecretAccessKey"]),
            account["AccountId"],
            [data_dir / "server.stderr.log", data_dir / "server.stdout.log"],
        )
    finally:
        proc.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Model-driven fuzzer for openkms.")
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--connections", type=int, default=2)
    parser.add_argument("--keep", metavar="DIR", help="run the server in DIR and keep its logs")
    args = parser.parse_args(argv)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="openkms-fuzz-") as tmp:
        data_dir = Path(args.keep) if args.keep else Path(tmp)
        data_dir.mkdir(parents=True, exist_ok=True)
        servers = own_server(data_dir)
        server = next(servers)
        try:
            pools = make_pools(server.endpoint, server.creds, server.account_id)
            offsets = {p: p.stat().st_size if p.exists() else 0 for p in server.logs}
            print(
                f"fuzzing {server.endpoint}: {args.requests} requests, seed {args.seed}, "
                f"{args.connections} connections",
                flush=True,
            )
            report = run(
                server.endpoint,
                pools,
                server.creds,
                requests=args.requests,
                seed=args.seed,
                connections=args.connections,
                progress=True,
            )
            report.findings += scan_logs(server.logs, offsets)
        finally:
            servers.close()
    print(report.summary())
    failures = [f for f in report.findings if f.kind != "modelled-5xx"]
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
