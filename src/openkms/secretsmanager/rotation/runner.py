"""``openkms rotation-runner MODULE:HANDLER``: hosts an unmodified Lambda-style rotation handler
(``lambda_handler(event, context)``, AWS's published rotation functions among them) so that
openkms can invoke it as a rotation function.

- ``--stdin``: reads one event from standard input, runs the handler, exits 0 on success and 1
  when it raised (the ``command`` kind of rotation function).
- ``--listen HOST:PORT``: serves events over HTTP(S) (``--tls-cert``/``--tls-key``): each POST is
  one invocation, answered 200 with the handler's result, or 500 with Lambda's error document
  (``errorType``, ``errorMessage``) and ``X-Amz-Function-Error: Unhandled`` (the ``url`` kind).
  ``--auth-token-file`` makes it refuse (401) a request without that bearer token.

The handler finds what a Lambda finds: a context object (``function_name``, ``aws_request_id``,
``get_remaining_time_in_millis()``, ...), ``AWS_REGION``, and the Secrets Manager endpoint both as
``SECRETS_MANAGER_ENDPOINT`` (which AWS's templates read) and ``AWS_ENDPOINT_URL_SECRETS_MANAGER``
(which boto3 honours by itself), so ``boto3.client("secretsmanager")`` inside it reaches openkms.
Its credentials are the runner's own (the usual ``AWS_*`` variables or profile), and so are the
template's optional settings (``EXCLUDE_CHARACTERS``, ``PASSWORD_LENGTH``, ...: for a command,
the ``env`` table of its entry). ``AWS_LAMBDA_FUNCTION_NAME`` is set as Lambda sets it.

AWS's PostgreSQL templates import PyGreSQL (``pg``, ``pgdb``): ``pip install
'openkms[rotation]'`` where the runner runs (a handler whose imports are missing is refused at
start, naming the module). They connect with ``sslmode=verify-full`` and Amazon Linux's CA file
``/etc/pki/tls/cert.pem`` unless the secret says ``"ssl": false``; on a host without that file
(Debian keeps its bundle in ``/etc/ssl/certs/ca-certificates.crt``) the TLS attempt fails, and
the template falls back to a plain connection only when the secret has no ``ssl`` key.
"""

from __future__ import annotations

import argparse
import hmac
import importlib
import logging
import os
import ssl
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson

Handler = Callable[[dict[str, Any], Any], Any]
MAX_EVENT_BYTES = 256 * 1024  # Lambda's limit for an asynchronous event
log = logging.getLogger("openkms.rotation.runner")
_EXTRA = " (pip install 'openkms[rotation]')"
MODULE_HINTS = {"pg": _EXTRA, "pgdb": _EXTRA}


@dataclass
class LambdaContext:
    """The attributes of Lambda's Python context object that handlers use."""

    function_name: str
    invoked_function_arn: str
    timeout_seconds: float
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 128
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = ""
    identity: Any = None
    client_context: Any = None
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"
        self.log_stream_name = self.log_stream_name or time.strftime("%Y/%m/%d/[$LATEST]local")
        self._deadline = time.monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def load_handler(spec: str, paths: Sequence[str] = ()) -> Handler:
    """``module:function`` or Lambda's ``module.function`` (``lambda_function.lambda_handler``)."""
    for path in reversed(paths):
        sys.path.insert(0, str(Path(path).resolve()))
    module_name, sep, name = spec.partition(":")
    if not sep:
        module_name, _, name = spec.rpartition(".")
    if not module_name or not name:
        raise SystemExit(f"rotation-runner: {spec!r} is not MODULE:HANDLER")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is None or module_name.split(".")[0] == exc.name.split(".")[0]:
            raise SystemExit(f"rotation-runner: cannot import {module_name!r} ({exc})") from None
        # What the handler imports is missing from this environment: AWS's PostgreSQL
        # templates import PyGreSQL's ``pg`` and ``pgdb`` (the ``rotation`` extra).
        hint = MODULE_HINTS.get(exc.name.split(".")[0], "")
        raise SystemExit(
            f"rotation-runner: {module_name} imports {exc.name!r}, which is not installed "
            f"where the runner runs{hint}"
        ) from None
    handler = getattr(module, name, None)
    if not callable(handler):
        raise SystemExit(f"rotation-runner: {module_name} has no callable {name}")
    return handler  # type: ignore[no-any-return]


def prepare_environment(
    endpoint: str | None, region: str | None, function_name: str | None = None
) -> None:
    """What a rotation Lambda finds in its environment (the process's, for boto3)."""
    env = os.environ
    if function_name:
        env.setdefault("AWS_LAMBDA_FUNCTION_NAME", function_name)
    if endpoint:
        env.setdefault("SECRETS_MANAGER_ENDPOINT", endpoint)
        env.setdefault("AWS_ENDPOINT_URL_SECRETS_MANAGER", endpoint)
    if "SECRETS_MANAGER_ENDPOINT" in env:
        env.setdefault("AWS_ENDPOINT_URL_SECRETS_MANAGER", env["SECRETS_MANAGER_ENDPOINT"])
    elif "AWS_ENDPOINT_URL_SECRETS_MANAGER" in env:
        env["SECRETS_MANAGER_ENDPOINT"] = env["AWS_ENDPOINT_URL_SECRETS_MANAGER"]
    region = region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if region:
        env.setdefault("AWS_REGION", region)
        env.setdefault("AWS_DEFAULT_REGION", region)


