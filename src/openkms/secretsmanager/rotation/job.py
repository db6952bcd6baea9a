"""One rotation: the four steps in order, off the request path.

Rotation is asynchronous in AWS (RotateSecret answers once the rotation has started), and here it
must be: the function calls back into this very server (PutSecretValue, UpdateSecretVersionStage
...), so a request thread that waited for it could wait for itself. ``RotationExecutor`` runs
jobs on a few threads of their own, at most one per secret in this process.

A failed step ends the rotation where it is: AWSCURRENT stays where it was (only finishSecret
moves it), and the AWSPENDING label stays on the new version, as AWS leaves it, so that the next
RotateSecret reattempts that rotation with the same token.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from openkms.config import RotationFunction
from openkms.secretsmanager.rotation.invoker import (
    STEPS,
    InvocationError,
    RotationEvent,
    invoke,
)

log = logging.getLogger("openkms.secretsmanager.rotation")
MAX_CONCURRENT_ROTATIONS = 4


@dataclass(frozen=True, slots=True)
class RotationJob:
    function: RotationFunction
    secret_arn: str
    token: str  # ClientRequestToken: the AWSPENDING version's id
    rotation_token: str  # a credential of this rotation, in every event
    region: str
    endpoint: str | None  # this server, for a command's environment


@dataclass(frozen=True, slots=True)
class RotationOutcome:
    succeeded: bool
    failed_step: str | None = None
    reason: str = ""


def run_steps(
    job: RotationJob,
    *,
    still_wanted: Callable[[], bool] = lambda: True,
    invoker: Callable[..., None] = invoke,
) -> RotationOutcome:
    """createSecret, setSecret, testSecret, finishSecret; stops at the first failure, or before
    a step when ``still_wanted`` says the rotation was cancelled."""
    for step in STEPS:
        if not still_wanted():
            return RotationOutcome(False, step, "the rotation was cancelled")
        event = RotationEvent(step, job.secret_arn, job.token, job.rotation_token)
        try:
            invoker(job.function, event, region=job.region, endpoint=job.endpoint)
        except InvocationError as exc:
            return RotationOutcome(False, step, str(exc))
    return RotationOutcome(True)


class RotationExecutor:
    """Background threads for rotations: at most one job per secret at a time in this process
    (several processes are kept apart by the AWSPENDING label, set in a transaction)."""

    def __init__(self, max_workers: int = MAX_CONCURRENT_ROTATIONS) -> None:
        self._pool = ThreadPoolExecutor(max_workers, thread_name_prefix="sm-rotation")
        self._lock = threading.Lock()
        self._running: dict[str, Future[None]] = {}

    def submit(self, secret_arn: str, work: Callable[[], None]) -> bool:
        """Starts ``work`` unless a rotation of this secret is running here already."""
        with self._lock:
            if secret_arn in self._running:
                return False
            future = self._pool.submit(self._guarded, secret_arn, work)
            self._running[secret_arn] = future
            return True

    def _guarded(self, secret_arn: str, work: Callable[[], None]) -> None:
        try:
            work()
        except Exception:
            # The job logs its own outcome; this is for what it did not expect. No secret is
            # in the message: the job handles ARNs, tokens' ids and error types only.
            log.exception("rotation of %s ended with an unexpected error", secret_arn)
        finally:
            with self._lock:
                self._running.pop(secret_arn, None)

    def running(self, secret_arn: str) -> bool:
        with self._lock:
            return secret_arn in self._running

    def wait_idle(self, timeout: float) -> bool:
        """For tests and shutdown: waits until no job runs (True) or ``timeout`` passes."""
        with self._lock:
            futures = list(self._running.values())
        for future in futures:
            try:
                future.result(timeout=timeout)
            except TimeoutError:
                return False
        return True

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
