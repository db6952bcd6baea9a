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