@dataclass
class Host:
    handler: Handler
    function_name: str
    timeout_seconds: float

    def invoke(self, body: bytes) -> tuple[bool, bytes]:
        """(succeeded, the result or Lambda's error document as JSON)."""
        try:
            event = orjson.loads(body)
            if not isinstance(event, dict):
                raise ValueError("the event is not a JSON object")
        except (orjson.JSONDecodeError, ValueError) as exc:
            return False, _error_document(exc)
        region = os.environ.get("AWS_REGION", "us-east-1")
        context = LambdaContext(
            function_name=self.function_name,
            invoked_function_arn=(
                f"arn:aws:lambda:{region}:000000000000:function:{self.function_name}"
            ),
            timeout_seconds=self.timeout_seconds,
        )
        try:
            result = self.handler(event, context)
        except Exception as exc:
            # The traceback goes to this process's stderr, as Lambda sends it to its log.
            traceback.print_exc(file=sys.stderr)
            return False, _error_document(exc)
        try:
            return True, orjson.dumps(result)
        except TypeError as exc:
            return False, _error_document(exc)


def _error_document(exc: BaseException) -> bytes:
    return orjson.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc)})


def serve_stdin(host: Host) -> int:
    ok, payload = host.invoke(sys.stdin.buffer.read(MAX_EVENT_BYTES + 1))
    sys.stdout.buffer.write(payload + b"\n")
    sys.stdout.flush()
    return 0 if ok else 1


def make_server(
    host: Host,
    address: tuple[str, int],
    *,
    token: str | None = None,
    tls: tuple[str, str] | None = None,
) -> ThreadingHTTPServer:
    """An HTTP(S) server that runs ``host`` for each POST (started by the caller)."""

    class Requests(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            if token is not None:
                given = self.headers.get("Authorization", "")
                if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                    self._answer(401, b'{"errorType":"Unauthorized"}')
                    return
            try:
                length = int(self.headers.get("Content-Length", "0"))
            except ValueError:
                length = -1
            if not 0 <= length <= MAX_EVENT_BYTES:
                self._answer(413, b'{"errorType":"RequestTooLarge"}')
                return
            ok, payload = host.invoke(self.rfile.read(length))
            self._answer(200 if ok else 500, payload, None if ok else "Unhandled")

        def _answer(self, status: int, body: bytes, function_error: str | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if function_error:
                self.send_header("X-Amz-Function-Error", function_error)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            log.info("%s %s", self.address_string(), format % args)

    server = ThreadingHTTPServer(address, Requests)
    server.daemon_threads = True
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(*tls)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    return server


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not port.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("handler", help="MODULE:FUNCTION (or Lambda's module.function)")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--stdin", action="store_true", help="run one event read from stdin")
    mode.add_argument("--listen", type=_address, metavar="HOST:PORT", help="serve HTTP(S)")
    parser.add_argument("--path", action="append", default=[], help="add DIR to sys.path")
    parser.add_argument("--endpoint", help="the Secrets Manager endpoint the handler calls")
    parser.add_argument("--region", help="AWS_REGION for the handler (default: environment)")
    parser.add_argument("--function-name", default="openkms-rotation")
    parser.add_argument("--timeout", type=float, default=30.0, help="what the context reports")
    parser.add_argument("--tls-cert", help="serve HTTPS with this PEM certificate (chain)")
    parser.add_argument("--tls-key", help="the certificate's PEM private key")
    parser.add_argument("--auth-token-file", help="require 'Authorization: Bearer <token>'")
    parser.add_argument(
        "--port-file", help="write the port listened on to this file (for --listen HOST:0)"
    )


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    prepare_environment(args.endpoint, args.region, args.function_name)
    host = Host(load_handler(args.handler, args.path), args.function_name, args.timeout)
    if args.stdin:
        return serve_stdin(host)
    if (args.tls_cert is None) != (args.tls_key is None):
        raise SystemExit("rotation-runner: --tls-cert and --tls-key go together")
    token = None
    if args.auth_token_file:
        token = Path(args.auth_token_file).read_text("utf-8").strip() or None
    tls = (args.tls_cert, args.tls_key) if args.tls_cert else None
    server = make_server(host, args.listen, token=token, tls=tls)
    if args.port_file:
        Path(args.port_file).write_text(str(server.server_address[1]))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "rotation-runner", help="host a Lambda-style Secrets Manager rotation handler"
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="openkms rotation-runner")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
