"""The authorization seam every operation calls.

The implementation, ``service.authorization.PolicyAccessController``, gathers the facts and asks
the pure evaluator in this package; tests may pass any other implementation to the Runtime.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from openkms.context import RequestContext
from openkms.domain.key import KeyRecord


class AccessController(Protocol):
    def authorize_key(
        self,
        ctx: RequestContext,
        action: str,
        key: KeyRecord,
        req: Mapping[str, Any] | None = None,
    ) -> None:
        """Raises AccessDeniedException unless ``ctx.principal`` may do ``action`` on ``key``.
        ``req`` is the validated request, the source of the request's condition keys."""
        ...

    def authorize_account(
        self, ctx: RequestContext, action: str, resource: str, req: Mapping[str, Any] | None = None
    ) -> None:
        """For operations that act on no key (CreateKey, ListKeys, GenerateRandom, ...)."""
        ...
