"""Invoking a rotation function with exactly the event AWS sends a rotation Lambda.

Two kinds, from the operator's ``rotation_functions`` file (``config.RotationFunction``):

- ``url``: the event is POSTed as JSON (``Content-Type: application/json``), with
  ``Authorization: Bearer <token>`` when an ``auth_token_file`` is configured. A 2xx answer
  without an ``X-Amz-Function-Error`` header is success, as Lambda's Invoke API reports it;
  anything else (another status, that header, a timeout, a refused connection, a certificate
  that does not verify) is a failed step.
- ``command``: the event is written to the command's standard input; exit status 0 is success.
  The command runs in a session of its own (a timeout kills its whole process group), with an
  environment made of a few harmless variables of the server's, ``AWS_REGION`` and the
  Secrets Manager endpoint, and the ``env`` table of its entry: never the server's secrets.

Nothing here logs the event (its ``RotationToken`` is a credential) nor what a function prints.
"""

from __future__ import annotations

import contextlib
import os
import signal
import ssl
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass, field

import orjson

from openkms.config import ROTATION_INHERITED_ENV, RotationFunction, environ

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
_ERROR_TEXT_LIMIT = 200  # of a function's errorType, kept for the failure's description


@dataclass(frozen=True, slots=True)
class RotationEvent:
    """The event a rotation Lambda receives."""

    step: str
    secret_id: str  # the secret's ARN
    client_request_token: str  # the version being rotated in
    rotation_token: str = field(repr=False)  # a credential: never logged

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "Step": self.step,
                "SecretId": self.secret_id,
                "ClientRequestToken": self.client_request_token,
                "RotationToken": self.rotation_token,
            }
        )


class InvocationError(Exception):
    """A step failed. The message names the function and the step and says how it failed
    (never what the function printed, which may hold secrets)."""


def invoke(
    function: RotationFunction, event: RotationEvent, *, region: str, endpoint: str | None
) -> None:
    """Runs one step; InvocationError when it fails."""
    if function.url is not None:
        _post(function, event)
    else:
        _run(function, event, region=region, endpoint=endpoint)


def _post(function: RotationFunction, event: RotationEvent) -> None:
    assert function.url is not None
    headers = {"Content-Type": "application/json"}
    if function.auth_token is not None:
        headers["Authorization"] = f"Bearer {function.auth_token}"
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked by config.py
        function.url, data=event.to_json(), headers=headers, method="POST"
    )
    context: ssl.SSLContext | None = None
    if function.url.startswith("https://"):
        context = ssl.create_default_context(cafile=function.ca_file)
    where = f"rotation function {function.arn}, step {event.step}"
    try:
        with urllib.request.urlopen(  # noqa: S310
            request, timeout=function.timeout_seconds, context=context
        ) as response:
            body = response.read(64 * 1024)
            failed = response.headers.get("X-Amz-Function-Error")
    except urllib.error.HTTPError as exc:
        kind = _error_type(exc.read(64 * 1024))
        raise InvocationError(f"{where}: HTTP {exc.code}{kind}") from None
    except TimeoutError:
        raise InvocationError(
            f"{where}: no answer within {function.timeout_seconds:g} s"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError):
            raise InvocationError(
                f"{where}: no answer within {function.timeout_seconds:g} s"
            ) from None
        raise InvocationError(f"{where}: cannot reach the endpoint ({reason})") from None
    if failed:
        raise InvocationError(f"{where}: the function failed ({failed}){_error_type(body)}")


def _error_type(body: bytes) -> str:
    """``: <errorType>`` from a Lambda-style error document, or nothing."""
    with contextlib.suppress(orjson.JSONDecodeError, TypeError, AttributeError):
        kind = orjson.loads(body).get("errorType")
        if isinstance(kind, str) and kind:
            return f": {kind[:_ERROR_TEXT_LIMIT]}"
    return ""


def command_env(
    function: RotationFunction, *, region: str, endpoint: str | None
) -> dict[str, str]:
    """The environment of a rotation command: a few of the server's variables, then the
    function's Region and endpoint, then the entry's own ``env`` (which wins)."""
    server = environ()
    env = {name: server[name] for name in ROTATION_INHERITED_ENV if name in server}
    env["AWS_REGION"] = env["AWS_DEFAULT_REGION"] = region
    if endpoint is not None:
        env["SECRETS_MANAGER_ENDPOINT"] = endpoint
        env["AWS_ENDPOINT_URL_SECRETS_MANAGER"] = endpoint
    env.update(function.env)
    return env


def _run(
    function: RotationFunction, event: RotationEvent, *, region: str, endpoint: str | None
) -> None:
    where = f"rotation function {function.arn}, step {event.step}"
    try:
        process = subprocess.Popen(
            list(function.command),
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=command_env(function, region=region, endpoint=endpoint),
            start_new_session=True,
        )
    except OSError as exc:
        raise InvocationError(f"{where}: cannot start the command ({exc.strerror})") from None
    try:
        process.communicate(event.to_json(), timeout=function.timeout_seconds)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise InvocationError(
            f"{where}: no result within {function.timeout_seconds:g} s (killed)"
        ) from None
    if process.returncode != 0:
        raise InvocationError(f"{where}: the command exited with status {process.returncode}")
