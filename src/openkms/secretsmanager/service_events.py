"""Secrets Manager's service events: what it writes to the audit log on its own, not for an API
call, in the shape CloudTrail gives them (``eventType`` ``AwsServiceEvent``).

The rotation events AWS documents ("AWS CloudTrail entries for Secrets Manager", log entries for
rotation): ``RotationStarted``, ``RotationSucceeded``, ``RotationFailed``, and
``RotationAbandoned`` (a new AWSCURRENT version was stored by hand while a rotation was in
progress: its AWSPENDING label is removed). Each names its secret in
``additionalEventData.SecretId``, which is what EventBridge rules on these events match; the
identity is the service acting in the secret's account (``invokedBy``). There is no request,
no response and never a value: why a rotation failed (the step, the function, how it failed)
goes to the server's log, not here.

A record that cannot be written (a fail-closed audit sink that refuses) is logged and dropped:
the rotation it reports has happened, and there is no caller to fail.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, Final

from openkms.audit.events import EVENT_VERSION, event_id, event_time
from openkms.secretsmanager.deps import SecretsDeps
from openkms.secretsmanager.model import EVENT_SOURCE

ROTATION_STARTED: Final = "RotationStarted"
ROTATION_SUCCEEDED: Final = "RotationSucceeded"
ROTATION_FAILED: Final = "RotationFailed"
ROTATION_ABANDONED: Final = "RotationAbandoned"
RESOURCE_TYPE: Final = "AWS::SecretsManager::Secret"

log = logging.getLogger("openkms.secretsmanager")


def service_event(name: str, secret_arn: str, now: float) -> dict[str, Any]:
    """The record of service event ``name`` about the secret ``secret_arn``."""
    parts = secret_arn.split(":", 5)
    region, account = (parts[3], parts[4]) if len(parts) == 6 else ("", "")
    return {
        "eventVersion": EVENT_VERSION,
        "userIdentity": {"accountId": account, "invokedBy": EVENT_SOURCE},
        "eventTime": event_time(now),
        "eventSource": EVENT_SOURCE,
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": EVENT_SOURCE,
        "userAgent": EVENT_SOURCE,
        "requestParameters": None,
        "responseElements": None,
        "additionalEventData": {"SecretId": secret_arn},
        "requestID": str(uuid.uuid4()),
        "eventID": event_id(),
        "readOnly": False,
        "resources": [{"accountId": account, "type": RESOURCE_TYPE, "ARN": secret_arn}],
        "eventType": "AwsServiceEvent",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
    }


def record(deps: SecretsDeps, name: str, secret_arn: str) -> None:
    """Writes service event ``name`` (nothing when auditing is off)."""
    if deps.audit is None:
        return
    try:
        deps.audit(service_event(name, secret_arn, deps.clock.now()))
    except Exception as exc:  # a refusing sink: see the module docstring
        log.error("audit: %s of %s not recorded (%s)", name, secret_arn, type(exc).__name__)
