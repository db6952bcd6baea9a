"""Lambda-style handlers the rotation tests host with ``openkms rotation-runner``."""

from __future__ import annotations

import json
import os
from typing import Any


def record(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Writes what a handler sees (the event, the context's attributes, the environment's
    endpoint and Region) to $RECORD_FILE; fails a step named in $FAIL_STEP."""
    seen = {
        "event": event,
        "function_name": context.function_name,
        "request_id": context.aws_request_id,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "endpoint": os.environ.get("SECRETS_MANAGER_ENDPOINT"),
        "boto_endpoint": os.environ.get("AWS_ENDPOINT_URL_SECRETS_MANAGER"),
        "region": os.environ.get("AWS_REGION"),
        "root_key": os.environ.get("OPENKMS_ROOT_KEY"),
    }
    path = os.environ.get("RECORD_FILE")
    if path:
        with open(path, "a") as out:
            out.write(json.dumps(seen) + "\n")
    if event.get("Step") == os.environ.get("FAIL_STEP"):
        raise ValueError(f"told to fail at {event['Step']}")
    return {"ok": True}


def generic(event: dict[str, Any], context: Any) -> None:
    """The smallest rotation function of the Lambda contract: a new random value, no service to
    update (``FAIL_STEP`` fails one step)."""
    import boto3

    arn, token, step = event["SecretId"], event["ClientRequestToken"], event["Step"]
    client = boto3.client("secretsmanager", endpoint_url=os.environ["SECRETS_MANAGER_ENDPOINT"])
    stages = client.describe_secret(SecretId=arn)["VersionIdsToStages"]
    if "AWSCURRENT" in stages.get(token, []):
        return
    if "AWSPENDING" not in stages.get(token, []):
        raise ValueError("the version is not AWSPENDING")
    if step == os.environ.get("FAIL_STEP"):
        raise ValueError(f"told to fail at {step}")
    if step == "createSecret":
        try:
            client.get_secret_value(SecretId=arn, VersionId=token, VersionStage="AWSPENDING")
        except client.exceptions.ResourceNotFoundException:
            value = client.get_random_password(ExcludePunctuation=True)["RandomPassword"]
            client.put_secret_value(SecretId=arn, ClientRequestToken=token, SecretString=value,
                                    VersionStages=["AWSPENDING"])
    elif step == "finishSecret":
        current = next(v for v, labels in stages.items() if "AWSCURRENT" in labels)
        client.update_secret_version_stage(SecretId=arn, VersionStage="AWSCURRENT",
                                           MoveToVersionId=token, RemoveFromVersionId=current)
