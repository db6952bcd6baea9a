"""RotateSecret, CancelRotateSecret, the rotation's outcome and automatic rotation, on the memory
storage with a fixed clock: what each writes (labels, rules, dates) and AWS's errors. The
functions here are commands that do nothing or fail; the real ones (the four steps calling back
into the API) run against a server in test_rotation_postgres.py."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from openkms.clock import FixedClock
from openkms.errors import AccessDeniedException
from openkms.rootoftrust.memory import MemoryRoot
from openkms.secretsmanager import versions
from openkms.secretsmanager.deps import SecretsDeps
from openkms.secretsmanager.errors import (
    InvalidParameterException,
    InvalidRequestException,
    ResourceNotFoundException,
)
from openkms.secretsmanager.read_cache import ReadCache, resolve_for_read
from openkms.secretsmanager.rotation import operations as ops
from openkms.secretsmanager.rotation.job import RotationJob, RotationOutcome
from openkms.secretsmanager.rotation.schedule import run_due_rotations
from openkms.secretsmanager.rotation.setup import setup_for
from openkms.service.context import Principal, RequestContext
from openkms.service.runtime import Runtime, RuntimeSettings
from openkms.storage.memory import MemoryStorage
from openkms.storage.records import AccountRecord
from openkms.storage.secrets import SecretRecord

ACCOUNT = "111122223333"
REGION = "us-east-1"
FUNCTION = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:rotator"
FAILING = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:failing"
OTHER_ACCOUNT_FUNCTION = f"arn:aws:lambda:{REGION}:444455556666:function:rotator"
START = datetime(2026, 12, 6, 15, 20, tzinfo=UTC).timestamp()
TOKEN = "a" * 36


class World:
    def __init__(self, functions_file: Path) -> None:
        self.clock = FixedClock(START)
        self.storage = MemoryStorage()
        self.storage.put_account(AccountRecord(ACCOUNT, START))
        runtime = Runtime(
            self.storage,
            MemoryRoot(),
            self.clock,
            monotonic=self.clock.now,
            settings=RuntimeSettings(rotation_functions=str(functions_file)),
        )
        # What the audit log receives, and a read cache that never expires on its own (so that
        # only an invalidation makes it read again).
        self.audit: list[dict[str, Any]] = []
        self.deps = SecretsDeps(storage=self.storage, runtime=runtime, clock=self.clock,
                                audit=self.audit.append, read_cache=ReadCache(3600.0))
        principal = Principal(ACCOUNT, f"arn:aws:iam::{ACCOUNT}:root", "root", "AKIA", ACCOUNT)
        self.ctx = RequestContext(principal, REGION, "req-1", START, "RotateSecret")

    def secret(self, name: str = "db", **changes: Any) -> SecretRecord:
        record = SecretRecord(
            arn=f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}-AbCdEf",
            account_id=ACCOUNT,
            region=REGION,
            name=name,
            created_at=START,
            last_changed_at=START,
            stages={"AWSCURRENT": "v1"},
        )
        record = dataclasses.replace(record, **changes)
        self.storage.insert_secret(record)
        return record

    def get(self, arn: str) -> SecretRecord:
        secret = self.storage.get_secret(arn)
        assert secret is not None
        return secret

    def rotate(self, **req: Any) -> dict[str, Any]:
        return ops.rotate_secret(self.deps, self.ctx, {"SecretId": "db", **req})

    def wait(self) -> None:
        assert setup_for(self.deps).executor.wait_idle(30)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    functions = tmp_path / "functions.toml"
    functions.write_text(
        f'[functions."{FUNCTION}"]\ncommand = ["true"]\n\n'
        f'[functions."{FAILING}"]\ncommand = ["false"]\n\n'
        f'[functions."{OTHER_ACCOUNT_FUNCTION}"]\ncommand = ["true"]\n'
    )
    made = World(functions)
    yield made
    made.wait()


def iso(seconds: float | None) -> str | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC).isoformat()[:16]


def test_rotate_secret_configures_and_attaches_awspending(world: World) -> None:
    secret = world.secret()
    answer = world.rotate(
        ClientRequestToken=TOKEN,
        RotationLambdaARN=FUNCTION,
        RotationRules={"ScheduleExpression": "cron(0 4 * * ? *)", "Duration": "2h"},
    )
    assert answer == {"ARN": secret.arn, "Name": "db", "VersionId": TOKEN}
    stored = world.get(secret.arn)
    assert stored.stages == {"AWSCURRENT": "v1", "AWSPENDING": TOKEN}
    assert stored.rotation_enabled and stored.rotation_lambda_arn == FUNCTION
    assert stored.rotation_rules == {"ScheduleExpression": "cron(0 4 * * ? *)", "Duration": "2h"}
    assert iso(stored.next_rotation_at) == "2026-12-07T04:00"
    world.wait()
    # "true" did nothing: finishSecret never moved AWSCURRENT, so the rotation failed and the
    # labels are where they were.
    assert world.get(secret.arn).stages == {"AWSCURRENT": "v1", "AWSPENDING": TOKEN}
    assert world.get(secret.arn).last_rotated_at is None


def test_a_finished_rotation_moves_dates_and_drops_awspending(world: World) -> None:
    secret = world.secret()
    world.rotate(ClientRequestToken=TOKEN, RotationLambdaARN=FUNCTION,
                 RotationRules={"AutomaticallyAfterDays": 7})
    world.wait()
    # What the function's finishSecret does: AWSCURRENT to the new version.
    stored = world.get(secret.arn)
    world.storage.update_secret(dataclasses.replace(
        stored, stages={"AWSCURRENT": TOKEN, "AWSPREVIOUS": "v1", "AWSPENDING": TOKEN}))
    world.clock.advance(60)
    job = RotationJob(setup_for(world.deps).functions[FUNCTION], secret.arn, TOKEN, "rt", REGION,
                      None)
    assert ops.finish_rotation(world.deps, job, RotationOutcome(True))
    done = world.get(secret.arn)
    assert done.stages == {"AWSCURRENT": TOKEN, "AWSPREVIOUS": "v1"}
    assert done.last_rotated_at == START + 60
    assert iso(done.next_rotation_at) == "2026-12-13T00:00"


def test_a_failed_rotation_changes_nothing(world: World) -> None:
    secret = world.secret()
    world.rotate(ClientRequestToken=TOKEN, RotationLambdaARN=FAILING)
    world.wait()
    stored = world.get(secret.arn)
    assert stored.stages == {"AWSCURRENT": "v1", "AWSPENDING": TOKEN}
    assert stored.last_rotated_at is None


def test_a_rotation_in_progress_refuses_another(world: World) -> None:
    world.secret(stages={"AWSCURRENT": "v1", "AWSPENDING": "v2"}, rotation_enabled=True,
                 rotation_lambda_arn=FAILING)
    with pytest.raises(InvalidRequestException, match="A previous rotation isn't complete"):
        world.rotate(ClientRequestToken=TOKEN)
    # AWSPENDING on the AWSCURRENT version is a finished rotation: a new one may start.
    world.secret("done", stages={"AWSCURRENT": "v1", "AWSPENDING": "v1"})
    answer = ops.rotate_secret(world.deps, world.ctx, {
        "SecretId": "done", "ClientRequestToken": TOKEN, "RotationLambdaARN": FAILING})
    assert answer["VersionId"] == TOKEN


def test_the_same_token_again_is_the_same_rotation(world: World) -> None:
    world.secret()
    first = world.rotate(ClientRequestToken=TOKEN, RotationLambdaARN=FAILING)
    assert world.rotate(ClientRequestToken=TOKEN, RotationLambdaARN=FAILING) == first


@pytest.mark.parametrize(
    ("req", "error", "message"),
    [
        ({"RotationLambdaARN": f"{FUNCTION}-unknown"}, AccessDeniedException,
         "Secrets Manager cannot invoke the specified Lambda function. Ensure that the function "
         "policy grants access to the principal secretsmanager.amazonaws.com."),
        ({"RotationLambdaARN": OTHER_ACCOUNT_FUNCTION}, AccessDeniedException,
         "cannot invoke the specified Lambda function"),
        ({}, InvalidRequestException,
         "No Lambda rotation function ARN is associated with this secret."),
        ({"RotationLambdaARN": FUNCTION, "RotationRules": {"ScheduleExpression": "rate(1 hour)"}},
         InvalidParameterException, "4 to 23"),
        ({"RotationLambdaARN": FUNCTION,
          "RotationRules": {"AutomaticallyAfterDays": 3, "ScheduleExpression": "rate(3 days)"}},
         InvalidParameterException, "both"),
        ({"RotationLambdaARN": FUNCTION, "ExternalSecretRotationRoleArn": "arn:aws:iam::1:role/r"},
         InvalidRequestException, "not supported"),
    ],
)
def test_refusals(world: World, req: dict[str, Any], error: type[Exception], message: str) -> None:
    secret = world.secret()
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        world.rotate(**req)
    assert world.get(secret.arn) == secret  # nothing was written


def test_unknown_and_deleted_secrets(world: World) -> None:
    with pytest.raises(ResourceNotFoundException):
        world.rotate(RotationLambdaARN=FUNCTION)
    world.secret(deleted_at=START + 86400)
    with pytest.raises(InvalidRequestException, match="marked for deletion"):
        world.rotate(RotationLambdaARN=FUNCTION)


def test_rotate_immediately_false_only_schedules(world: World) -> None:
    secret = world.secret()
    answer = world.rotate(RotationLambdaARN=FUNCTION, RotateImmediately=False,
                          RotationRules={"ScheduleExpression": "rate(10 days)"})
    assert answer == {"ARN": secret.arn, "Name": "db"}
    stored = world.get(secret.arn)
    assert stored.stages == {"AWSCURRENT": "v1"}
    assert stored.rotation_enabled and iso(stored.next_rotation_at) == "2026-12-16T00:00"


def test_cancel_turns_rotation_off_and_names_the_pending_version(world: World) -> None:
    secret = world.secret(stages={"AWSCURRENT": "v1", "AWSPENDING": "v2"}, rotation_enabled=True,
                          rotation_lambda_arn=FUNCTION, next_rotation_at=START,
                          rotation_rules={"AutomaticallyAfterDays": 1})
    answer = ops.cancel_rotate_secret(world.deps, world.ctx, {"SecretId": secret.arn})
    assert answer == {"ARN": secret.arn, "Name": "db", "VersionId": "v2"}
    stored = world.get(secret.arn)
    assert not stored.rotation_enabled and stored.next_rotation_at is None
    assert stored.rotation_lambda_arn == FUNCTION  # kept, as DescribeSecret shows it
    assert "VersionId" not in ops.cancel_rotate_secret(
        world.deps, world.ctx, {"SecretId": world.secret("idle").arn})


def test_the_scheduler_starts_due_rotations_once(world: World) -> None:
    due = world.secret("due", rotation_enabled=True, rotation_lambda_arn=FAILING,
                       rotation_rules={"AutomaticallyAfterDays": 1}, next_rotation_at=START - 1)
    world.secret("later", rotation_enabled=True, rotation_lambda_arn=FAILING,
                 rotation_rules={"AutomaticallyAfterDays": 1}, next_rotation_at=START + 3600)
    world.secret("off", rotation_enabled=False, rotation_lambda_arn=FAILING,
                 next_rotation_at=START - 1)
    assert run_due_rotations(world.deps, START) == [due.arn]
    world.wait()
    pending = world.get(due.arn).stages["AWSPENDING"]
    assert pending != "v1"
    # The failed rotation keeps its label: the scheduler does not start another.
    assert run_due_rotations(world.deps, START + 60) == []
    assert world.get(due.arn).stages["AWSPENDING"] == pending


# --- service events and the read cache ------------------------------------------------------------
def events(world: World) -> list[tuple[str, str]]:
    """The service events written (the KMS calls made for values write records too)."""
    return [(r["eventName"], r["additionalEventData"]["SecretId"])
            for r in world.audit if r["eventType"] == "AwsServiceEvent"]


def test_rotation_outcomes_are_service_events(world: World) -> None:
    secret = world.secret()
    world.rotate(ClientRequestToken=TOKEN, RotationLambdaARN=FUNCTION)
    world.wait()  # "true" never moves AWSCURRENT: a failed rotation
    assert events(world) == [("RotationStarted", secret.arn), ("RotationFailed", secret.arn)]
    stored = world.get(secret.arn)
    world.storage.update_secret(dataclasses.replace(
        stored, stages={"AWSCURRENT": TOKEN, "AWSPREVIOUS": "v1", "AWSPENDING": TOKEN}))
    job = RotationJob(setup_for(world.deps).functions[FUNCTION], secret.arn, TOKEN,
                      "rotation-token-never-logged", REGION, None)
    assert ops.finish_rotation(world.deps, job, RotationOutcome(True))
    assert events(world)[-1] == ("RotationSucceeded", secret.arn)
    record = world.audit[-1]
    assert record["eventType"] == "AwsServiceEvent"
    assert record["eventSource"] == "secretsmanager.amazonaws.com"
    assert record["userIdentity"] == {"accountId": ACCOUNT,
                                      "invokedBy": "secretsmanager.amazonaws.com"}
    assert (record["awsRegion"], record["recipientAccountId"]) == (REGION, ACCOUNT)
    assert record["requestParameters"] is None and record["responseElements"] is None
    assert record["resources"] == [
        {"accountId": ACCOUNT, "type": "AWS::SecretsManager::Secret", "ARN": secret.arn}]
    assert "rotation-token" not in str(world.audit)


def test_a_finished_rotation_is_not_hidden_by_the_read_cache(world: World) -> None:
    """finish_rotation writes AWSPENDING's removal itself, not through the dispatcher: the
    process's GetSecretValue cache must not keep serving the label."""
    secret = world.secret(stages={"AWSCURRENT": TOKEN, "AWSPREVIOUS": "v1", "AWSPENDING": TOKEN})

    def cached_stages() -> dict[str, str]:
        found = resolve_for_read(world.deps, world.ctx, secret.arn,
                                 "secretsmanager:GetSecretValue", {})
        return dict(found.stages)

    assert cached_stages()["AWSPENDING"] == TOKEN
    job = RotationJob(setup_for(world.deps).functions[FUNCTION], secret.arn, TOKEN, "rt", REGION,
                      None)
    assert ops.finish_rotation(world.deps, job, RotationOutcome(True))
    assert cached_stages() == {"AWSCURRENT": TOKEN, "AWSPREVIOUS": "v1"}


