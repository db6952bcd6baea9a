"""What every Secrets Manager operation is given, and the handler type of the dispatch table.

``SecretsDeps`` is built by the HTTP app per request from objects it built once (storage,
KMS runtime, clock, audit writer); operations reach the KMS only through ``kms`` (the
in-process client acting on behalf of the caller), never through ``runtime`` directly, which
is here for the authorization engine and the scheduler."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from openkms.clock import Clock
from openkms.context import RequestContext
from openkms.service.runtime import Runtime
from openkms.storage.base import Storage

# Writes one audit record (the HTTP app's sink); None when auditing is off.
AuditWriter = Callable[[dict[str, Any]], None]


@dataclass(frozen=True, slots=True)
class SecretsDeps:
    storage: Storage
    runtime: Runtime
    clock: Clock
    partition: str = "aws"
    audit: AuditWriter | None = None
    # Extension point for the rotation runner's configuration (secretsmanager.rotation).
    rotation_config: Any = None
    # The process's GetSecretValue cache (secretsmanager.read_cache.ReadCache), built once by
    # the HTTP app; None: every read goes to storage and the KMS.
    read_cache: Any = None


Params = dict[str, Any]
Result = dict[str, Any]
Handler = Callable[[SecretsDeps, RequestContext, Params], Result]
