"""The authorization seam every operation calls.

``AccountOwnerAccess`` is the foundation's rule: a principal may act on the keys of its own
account, and on account-level operations; anything across accounts is denied. The key-policy,
identity-policy and grant evaluator replaces it behind the same protocol.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from openkms.domain.key import KeyRecord
from openkms.errors import AccessDeniedException
from openkms.service.context import RequestContext


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


def denied_message(principal_arn: str, action: str, resource: str) -> str:
    return (
        f"User: {principal_arn} is not authorized to perform: {action} on resource: {resource} "
        f"because no resource-based policy allows the {action} action"
    )


class AccountOwnerAccess:
    def authorize_key(
        self,
        ctx: RequestContext,
        action: str,
        key: KeyRecord,
        req: Mapping[str, Any] | None = None,
    ) -> None:
        if ctx.principal.account_id != key.account_id:
            raise AccessDeniedException(denied_message(ctx.principal.arn, action, key.arn))

    def authorize_account(
        self, ctx: RequestContext, action: str, resource: str, req: Mapping[str, Any] | None = None
    ) -> None:
        return None
