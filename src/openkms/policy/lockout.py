"""AWS's policy lockout safety check.

On CreateKey, PutKeyPolicy and ReplicateKey (unless ``BypassPolicyLockoutSafetyCheck``), the new
key policy must still let the caller make a later ``PutKeyPolicy`` request; otherwise the call
fails with MalformedPolicyDocumentException. The check evaluates the new policy with the caller's
current identity policies, session policies and request context; grants cannot give
PutKeyPolicy and are not consulted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from openkms.policy.document import PolicyDocument
from openkms.policy.evaluate import RequestFacts, evaluate_kms

__all__ = ["LOCKOUT_MESSAGE", "PUT_KEY_POLICY", "lockout_check_passes"]

PUT_KEY_POLICY = "kms:PutKeyPolicy"
LOCKOUT_MESSAGE = "The new key policy will not allow you to update the key policy in the future."


def lockout_check_passes(
    policy: PolicyDocument,
    facts_for_put_key_policy: RequestFacts,
    identity_policies: Sequence[PolicyDocument],
    *,
    is_root: bool,
    session_policies: Sequence[PolicyDocument] = (),
) -> bool:
    """Whether, under ``policy``, the caller would be allowed ``kms:PutKeyPolicy`` on the key.

    ``facts_for_put_key_policy`` describes the caller and the key (its ARN and account); its
    action is taken to be ``kms:PutKeyPolicy`` whatever it says.
    """
    facts = facts_for_put_key_policy
    if facts.action != PUT_KEY_POLICY:
        facts = dataclasses.replace(facts, action=PUT_KEY_POLICY)
    decision = evaluate_kms(
        policy, identity_policies, (), facts, session_policies=session_policies, is_root=is_root
    )
    return decision.allowed
