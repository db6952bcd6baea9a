"""Rotation functions as the operator configures them: the ``rotation_functions`` file, an HTTPS
endpoint served by ``openkms rotation-runner --listen`` (certificate verified, bearer token), a
command running ``openkms rotation-runner --stdin``, and how each failure is reported."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openkms.config import RotationFunction, SettingsError, read_rotation_functions
from openkms.secretsmanager.rotation.invoker import InvocationError, RotationEvent, invoke
from openkms.secretsmanager.rotation.runner import Host, make_server
from openkms.tlsdev import make_dev_certs

ARN = "arn:aws:lambda:us-east-1:111122223333:function:rotator"
HERE = Path(__file__).resolve().parent
EVENT = RotationEvent("createSecret", "arn:aws:secretsmanager:us-east-1:1:secret:s-AbCdEf",
                      "0" * 32 + "-token", rotation_token="rotation-token-secret")


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# --- the configuration file ----------------------------------------------------------------------
def test_the_file_maps_arns_to_endpoints_and_commands(tmp_path: Path) -> None:
    write(tmp_path / "ca.pem", "x")
    write(tmp_path / "token", "s3cret\n")
    functions = read_rotation_functions(write(tmp_path / "f.toml", f'''
[functions."{ARN}"]
url = "https://rotator.example:8443/rotate"
ca_file = "ca.pem"
auth_token_file = "token"
timeout_seconds = 60

[functions."{ARN}-local"]
command = ["openkms", "rotation-runner", "--stdin", "m:h"]
env = {{ SECRETS_MANAGER_ENDPOINT = "http://127.0.0.1:4566" }}
'''))
    remote, local = functions[ARN], functions[f"{ARN}-local"]
    assert remote.url == "https://rotator.example:8443/rotate"
    assert remote.ca_file == str(tmp_path / "ca.pem")
    assert remote.auth_token == "s3cret" and "s3cret" not in repr(remote)
    assert remote.timeout_seconds == 60
    assert local.command == ("openkms", "rotation-runner", "--stdin", "m:h")
    assert local.env == (("SECRETS_MANAGER_ENDPOINT", "http://127.0.0.1:4566"),)


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ('url = "https://a/"\ncommand = ["x"]', "exactly one"),
        ("timeout_seconds = 5", "exactly one"),
        ('url = "http://rotator.example/"', "https"),
        ('url = "ftp://127.0.0.1/"', "https"),
        ('command = []', "non-empty"),
        ('command = ["x"]\ntimeout_seconds = 901', "timeout_seconds"),
        ('command = ["x"]\nretries = 3', "unknown key"),
        ('url = "https://a/"\nca_file = "missing.pem"', "ca_file"),
    ],
)
def test_bad_entries_are_refused(tmp_path: Path, entry: str, why: str) -> None:
    path = write(tmp_path / "f.toml", f'[functions."{ARN}"]\n{entry}\n')
    with pytest.raises(SettingsError, match=why):
        read_rotation_functions(path)


def test_plain_http_is_allowed_on_loopback_only(tmp_path: Path) -> None:
    path = write(tmp_path / "f.toml", f'[functions."{ARN}"]\nurl = "http://127.0.0.1:9/"\n')
    assert read_rotation_functions(path)[ARN].url == "http://127.0.0.1:9/"
    bad = write(tmp_path / "g.toml", '[functions."not-an-arn"]\nurl = "https://a/"\n')
    with pytest.raises(SettingsError, match="Lambda function ARN"):
        read_rotation_functions(bad)


# --- an HTTPS endpoint ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return make_dev_certs(tmp_path_factory.mktemp("tls"), ("127.0.0.1", "localhost"))


@pytest.fixture
def https_runner(certs: Any) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []

    def handler(event: dict[str, Any], context: Any) -> str:
        seen.append(event)
        assert context.get_remaining_time_in_millis() > 0
        if event["Step"] == "testSecret":
            raise ValueError("the pending password does not log in")
        return "done"

    server = make_server(
        Host(handler, "rotator", 30.0),
        ("127.0.0.1", 0),
        token="bearer-secret",
        tls=(str(certs.server_cert), str(certs.server_key)),
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/", seen
    finally:
        server.shutdown()
        server.server_close()


def https_function(url: str, certs: Any, token: str | None = "bearer-secret") -> RotationFunction:
    return RotationFunction(ARN, url=url, ca_file=str(certs.ca_cert), auth_token=token,
                            timeout_seconds=10)


def test_https_endpoint_receives_exactly_the_lambda_event(
    https_runner: tuple[str, list[dict[str, Any]]], certs: Any
) -> None:
    url, seen = https_runner
    invoke(https_function(url, certs), EVENT, region="us-east-1", endpoint=None)
    assert seen == [{
        "Step": "createSecret",
        "SecretId": EVENT.secret_id,
        "ClientRequestToken": EVENT.client_request_token,
        "RotationToken": "rotation-token-secret",
    }]


def test_https_handler_failure_is_a_failed_step(
    https_runner: tuple[str, list[dict[str, Any]]], certs: Any
) -> None:
    url, _ = https_runner
    event = RotationEvent("testSecret", EVENT.secret_id, EVENT.client_request_token, "t")
    with pytest.raises(InvocationError, match=r"step testSecret.*HTTP 500: ValueError") as info:
        invoke(https_function(url, certs), event, region="us-east-1", endpoint=None)
    # What the handler said stays out of the error (and so out of logs and DescribeSecret).
    assert "password" not in str(info.value)


def test_https_wrong_token_and_unverified_certificate_fail(
    https_runner: tuple[str, list[dict[str, Any]]], certs: Any
) -> None:
    url, seen = https_runner
    with pytest.raises(InvocationError, match="HTTP 401"):
        invoke(https_function(url, certs, token="guess"), EVENT, region="r", endpoint=None)
    with pytest.raises(InvocationError, match="HTTP 401"):
        invoke(https_function(url, certs, token=None), EVENT, region="r", endpoint=None)
    unverified = RotationFunction(ARN, url=url, auth_token="bearer-secret", timeout_seconds=10)
    with pytest.raises(InvocationError, match="cannot reach"):
        invoke(unverified, EVENT, region="r", endpoint=None)
    assert seen == []


def test_an_endpoint_that_does_not_answer_in_time_fails() -> None:
    import socket

    with socket.socket() as listener:  # accepts the connection, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
        slow = RotationFunction(ARN, url=url, timeout_seconds=0.3)
        with pytest.raises(InvocationError, match=r"no answer within 0.3 s"):
            invoke(slow, EVENT, region="r", endpoint=None)


# --- a local command ------------------------------------------------------------------------------
def runner_command(*extra: str) -> tuple[str, ...]:
    return (sys.executable, "-m", "openkms.secretsmanager.rotation.runner", "--stdin",
            "--path", str(HERE), *extra, "rotation_handlers:record")


def test_command_receives_the_event_and_a_lambda_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = tmp_path / "record.jsonl"
    monkeypatch.setenv("OPENKMS_ROOT_KEY", "must-not-reach-the-function")
    function = RotationFunction(
        ARN, command=runner_command("--function-name", "pg-rotator"),
        env=(("RECORD_FILE", str(record)),),
        timeout_seconds=60,
    )
    invoke(function, EVENT, region="eu-west-1", endpoint="http://127.0.0.1:4566")
    seen = json.loads(record.read_text())
    assert seen["event"]["Step"] == "createSecret"
    assert seen["event"]["RotationToken"] == "rotation-token-secret"
    assert seen["function_name"] == "pg-rotator" and seen["remaining_ms"] > 0
    assert seen["endpoint"] == seen["boto_endpoint"] == "http://127.0.0.1:4566"
    assert seen["region"] == "eu-west-1"
    assert seen["root_key"] is None  # the server's secrets never reach a function


def test_command_failure_and_timeout(tmp_path: Path) -> None:
    failing = RotationFunction(
        ARN, command=runner_command(),
        env=(("FAIL_STEP", "createSecret"),),
        timeout_seconds=60,
    )
    with pytest.raises(InvocationError, match="exited with status 1"):
        invoke(failing, EVENT, region="r", endpoint=None)
    hanging = RotationFunction(ARN, command=("sleep", "30"), timeout_seconds=0.3)
    with pytest.raises(InvocationError, match="killed"):
        invoke(hanging, EVENT, region="r", endpoint=None)
    missing = RotationFunction(ARN, command=(str(tmp_path / "nothing-here"),))
    with pytest.raises(InvocationError, match="cannot start"):
        invoke(missing, EVENT, region="r", endpoint=None)


def test_the_cli_names_the_runner() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "openkms.cli.main", "rotation-runner", "--help"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout
    assert "--stdin" in out and "--listen" in out


def test_handlers_are_named_as_lambda_names_them(tmp_path: Path) -> None:
    from openkms.secretsmanager.rotation.runner import load_handler

    (tmp_path / "lambda_function_for_test.py").write_text(
        "def lambda_handler(event, context):\n    return event['Step']\n"
    )
    dotted = load_handler("lambda_function_for_test.lambda_handler", [str(tmp_path)])
    colon = load_handler("lambda_function_for_test:lambda_handler", [str(tmp_path)])
    assert dotted is colon and dotted({"Step": "x"}, None) == "x"
    with pytest.raises(SystemExit, match="no callable"):
        load_handler("lambda_function_for_test:missing")


def test_a_handler_whose_imports_are_missing_is_refused_by_name(tmp_path: Path) -> None:
    from openkms.secretsmanager.rotation.runner import MODULE_HINTS, load_handler

    (tmp_path / "needs_a_driver_for_test.py").write_text(
        "import a_driver_not_installed_here\n\ndef lambda_handler(event, context):\n    pass\n"
    )
    with pytest.raises(SystemExit, match="imports 'a_driver_not_installed_here', which is not"):
        load_handler("needs_a_driver_for_test.lambda_handler", [str(tmp_path)])
    with pytest.raises(SystemExit, match="cannot import 'no_such_handler_module'"):
        load_handler("no_such_handler_module.lambda_handler")
    # AWS's PostgreSQL templates: the message says which extra brings PyGreSQL.
    assert "openkms[rotation]" in MODULE_HINTS["pg"] and MODULE_HINTS["pgdb"] == MODULE_HINTS["pg"]
