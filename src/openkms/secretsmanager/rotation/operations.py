"""RotateSecret and CancelRotateSecret.

RotateSecret configures rotation (function, RotationRules) and, unless ``RotateImmediately`` is
false, starts one: in the same transaction it attaches AWSPENDING to the new version id (the
``ClientRequestToken``; the version has no value until the function's createSecret puts one,
as in AWS), then the four steps run in the background (``rotation.job``) and the call answers
at once, as AWS's does. A rotation whose AWSPENDING label is still on a version other than
AWSCURRENT is in progress (or failed): another RotateSecret is refused, as AWS refuses it, and
that rotation is attempted again.

The outcome (``finish_rotation``): success when the function's finishSecret moved AWSCURRENT to
the new version; then AWSPENDING is removed from it, ``LastRotatedDate`` set and the next
window computed. A failure changes nothing: AWSCURRENT stays where it was, and AWSPENDING on the
new version, where AWS leaves it.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from typing import Any

from openkms.context import RequestContext
from openkms.errors import AccessDeniedException
from openkms.secretsmanager import access, service_events
from openkms.secretsmanager.deps import Handler, Params, Result, SecretsDeps
from openkms.secretsmanager.errors import (
    InvalidParameterException,
    InvalidRequestException,
)
from openkms.secretsmanager.lookup import MARKED_FOR_DELETION, resolve
from openkms.secretsmanager.rotation.job import RotationJob, RotationOutcome, run_steps
from openkms.secretsmanager.rotation.rules import (
    RotationSchedule,
    ScheduleError,
    from_timestamp,
    parse_rules,
)
from openkms.secretsmanager.rotation.setup import CANNOT_INVOKE, RotationSetup, setup_for
from openkms.storage.secrets import SecretRecord

log = logging.getLogger("openkms.secretsmanager.rotation")

AWSCURRENT = "AWSCURRENT"
AWSPENDING = "AWSPENDING"
IN_PROGRESS = "A previous rotation isn't complete. That rotation will be reattempted."
NO_FUNCTION = "No Lambda rotation function ARN is associated with this secret."


# --- rules as stored ---------------------------------------------------------------------------
def rules_doc(schedule: RotationSchedule) -> dict[str, Any]:
    """RotationRules as DescribeSecret shows them (what was given)."""
    doc: dict[str, Any] = {}
    if schedule.after_days is not None:
        doc["AutomaticallyAfterDays"] = schedule.after_days
    if schedule.expression is not None:
        doc["ScheduleExpression"] = schedule.expression
    if schedule.duration is not None:
        doc["Duration"] = schedule.duration
    return doc


def stored_schedule(secret: SecretRecord) -> RotationSchedule | None:
    rules = secret.rotation_rules
    if not rules:
        return None
    try:
        return parse_rules(
            rules.get("AutomaticallyAfterDays"),
            rules.get("ScheduleExpression"),
            rules.get("Duration"),
        )
    except ScheduleError:  # stored by a check that was since tightened: no automatic rotation
        return None


def next_window_start(schedule: RotationSchedule | None, last: float) -> float | None:
    if schedule is None:
        return None
    return schedule.window_after(from_timestamp(last))[0].timestamp()


def in_progress(secret: SecretRecord) -> str | None:
    """The version id of an unfinished rotation (AWSPENDING on a version that is not
    AWSCURRENT), or None."""
    pending = secret.stages.get(AWSPENDING)
    if pending is None or pending == secret.stages.get(AWSCURRENT):
        return None
    return pending


# --- the operations ----------------------------------------------------------------------------
def rotate_secret(deps: SecretsDeps, ctx: RequestContext, req: Params) -> Result:
    secret = resolve(deps, ctx, req["SecretId"], "secretsmanager:RotateSecret", req)
    if req.get("ExternalSecretRotationMetadata") or req.get("ExternalSecretRotationRoleArn"):
        raise InvalidRequestException(
            "Managed external secret rotation is not supported by this server."
        )
    setup = setup_for(deps)
    function_arn = req.get("RotationLambdaARN") or secret.rotation_lambda_arn
    if not function_arn:
        raise InvalidRequestException(NO_FUNCTION)
    if setup.function_for(function_arn, secret.account_id) is None:
        raise AccessDeniedException(CANNOT_INVOKE)
    # AWS: "You also need lambda:InvokeFunction permissions on the rotation function."
    access.authorize(deps, ctx, "lambda:InvokeFunction", function_arn, None, {})
    schedule: RotationSchedule | None
    if req.get("RotationRules") is not None:
        given = req["RotationRules"]
        try:
            schedule = parse_rules(
                given.get("AutomaticallyAfterDays"),
                given.get("ScheduleExpression"),
                given.get("Duration"),
            )
        except ScheduleError as exc:
            raise InvalidParameterException(str(exc)) from None
    else:
        schedule = stored_schedule(secret)
    immediately = req.get("RotateImmediately", True) is not False
    token = req.get("ClientRequestToken") or str(uuid.uuid4())
    now = deps.clock.now()
    storage = deps.storage
    retry: str | None = None
    with storage.transaction():
        current = storage.get_secret(secret.arn, lock=True)
        if current is None:
            raise InvalidRequestException(MARKED_FOR_DELETION)
        pending = in_progress(current)
        if pending is not None and not (immediately and pending == token):
            retry = pending
        else:
            stages = dict(current.stages)
            if immediately and pending is None:
                if storage.get_secret_version(current.arn, token) is not None:
                    raise InvalidRequestException(
                        "A version with this ClientRequestToken already exists; "
                        "give a new ClientRequestToken to start a rotation."
                    )
                stages[AWSPENDING] = token
            base = current.last_rotated_at or now
            storage.update_secret(
                dataclasses.replace(
                    current,
                    rotation_enabled=True,
                    rotation_lambda_arn=function_arn,
                    rotation_rules=rules_doc(schedule) if schedule is not None else {},
                    next_rotation_at=next_window_start(schedule, base),
                    stages=stages,
                    last_changed_at=now,
                )
            )
    if retry is not None:
        if current.rotation_enabled:
            start_rotation(deps, setup, current, retry)
        raise InvalidRequestException(IN_PROGRESS)
    result: Result = {"ARN": secret.arn, "Name": secret.name}
    if immediately:
        start_rotation(deps, setup, current, token, function_arn)
        result["VersionId"] = token
    return result


def cancel_rotate_secret(deps: SecretsDeps, ctx: RequestContext, req: Params) -> Result:
    secret = resolve(deps, ctx, req["SecretId"], "secretsmanager:CancelRotateSecret", req)
    storage = deps.storage
    with storage.transaction():
        current = storage.get_secret(secret.arn, lock=True)
        if current is None:
            raise InvalidRequestException(MARKED_FOR_DELETION)
        pending = in_progress(current)
        # The function ARN and the rules stay (DescribeSecret shows them, RotationEnabled
        # false); a running rotation stops before its next step (``still_wanted``).
        storage.update_secret(
            dataclasses.replace(
                current,
                rotation_enabled=False,
                next_rotation_at=None,
                last_changed_at=deps.clock.now(),
            )
        )
    result: Result = {"ARN": secret.arn, "Name": secret.name}
    if pending is not None:
        result["VersionId"] = pending
    return result


# --- running and finishing a rotation ------------------------------------------------------------
def start_rotation(
    deps: SecretsDeps,
    setup: RotationSetup,
    secret: SecretRecord,
    token: str,
    function_arn: str | None = None,
) -> bool:
    """Runs the rotation to ``token`` in the background (unless one of this secret already runs
    in this process)."""
    first = _job(setup, secret, token, function_arn)
    if first is None:
        return False

    def work() -> None:
        job: RotationJob | None = first
        while job is not None:
            _run(deps, job)
            # A rotation started while this one ran (a new AWSCURRENT by hand abandoned this
            # one, then RotateSecret) found this secret's slot taken and was not submitted: it
            # runs now, or its AWSPENDING would stay with nothing to finish it.
            job = _next_job(deps, setup, job)

    return setup.executor.submit(secret.arn, work)


def _job(
    setup: RotationSetup, secret: SecretRecord, token: str, function_arn: str | None
) -> RotationJob | None:
    arn = function_arn or secret.rotation_lambda_arn
    function = None if arn is None else setup.function_for(arn, secret.account_id)
    if function is None:
        log.warning("rotation of %s not started: its function is not configured", secret.arn)
        return None
    return RotationJob(
        function=function,
        secret_arn=secret.arn,
        token=token,
        rotation_token=str(uuid.uuid4()),
        region=secret.region,
        endpoint=setup.endpoint,
    )


def _run(deps: SecretsDeps, job: RotationJob) -> None:
    def still_wanted() -> bool:
        latest = deps.storage.get_secret(job.secret_arn)
        return (
            latest is not None
            and latest.rotation_enabled
            and latest.deleted_at is None
            and latest.stages.get(AWSPENDING) == job.token
        )

    service_events.record(deps, service_events.ROTATION_STARTED, job.secret_arn)
    finish_rotation(deps, job, run_steps(job, still_wanted=still_wanted))


def _next_job(deps: SecretsDeps, setup: RotationSetup, done: RotationJob) -> RotationJob | None:
    """The rotation of the same secret that is pending now, if it is another than ``done``."""
    latest = deps.storage.get_secret(done.secret_arn)
    if latest is None or not latest.rotation_enabled or latest.deleted_at is not None:
        return None
    pending = in_progress(latest)
    if pending is None or pending == done.token:
        return None
    return _job(setup, latest, pending, None)


def finish_rotation(deps: SecretsDeps, job: RotationJob, outcome: RotationOutcome) -> bool:
    """Records a rotation's outcome (and its RotationSucceeded or RotationFailed event); True
    when it succeeded."""
    succeeded = _finish(deps, job, outcome)
    if succeeded is not None:
        name = service_events.ROTATION_SUCCEEDED if succeeded else service_events.ROTATION_FAILED
        service_events.record(deps, name, job.secret_arn)
    return bool(succeeded)


def _finish(deps: SecretsDeps, job: RotationJob, outcome: RotationOutcome) -> bool | None:
    """The outcome stored; None when the secret is gone."""
    storage = deps.storage
    with storage.transaction():
        secret = storage.get_secret(job.secret_arn, lock=True)
        if secret is None:
            return None
        if outcome.succeeded and secret.stages.get(AWSCURRENT) != job.token:
            outcome = RotationOutcome(
                False, "finishSecret", "the function did not make the new version AWSCURRENT"
            )
        if not outcome.succeeded:
            log.warning(
                "rotation of %s to version %s failed at %s: %s (AWSCURRENT is unchanged)",
                job.secret_arn,
                job.token,
                outcome.failed_step,
                outcome.reason,
            )
            return False
        now = deps.clock.now()
        stages = dict(secret.stages)
        if stages.get(AWSPENDING) == job.token:
            del stages[AWSPENDING]
        schedule = stored_schedule(secret) if secret.rotation_enabled else None
        storage.update_secret(
            dataclasses.replace(
                secret,
                stages=stages,
                last_rotated_at=now,
                next_rotation_at=next_window_start(schedule, now),
            )
        )
    # Written here, not through an API call: this process's GetSecretValue cache must not
    # serve the AWSPENDING label it just removed (other processes see it within their TTL).
    invalidate_reads(deps)
    log.info("rotated secret %s to version %s", job.secret_arn, job.token)
    return True


def invalidate_reads(deps: SecretsDeps) -> None:
    """After a write that bypassed the dispatcher (which invalidates around every write)."""
    if deps.read_cache is not None:
        deps.read_cache.invalidate()


OPERATIONS: dict[str, Handler] = {
    "RotateSecret": rotate_secret,
    "CancelRotateSecret": cancel_rotate_secret,
}
