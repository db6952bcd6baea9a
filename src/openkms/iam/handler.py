"""What every IAM and STS operation is: a function of its dependencies, the request context
and the validated parameters, answering the result members (or None). The handler modules
(users, groups, roles, policies, access keys, sts), the handler factories of ``entities`` and
``entity_policies``, and the dispatch table all use it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from openkms.clock import Clock
from openkms.context import RequestContext
from openkms.rootoftrust.base import RootOfTrust
from openkms.storage.base import Storage


@dataclass(frozen=True, slots=True)
class IamDeps:
    storage: Storage
    root: RootOfTrust
    clock: Clock
    partition: str = "aws"
    access: Any = None  # the KMS AccessController; IAM does not use it


Params = dict[str, Any]
Result = dict[str, Any] | None
Handler = Callable[[IamDeps, RequestContext, Params], Result]
