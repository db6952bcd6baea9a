"""What the evaluator knows about a request: the one input type of every policy, grant and
condition check in this package (``evaluate``, ``grants`` and ``matching`` all read it)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RequestFacts:
    principal_arn: str  # arn:aws:iam::111122223333:root | :user/alice | arn:aws:sts::...
    principal_account: str
    principal_type: str  # "Account" (root) | "User" | "AssumedRole" (| "FederatedUser",
    #                      "Service", "Federated" for trust policies)
    principal_role_arn: str | None  # the IAM role ARN behind an assumed-role session
    action: str  # "kms:Encrypt"
    resource: str  # key ARN, or "*" for key-less operations
    resource_account: str | None
    context: Mapping[str, tuple[str, ...]]  # lower-cased condition keys -> values
    # The caller's unique id: AIDA... for an IAM user, the role's AROA... for a role session
    # (how stored policies and grants name users and roles); None for the account root.
    principal_id: str | None = None
