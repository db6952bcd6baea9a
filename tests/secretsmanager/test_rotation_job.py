"""The rotation job: the four steps in order, stopping at the first failure or at a
cancellation; the executor runs one rotation of a secret at a time; the endpoint a command is
told."""

from __future__ import annotations

import threading
from typing import Any

from openkms.config import RotationFunction, Settings, local_endpoint
from openkms.secretsmanager.rotation.invoker import InvocationError, RotationEvent
from openkms.secretsmanager.rotation.job import RotationExecutor, RotationJob, run_steps
from openkms.secretsmanager.rotation.setup import RotationSetup

ARN = "arn:aws:lambda:us-east-1:111122223333:function:f"
JOB = RotationJob(RotationFunction(ARN, command=("x",)), "arn:secret", "tok", "rt", "us-east-1",
                  None)


def recorder(fail_at: str | None = None) -> tuple[list[str], Any]:
    steps: list[str] = []

    def invoker(function: RotationFunction, event: RotationEvent, **kwargs: Any) -> None:
        steps.append(event.step)
        assert (event.secret_id, event.client_request_token) == ("arn:secret", "tok")
        if event.step == fail_at:
            raise InvocationError(f"failed at {event.step}")

    return steps, invoker


def test_the_four_steps_in_order() -> None:
    steps, invoker = recorder()
    assert run_steps(JOB, invoker=invoker).succeeded
    assert steps == ["createSecret", "setSecret", "testSecret", "finishSecret"]


def test_a_failed_step_ends_the_rotation() -> None:
    steps, invoker = recorder("testSecret")
    outcome = run_steps(JOB, invoker=invoker)
    assert not outcome.succeeded and outcome.failed_step == "testSecret"
    assert steps == ["createSecret", "setSecret", "testSecret"]  # never finishSecret


def test_a_cancelled_rotation_stops_before_its_next_step() -> None:
    steps, invoker = recorder()
    wanted = iter([True, True, False])
    outcome = run_steps(JOB, invoker=invoker, still_wanted=lambda: next(wanted))
    assert (outcome.succeeded, outcome.failed_step) == (False, "testSecret")
    assert steps == ["createSecret", "setSecret"]


def test_one_rotation_per_secret_at_a_time() -> None:
    executor = RotationExecutor(2)
    release = threading.Event()
    ran: list[str] = []
    try:
        assert executor.submit("s1", lambda: (release.wait(10), ran.append("first")))
        assert not executor.submit("s1", lambda: ran.append("second"))
        assert executor.running("s1")
        assert executor.submit("s2", lambda: ran.append("other"))
        release.set()
        assert executor.wait_idle(10)
        assert sorted(ran) == ["first", "other"] and not executor.running("s1")
        assert executor.submit("s1", lambda: ran.append("again"))
        assert executor.wait_idle(10) and "again" in ran
    finally:
        executor.shutdown()


def test_a_job_that_raises_does_not_block_the_secret() -> None:
    executor = RotationExecutor(1)
    try:
        assert executor.submit("s1", lambda: 1 / 0)  # type: ignore[func-returns-value]
        assert executor.wait_idle(10)
        assert not executor.running("s1")
    finally:
        executor.shutdown()


def test_server_endpoint_and_function_accounts() -> None:
    assert local_endpoint(Settings(port=4566)) == "http://127.0.0.1:4566"
    assert local_endpoint(Settings(host="::", port=8443)) == "http://[::1]:8443"
    assert local_endpoint(Settings(port=0)) is None
    setup = RotationSetup({ARN: RotationFunction(ARN, command=("x",))}, RotationExecutor(1), None)
    try:
        assert setup.function_for(ARN, "111122223333") is not None
        # Another account's secret cannot name this function; an unmapped ARN names nothing.
        assert setup.function_for(ARN, "444455556666") is None
        assert setup.function_for(ARN + "-other", "111122223333") is None
    finally:
        setup.executor.shutdown()
