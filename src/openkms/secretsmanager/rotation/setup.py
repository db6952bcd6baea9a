"""What rotation needs from the server's configuration, built once per process: the rotation
functions (``rotation_functions``), the threads rotations run on, and this server's own address
(for a command's ``SECRETS_MANAGER_ENDPOINT``).

The request path and the scheduler both reach it through ``setup_for(deps)`` (from the
runtime's settings): one object per distinct configuration in a process (a worker serves one),
so that every rotation of the process shares one executor, and at most one rotation of a secret
runs in it at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass

from openkms.config import RotationFunction, read_rotation_functions
from openkms.secretsmanager.deps import SecretsDeps
from openkms.secretsmanager.rotation.job import RotationExecutor

CANNOT_INVOKE = (
    "Secrets Manager cannot invoke the specified Lambda function. Ensure that the function "
    "policy grants access to the principal secretsmanager.amazonaws.com."
)


@dataclass(frozen=True)
class RotationSetup:
    functions: Mapping[str, RotationFunction]
    executor: RotationExecutor
    endpoint: str | None

    def function_for(self, arn: str, account_id: str) -> RotationFunction | None:
        """The function an ARN names, when it is configured and of the secret's account."""
        function = self.functions.get(arn)
        parts = arn.split(":")
        if function is None or len(parts) < 7 or parts[4] != account_id:
            return None
        return function


_lock = threading.Lock()
_setups: dict[tuple[str | None, str | None], RotationSetup] = {}


def rotation_setup(functions_file: str | None, endpoint: str | None) -> RotationSetup:
    """The process's RotationSetup for this configuration (the file is read once)."""
    key = (functions_file, endpoint)
    with _lock:
        setup = _setups.get(key)
        if setup is None:
            functions = read_rotation_functions(functions_file) if functions_file else {}
            setup = RotationSetup(functions, RotationExecutor(), endpoint)
            _setups[key] = setup
        return setup


def setup_for(deps: SecretsDeps) -> RotationSetup:
    settings = deps.runtime.settings
    return rotation_setup(settings.rotation_functions, settings.local_endpoint)


def wait_for_rotations(timeout: float) -> bool:
    """Waits until the rotations this process started have ended (``openkms scheduler
    run-once`` does before it closes the storage they write to)."""
    with _lock:
        setups = list(_setups.values())
    return all(setup.executor.wait_idle(timeout) for setup in setups)