def test_a_new_current_value_by_hand_abandons_the_rotation(world: World) -> None:
    secret = world.secret()
    world.rotate(ClientRequestToken=TOKEN, RotationLambdaARN=FAILING)
    world.wait()
    assert world.get(secret.arn).stages == {"AWSCURRENT": "v1", "AWSPENDING": TOKEN}
    # As the function's createSecret puts it: AWSPENDING only, nothing abandoned.
    versions.put_secret_value(world.deps, world.ctx, {
        "SecretId": secret.arn, "ClientRequestToken": TOKEN, "SecretString": "pending",
        "VersionStages": ["AWSPENDING"]})
    assert world.get(secret.arn).stages == {"AWSCURRENT": "v1", "AWSPENDING": TOKEN}
    # A new AWSCURRENT by hand: the rotation is abandoned, and another may start.
    answer = versions.put_secret_value(world.deps, world.ctx, {
        "SecretId": secret.arn, "ClientRequestToken": "b" * 36, "SecretString": "by hand"})
    assert answer["VersionStages"] == ["AWSCURRENT"]
    assert world.get(secret.arn).stages == {"AWSCURRENT": "b" * 36, "AWSPREVIOUS": "v1"}
    assert events(world)[-1] == ("RotationAbandoned", secret.arn)
    assert world.rotate(ClientRequestToken="c" * 36)["VersionId"] == "c" * 36
