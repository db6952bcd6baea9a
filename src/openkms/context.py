"""Who is asking, from where, and when: passed to every operation, recorded by the audit
log, read by the policy evaluator's adapters. Below all three (service, audit, policy)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Principal:
    account_id: str
    arn: str
    kind: str  # "root" | "user" | "assumed-role"
    access_key_id: str
    user_id: str
    tags: tuple[tuple[str, str], ...] = ()

    # Immutable, so a copy is the object itself. Compiled (mypyc), the class has no
    # copy.deepcopy fallback that works: that rebuilds the object field by field through
    # setattr, which a frozen dataclass refuses.
    def __copy__(self) -> Principal:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Principal:
        return self

    @property
    def unique_id(self) -> str | None:
        """How stored policies and grants name this principal: an IAM user's AIDA... id, the
        AROA... id of a session's role; None for the account root."""
        if self.kind == "user":
            return self.user_id
        if self.kind == "assumed-role":
            return self.user_id.split(":", 1)[0]
        return None


@dataclass(slots=True)
class RequestContext:
    principal: Principal
    region: str
    request_id: str
    now: float
    operation: str = ""
    source_ip: str = ""
    user_agent: str = ""
    secure_transport: bool = False
    # The alias a request named its key by (kms:RequestAlias).
    request_alias: str | None = None
    # Keys this request already resolved, by reference (one lookup per request and reference).
    resolved: dict[str, Any] = field(default_factory=dict)
    # Resources the operation touched, for the audit record.
    resources: list[str] = field(default_factory=list)
    # The AWS service that makes this KMS request on the caller's behalf
    # ("secretsmanager.<region>.amazonaws.com"): kms:ViaService, aws:ViaAWSService, and the
    # audit record's invokedBy. None for a request the caller made itself.
    via_service: str | None = None

    # Explicit, so that mypyc compiles it: the dataclass's generated __init__ is a Python
    # function, and one context is made per request. Same parameters, same defaults.
    def __init__(
        self,
        principal: Principal,
        region: str,
        request_id: str,
        now: float,
        operation: str = "",
        source_ip: str = "",
        user_agent: str = "",
        secure_transport: bool = False,
        request_alias: str | None = None,
        resolved: dict[str, Any] | None = None,
        resources: list[str] | None = None,
        via_service: str | None = None,
    ) -> None:
        self.principal = principal
        self.region = region
        self.request_id = request_id
        self.now = now
        self.operation = operation
        self.source_ip = source_ip
        self.user_agent = user_agent
        self.secure_transport = secure_transport
        self.request_alias = request_alias
        self.resolved = {} if resolved is None else resolved
        self.resources = [] if resources is None else resources
        self.via_service = via_service
