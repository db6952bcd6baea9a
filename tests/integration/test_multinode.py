"""Several openkms nodes on one PostgreSQL database: shared state, caches that converge within
the 1 s TTL, races that end in AWS's answers, a scheduler that runs each job once, failures
(PostgreSQL restarted under load, a node SIGKILLed under load) and backups that restore.

Every node is a real ``openkms serve`` process; PostgreSQL is a throwaway cluster of this test
process (tests/integration/pg.py). Skipped, loudly, only when PostgreSQL is not installed.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from openkms.config import Settings
from openkms.domain.key import KeyRecord
from openkms.http.wiring import open_storage
from openkms.storage.base import StorageUnavailable
from openkms.storage.migrations import load_migrations, split_statements
from openkms.storage.records import AccountRecord
from openkms.storage.sqlite import SqliteStorage
from tests.components import unavailable
from tests.conftest import (
    Server,
    ServerProcess,
    child_env,
    openkms_command,
    server_from_account,
)
from tests.integration.pg import PgCluster, require_postgres, shared_cluster

pytestmark = pytest.mark.timeout(180)

DAY = 86_400
# Settings.cache_ttl_seconds: how long a node may serve what another node changed.
CACHE_TTL_SECONDS = 1.0


# --- fixtures and helpers -------------------------------------------------------------------------
@pytest.fixture(scope="session")
def pg_cluster() -> PgCluster:
    require_postgres()
    return shared_cluster()


@pytest.fixture
def database(pg_cluster: PgCluster) -> Iterator[str]:
    url = pg_cluster.create_database()
    try:
        yield url
    finally:
        pg_cluster.drop_database(url)


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> str:
    proc = subprocess.run(
        openkms_command(*args),
        capture_output=True,
        text=True,
        env=child_env(env),
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise AssertionError(f"openkms {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc.stdout


def root_key_b64(data_dir: Path) -> str:
    """OPENKMS_ROOT_KEY for the plain root key file a first ``accounts create`` wrote."""
    return (data_dir / "root.key").read_text().split()[-1]


def copy_root_key(src_dir: Path, dest_dir: Path) -> None:
    dest_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src_dir / "root.key", dest_dir / "root.key")
    (dest_dir / "root.key").chmod(0o600)


@dataclass
class Nodes:
    """N ``openkms serve`` processes on one database, the same root key, one account."""

    database: str
    account: dict[str, str]
    procs: list[ServerProcess]
    clients: dict[tuple[int, str], BaseClient] = field(default_factory=dict)

    def server(self, i: int) -> Server:
        proc = self.procs[i]
        return server_from_account(proc.endpoint, proc.data_dir, self.account)

    def kms(self, i: int) -> BaseClient:
        if (i, "kms") not in self.clients:
            self.clients[(i, "kms")] = kms_client(self.server(i))
        return self.clients[(i, "kms")]

    def kms_as(self, i: int, access_key_id: str, secret: str) -> BaseClient:
        return kms_client(self.server(i), access_key_id=access_key_id, secret_access_key=secret)

    def iam(self, i: int) -> BaseClient:
        server = self.server(i)
        return session().client(
            "iam",
            endpoint_url=server.endpoint,
            region_name=server.region,
            aws_access_key_id=server.access_key_id,
            aws_secret_access_key=server.secret_access_key,
            config=Config(retries={"max_attempts": 1}),
        )

    def stop(self) -> None:
        for proc in self.procs:
            proc.stop()


def start_nodes(
    tmp_path_factory: pytest.TempPathFactory,
    database: str,
    count: int = 2,
    extra_args: tuple[str, ...] = (),
    *,
    restore: Nodes | None = None,
) -> Nodes:
    """The first ``accounts create`` writes node 0's root key; the others get a copy (0600).
    With ``restore``: that deployment's root key and account, on a restored database."""
    dirs = [tmp_path_factory.mktemp(f"node{i}") for i in range(count)]
    if restore is None:
        account = json.loads(
            cli("accounts", "create", "--data-dir", str(dirs[0]), "--database", database)
        )
    else:
        copy_root_key(restore.procs[0].data_dir, dirs[0])
        account = restore.account
    for d in dirs[1:]:
        copy_root_key(dirs[0], d)
    # AWS's request quotas (CreateKey, CreateAlias … a few a second) would answer this load
    # with ThrottlingException: these tests are about storage, so the nodes run without them.
    args = ("--database", database, "--no-rate-limits", *extra_args)
    procs = [ServerProcess(d, extra_args=args) for d in dirs]
    with ThreadPoolExecutor(len(procs)) as pool:
        list(pool.map(ServerProcess.start, procs))
    return Nodes(database, account, procs)


@pytest.fixture
def nodes_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., Nodes]]:
    started: list[Nodes] = []

    def start(
        database: str,
        count: int = 2,
        extra_args: tuple[str, ...] = (),
        restore: Nodes | None = None,
    ) -> Nodes:
        nodes = start_nodes(tmp_path_factory, database, count, extra_args, restore=restore)
        started.append(nodes)
        return nodes

    try:
        yield start
    finally:
        for nodes in started:
            nodes.stop()


_SESSION: list[boto3.session.Session] = []


def session() -> boto3.session.Session:
    if not _SESSION:
        _SESSION.append(boto3.session.Session())
    return _SESSION[0]


def kms_client(
    server: Server,
    *,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    **config: Any,
) -> BaseClient:
    """Like tests.conftest.make_client, but every client comes from one boto3 session, which
    loads the service model once (a new session per client costs ~0.1 s each). Call from the
    main thread only."""
    options: dict[str, Any] = {"retries": {"max_attempts": 1}}
    options.update(config)
    return session().client(
        "kms",
        endpoint_url=server.endpoint,
        region_name=server.region,
        aws_access_key_id=access_key_id or server.access_key_id,
        aws_secret_access_key=secret_access_key or server.secret_access_key,
        config=Config(**options),
    )


def error_code(exc: ClientError) -> str:
    return str(exc.response["Error"]["Code"])


def eventually(check: Callable[[], bool], limit: float = 5.0) -> None:
    """Polls ``check`` every 50 ms until it holds; fails after ``limit`` seconds."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > limit:
            raise AssertionError(f"not so after {limit}s")
        time.sleep(0.05)


def honoured_within_ttl(check: Callable[[], bool], changed_at: float) -> float:
    """Asks the other node every 50 ms from ``changed_at`` (when the changing call returned)
    until ``check`` holds. Every request that starts a TTL (1 s) or more after the change must
    see it: the other node cached the old state before the change, so that entry has expired
    by then. Returns how long after the change the first request that saw it started."""
    while True:
        started = time.monotonic() - changed_at
        if check():
            return started
        if started >= CACHE_TTL_SECONDS:
            raise AssertionError(
                f"a request that started {started:.2f}s after the change still saw the old state"
            )
        time.sleep(0.05)


def fails_with(call: Callable[[], Any], *codes: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            call()
        except ClientError as exc:
            if error_code(exc) in codes:
                return True
            raise
        return False

    return check


def succeeds(call: Callable[[], Any], *tolerated: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            call()
        except ClientError as exc:
            if error_code(exc) in tolerated:
                return False
            raise
        return True

    return check


def race(calls: list[Callable[[], Any]]) -> list[tuple[str, Any]]:
    """Runs every call at once (a barrier releases them together); ("ok", result) or
    ("<ErrorCode>", exception) each."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> tuple[str, Any]:
        barrier.wait()
        try:
            return "ok", call()
        except ClientError as exc:
            return error_code(exc), exc

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def counts(outcomes: list[tuple[str, Any]]) -> dict[str, int]:
    found: dict[str, int] = {}
    for code, _ in outcomes:
        found[code] = found.get(code, 0) + 1
    return found


# --- shared state and caches ---------------------------------------------------------------------
def test_a_change_through_one_node_is_honoured_by_the_other_within_a_second(
    database: str, nodes_factory: Callable[..., Nodes]
) -> None:
    nodes = nodes_factory(database)
    a, b = nodes.kms(0), nodes.kms(1)
    key_id = a.create_key(Description="shared")["KeyMetadata"]["KeyId"]
    assert b.describe_key(KeyId=key_id)["KeyMetadata"]["Description"] == "shared"

    def encrypt_b() -> Any:
        return b.encrypt(KeyId=key_id, Plaintext=b"p")

    # Disabled through A: B refuses within the TTL (B has the enabled key cached).
    encrypt_b()
    a.disable_key(KeyId=key_id)
    honoured_within_ttl(fails_with(encrypt_b, "DisabledException"), time.monotonic())
    a.enable_key(KeyId=key_id)
    honoured_within_ttl(succeeds(encrypt_b, "DisabledException"), time.monotonic())

    # Material rotated through A: B encrypts under the new version within the TTL.
    def material_of_b() -> str:
        blob = encrypt_b()["CiphertextBlob"]
        return str(b.decrypt(CiphertextBlob=blob)["KeyMaterialId"])

    before = material_of_b()
    a.rotate_key_on_demand(KeyId=key_id)
    rotated_at = time.monotonic()
    rotations = a.list_key_rotations(KeyId=key_id, IncludeKeyMaterial="ALL_KEY_MATERIAL")
    current = [r for r in rotations["Rotations"] if r["KeyMaterialState"] == "CURRENT"]
    assert len(current) == 1 and current[0]["KeyMaterialId"] != before
    honoured_within_ttl(lambda: material_of_b() == current[0]["KeyMaterialId"], rotated_at)

    # Key policy changed through A: B denies within the TTL.
    root = f"arn:aws:iam::{nodes.account['AccountId']}:root"
    deny_encrypt = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": root}, "Action": "kms:*", "Resource": "*"},
            {
                "Effect": "Deny",
                "Principal": {"AWS": root},
                "Action": "kms:Encrypt",
                "Resource": "*",
            },
        ],
    }
    encrypt_b()
    a.put_key_policy(KeyId=key_id, PolicyName="default", Policy=json.dumps(deny_encrypt))
    honoured_within_ttl(fails_with(encrypt_b, "AccessDeniedException"), time.monotonic())


def test_revoked_grants_and_deleted_access_keys_stop_working_on_every_node(
    database: str, nodes_factory: Callable[..., Nodes]
) -> None:
    nodes = nodes_factory(database)
    a = nodes.kms(0)
    key_arn = a.create_key()["KeyMetadata"]["Arn"]

    # A grant to another account, used through B, revoked through A.
    other = json.loads(
        cli(
            "accounts", "create", "--data-dir", str(nodes.procs[0].data_dir), "--database", database
        )
    )
    grantee_b = nodes.kms_as(1, other["AccessKeyId"], other["SecretAccessKey"])

    def grantee_encrypts() -> Any:
        return grantee_b.encrypt(KeyId=key_arn, Plaintext=b"p")

    grant = a.create_grant(KeyId=key_arn, GranteePrincipal=other["Arn"], Operations=["Encrypt"])
    eventually(succeeds(grantee_encrypts, "AccessDeniedException", "UnrecognizedClientException"))
    a.revoke_grant(KeyId=key_arn, GrantId=grant["GrantId"])
    honoured_within_ttl(fails_with(grantee_encrypts, "AccessDeniedException"), time.monotonic())

    # An IAM user's access key, used through B, deleted through A.
    iam = nodes.iam(0)
    user = f"u-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    allow = {"Effect": "Allow", "Action": "kms:*", "Resource": "*"}
    iam.put_user_policy(
        UserName=user,
        PolicyName="kms",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [allow]}),
    )
    created = iam.create_access_key(UserName=user)["AccessKey"]
    user_b = nodes.kms_as(1, created["AccessKeyId"], created["SecretAccessKey"])

    def user_encrypts() -> Any:
        return user_b.encrypt(KeyId=key_arn, Plaintext=b"p")

    eventually(succeeds(user_encrypts, "UnrecognizedClientException"))
    iam.delete_access_key(UserName=user, AccessKeyId=created["AccessKeyId"])
    honoured_within_ttl(
        fails_with(user_encrypts, "UnrecognizedClientException", "InvalidClientTokenId"),
        time.monotonic(),
    )


# --- races ----------------------------------------------------------------------------------------
def test_racing_writes_on_two_nodes_end_in_aws_answers(
    database: str, nodes_factory: Callable[..., Nodes]
) -> None:
    # Two nodes of two workers each: four processes write at once.
    nodes = nodes_factory(database, 2, ("--workers", "2"))
    clients = [kms_client(nodes.server(i % 2)) for i in range(32)]
    a = nodes.kms(0)
    key_id = a.create_key()["KeyMetadata"]["KeyId"]

    # One alias name, sixteen CreateAlias at once: one wins, the others AlreadyExists.
    name = f"alias/race-{uuid.uuid4().hex[:8]}"
    outcomes = race(
        [lambda c=c: c.create_alias(AliasName=name, TargetKeyId=key_id) for c in clients[:16]]
    )
    assert counts(outcomes) == {"ok": 1, "AlreadyExistsException": 15}, counts(outcomes)

    # The alias limit (50 a key): 48 exist, six different names race for the last two places.
    for i in range(47):
        a.create_alias(AliasName=f"alias/fill-{key_id[:8]}-{i}", TargetKeyId=key_id)
    outcomes = race(
        [
            lambda c=c, i=i: c.create_alias(AliasName=f"{name}-{i}", TargetKeyId=key_id)
            for i, c in enumerate(clients[:6])
        ]
    )
    assert counts(outcomes) == {"ok": 2, "LimitExceededException": 4}, counts(outcomes)
    assert len(a.list_aliases(KeyId=key_id, Limit=100)["Aliases"]) == 50

    # The tag limit (50 a key) the same way.
    a.tag_resource(KeyId=key_id, Tags=[{"TagKey": f"t{i}", "TagValue": "v"} for i in range(48)])
    outcomes = race(
        [
            lambda c=c, i=i: c.tag_resource(
                KeyId=key_id, Tags=[{"TagKey": f"n{i}", "TagValue": "v"}]
            )
            for i, c in enumerate(clients[:6])
        ]
    )
    assert counts(outcomes) == {"ok": 2, "LimitExceededException": 4}, counts(outcomes)
    assert len(a.list_resource_tags(KeyId=key_id, Limit=100)["Tags"]) == 50

    # A named grant is created once, however many nodes are asked at once.
    outcomes = race(
        [
            lambda c=c: c.create_grant(
                KeyId=key_id,
                GranteePrincipal=nodes.account["Arn"],
                Operations=["Decrypt"],
                Name="g",
            )
            for c in clients[:12]
        ]
    )
    assert counts(outcomes) == {"ok": 12}, counts(outcomes)
    assert len({result["GrantId"] for _, result in outcomes}) == 1
    assert len(a.list_grants(KeyId=key_id)["Grants"]) == 1

    # RotateKeyOnDemand thirty-two times at once: the limit of 25 holds, one version is current.
    rotated = a.create_key()["KeyMetadata"]["KeyId"]
    outcomes = race([lambda c=c: c.rotate_key_on_demand(KeyId=rotated) for c in clients])
    assert counts(outcomes) == {"ok": 25, "LimitExceededException": 7}, counts(outcomes)
    listed = a.list_key_rotations(KeyId=rotated, IncludeKeyMaterial="ALL_KEY_MATERIAL", Limit=100)
    versions = listed["Rotations"]
    assert len(versions) == 26 and len({v["KeyMaterialId"] for v in versions}) == 26
    assert [v["KeyMaterialState"] for v in versions].count("CURRENT") == 1
    assert sum(1 for v in versions if v.get("RotationType") == "ON_DEMAND") == 25


def test_schedule_key_deletion_racing_encrypt(
    database: str, nodes_factory: Callable[..., Nodes]
) -> None:
    nodes = nodes_factory(database)
    a = nodes.kms(0)
    key_id = a.create_key()["KeyMetadata"]["KeyId"]
    clients = [kms_client(nodes.server(i % 2)) for i in range(8)]
    stop = time.monotonic() + 2.5
    blobs: list[bytes] = []
    errors: list[str] = []
    lock = threading.Lock()

    def encrypt_loop(client: BaseClient) -> None:
        while time.monotonic() < stop:
            try:
                blob = client.encrypt(KeyId=key_id, Plaintext=b"payload")["CiphertextBlob"]
            except ClientError as exc:
                with lock:
                    errors.append(error_code(exc))
                continue
            with lock:
                blobs.append(blob)

    with ThreadPoolExecutor(8) as pool:
        loops = [pool.submit(encrypt_loop, c) for c in clients[:6]]
        time.sleep(0.5)
        outcomes = race(
            [
                lambda c=c: c.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
                for c in clients[6:]
            ]
        )
        for loop in loops:
            loop.result()
    # One ScheduleKeyDeletion wins; the other finds the key pending deletion.
    assert counts(outcomes) == {"ok": 1, "KMSInvalidStateException": 1}, counts(outcomes)
    # Every Encrypt either succeeded or was refused for the key's state: nothing else.
    assert blobs and errors, (len(blobs), errors[:3])
    assert set(errors) == {"KMSInvalidStateException"}, set(errors)
    # No corrupted state: after cancelling, the ciphertexts given out decrypt (50 of them).
    a.cancel_key_deletion(KeyId=key_id)
    a.enable_key(KeyId=key_id)
    for blob in blobs[:: max(1, len(blobs) // 50)]:
        assert a.decrypt(CiphertextBlob=blob)["Plaintext"] == b"payload"


# --- the scheduler --------------------------------------------------------------------------------
def test_the_scheduler_runs_each_job_once_across_nodes(
    database: str, nodes_factory: Callable[..., Nodes], tmp_path: Path
) -> None:
    nodes = nodes_factory(database, 1)
    a = nodes.kms(0)
    rotating = [a.create_key()["KeyMetadata"]["Arn"] for _ in range(5)]
    for arn in rotating:
        a.enable_key_rotation(KeyId=arn, RotationPeriodInDays=90)
    doomed = [a.create_key()["KeyMetadata"]["Arn"] for _ in range(2)]
    for arn in doomed:
        a.schedule_key_deletion(KeyId=arn, PendingWindowInDays=7)
    # Three scheduler processes at once, each a node of its own (root key given by environment).
    env = {"OPENKMS_ROOT_KEY": root_key_b64(nodes.procs[0].data_dir)}
    now = str(time.time() + 91 * DAY)
    runs = []
    for i in range(3):
        command = openkms_command(
            "scheduler",
            "run-once",
            "--data-dir",
            str(tmp_path / f"s{i}"),
            "--database",
            database,
            "--now",
            now,
        )
        runs.append(
            subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env(env)
            )
        )
    reports = []
    for proc in runs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
        reports.append(json.loads(out))
    rotated = [arn for r in reports for arn in r["Rotated"]]
    deleted = [arn for r in reports for arn in r["Deleted"]]
    assert sorted(rotated) == sorted(rotating), reports
    assert sorted(deleted) == sorted(doomed), reports
    for arn in rotating:
        rotations = a.list_key_rotations(KeyId=arn)["Rotations"]
        assert [r["RotationType"] for r in rotations] == ["AUTOMATIC"], rotations
    for arn in doomed:
        with pytest.raises(ClientError) as caught:
            a.describe_key(KeyId=arn)
        assert error_code(caught.value) == "NotFoundException"


# --- failures -------------------------------------------------------------------------------------
@dataclass
class Load:
    """A few seconds of CreateKey and Encrypt from a pool of boto3 clients; every acknowledged
    request is recorded, every failure classified."""

    clients: list[tuple[int, BaseClient]]
    key_id: str
    created: list[str] = field(default_factory=list)
    encrypted: list[tuple[bytes, bytes]] = field(default_factory=list)
    failures: list[tuple[int, float, str]] = field(default_factory=list)  # node, when, what
    # node, when the request was sent: a response can be read (and timed) after its node has
    # been killed, but no request sent after the kill can be answered by that node.
    successes: list[tuple[int, float]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def _one(self, node: int, client: BaseClient, n: int) -> None:
        sent = time.monotonic()
        try:
            if n % 2 == 0:
                key = client.create_key(Description="load")["KeyMetadata"]["KeyId"]
                with self.lock:
                    self.created.append(key)
            else:
                plaintext = uuid.uuid4().bytes
                blob = client.encrypt(KeyId=self.key_id, Plaintext=plaintext)["CiphertextBlob"]
                with self.lock:
                    self.encrypted.append((blob, plaintext))
        except ClientError as exc:
            status = exc.response["ResponseMetadata"]["HTTPStatusCode"]
            with self.lock:
                self.failures.append((node, time.monotonic(), f"{status} {error_code(exc)}"))
            return
        except (BotoCoreError, KeyError) as exc:
            # No answer, or a cut one (a 200 whose body ends early when the node dies while
            # sending it): not acknowledged.
            with self.lock:
                self.failures.append((node, time.monotonic(), type(exc).__name__))
            time.sleep(0.05)
            return
        with self.lock:
            self.successes.append((node, sent))

    def _loop(self, node: int, client: BaseClient) -> None:
        n = 0
        while not self.stop.is_set():
            self._one(node, client, n)
            n += 1

    def run(self, seconds_before: float, event: Callable[[], None], seconds_after: float) -> float:
        """Load for ``seconds_before``, then ``event()`` under load, then ``seconds_after`` more;
        returns the monotonic time the event ended."""
        with ThreadPoolExecutor(len(self.clients)) as pool:
            loops = [pool.submit(self._loop, node, c) for node, c in self.clients]
            time.sleep(seconds_before)
            event()
            ended = time.monotonic()
            time.sleep(seconds_after)
            self.stop.set()
            for loop in loops:
                loop.result()
        return ended

    def verify_through(self, client: BaseClient) -> None:
        """Every acknowledged CreateKey and Encrypt is there."""
        for key_id in self.created:
            assert client.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
        for blob, plaintext in self.encrypted:
            assert client.decrypt(CiphertextBlob=blob)["Plaintext"] == plaintext


def load_client(server: Server) -> BaseClient:
    """No retries at all: every failure is seen (botocore's legacy ``max_attempts: 1`` would
    still retry a 500 once)."""
    return kms_client(server, connect_timeout=2, read_timeout=20, retries={"total_max_attempts": 1})


def test_postgres_restarted_under_load_fails_retryably_then_recovers(
    nodes_factory: Callable[..., Nodes],
) -> None:
    require_postgres()
    cluster = PgCluster.create()  # its own: restarting it disturbs no other test
    try:
        database = cluster.create_database()
        nodes = nodes_factory(database, 1)
        key_id = nodes.kms(0).create_key()["KeyMetadata"]["KeyId"]
        load = Load([(0, load_client(nodes.server(0))) for _ in range(4)], key_id)
        restarted_at = load.run(1.0, lambda: cluster.restart(down_seconds=3.0), 3.0)
        # While PostgreSQL was down: retryable server errors, and nothing else.
        kinds = {what for _, _, what in load.failures}
        assert kinds == {"500 KMSInternalException"}, kinds
        # Then the node recovered on its own: requests succeed again after the restart.
        after = [at for _, at in load.successes if at > restarted_at]
        assert len(after) >= 10, f"{len(after)} successes after the restart"
        assert not [at for _, at, _ in load.failures if at > restarted_at + 2.0]
        # Nothing acknowledged was lost.
        assert len(load.created) >= 5 and len(load.encrypted) >= 5
        load.verify_through(nodes.kms(0))
        print(  # the figures of the run, shown with -s
            f"restart under load: {len(load.successes)} acknowledged, {len(load.failures)} "
            f"failed with 500 KMSInternalException, {len(after)} after the restart"
        )
    finally:
        cluster.destroy()


def test_a_node_killed_under_load_loses_nothing_it_acknowledged(
    database: str, nodes_factory: Callable[..., Nodes]
) -> None:
    nodes = nodes_factory(database)
    key_id = nodes.kms(0).create_key()["KeyMetadata"]["KeyId"]
    clients = [(i % 2, load_client(nodes.server(i % 2))) for i in range(6)]
    load = Load(clients, key_id)
    victim = nodes.procs[0].process
    assert victim is not None

    def kill_a() -> None:
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)

    killed_at = load.run(1.5, kill_a, 1.5)
    acknowledged_by_a = [at for node, at in load.successes if node == 0]
    assert acknowledged_by_a and all(at <= killed_at for at in acknowledged_by_a)
    # B never failed, and kept serving after A died.
    assert not [f for f in load.failures if f[0] == 1], load.failures[:5]
    assert len([at for node, at in load.successes if node == 1 and at > killed_at]) >= 10
    # Every request either node acknowledged is durable, as B sees it.
    load.verify_through(nodes.kms(1))
    print(  # the figures of the run, shown with -s
        f"node killed under load: {len(load.successes)} acknowledged ({len(acknowledged_by_a)} "
        f"by the killed node), {len(load.failures)} failed, all on the killed node; "
        f"{len(load.created)} keys and {len(load.encrypted)} ciphertexts verified"
    )


# --- the example proxy configurations (deploy/) ---------------------------------------------------
REPO = Path(__file__).resolve().parents[2]


def proxy_command(proxy: str, config_dir: Path, listen: int, ports: list[int]) -> list[str] | None:
    """The command that runs deploy/'s example for ``proxy`` in the foreground, its addresses
    replaced by this test's; None when the proxy is not installed."""
    binary = shutil.which(proxy) or next(
        (p for p in (f"/usr/sbin/{proxy}",) if Path(p).exists()), None
    )
    if binary is None:
        return None

    def render(text: str) -> str:
        text = text.replace("127.0.0.1:8001", f"127.0.0.1:{ports[0]}")
        text = text.replace("127.0.0.1:8002", f"127.0.0.1:{ports[1]}")
        return text.replace("listen 4566;", f"listen 127.0.0.1:{listen};").replace(
            "bind :4566", f"bind 127.0.0.1:{listen}"
        )

    if proxy == "haproxy":
        config = config_dir / "haproxy.cfg"
        config.write_text(render((REPO / "deploy/haproxy/haproxy.cfg").read_text()))
        return [binary, "-db", "-f", str(config)]
    (config_dir / "openkms.conf").write_text(
        render((REPO / "deploy/nginx/openkms.conf").read_text())
    )
    temp = "".join(
        f"    {kind}_temp_path {config_dir / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (config_dir / "nginx.conf").write_text(
        "daemon off;\nworker_processes 1;\n"
        + f"pid {config_dir / 'nginx.pid'};\nerror_log {config_dir / 'error.log'} warn;\n"
        + ("user root;\n" if os.geteuid() == 0 else "")
        + "events { worker_connections 256; }\n"
        + "http {\n    access_log off;\n"
        + temp
        + f"    include {config_dir / 'openkms.conf'};\n}}\n"
    )
    return [
        binary,
        "-c",
        str(config_dir / "nginx.conf"),
        "-p",
        str(config_dir),
        "-e",
        str(config_dir / "error.log"),
    ]


@pytest.mark.parametrize("proxy", ["nginx", "haproxy"])
def test_the_example_proxy_configs_balance_and_fail_over(
    proxy: str, database: str, nodes_factory: Callable[..., Nodes], tmp_path: Path
) -> None:
    from tests.integration.pg import free_port

    nodes = nodes_factory(database)
    listen = free_port()
    command = proxy_command(proxy, tmp_path, listen, [p.port for p in nodes.procs])
    if command is None:
        unavailable(proxy, f"{proxy} is not installed (apt-get install -y {proxy})")
    with open(tmp_path / "proxy.log", "wb") as log:
        running = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        front = nodes.server(0)
        front = Server(
            f"http://127.0.0.1:{listen}",
            front.access_key_id,
            front.secret_access_key,
            front.account_id,
            front.data_dir,
        )
        kms = kms_client(front)

        def proxy_up() -> bool:
            try:
                kms.list_keys(Limit=1)
            except BotoCoreError:
                return False
            return True

        eventually(proxy_up, 10)
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        for i in range(20):
            blob = kms.encrypt(KeyId=key_id, Plaintext=b"%d" % i)["CiphertextBlob"]
            assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"%d" % i
        # Both nodes served (each writes its own audit log).
        audits = [p.data_dir / "audit.log" for p in nodes.procs]

        def served(audit: Path) -> bool:
            text = audit.read_bytes() if audit.exists() else b""
            return b'"eventName":"Encrypt"' in text or b'"eventName":"Decrypt"' in text

        eventually(lambda: all(served(a) for a in audits))
        # One node dies: every request through the proxy still succeeds, on the other.
        victim = nodes.procs[0].process
        assert victim is not None
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        for i in range(20):
            blob = kms.encrypt(KeyId=key_id, Plaintext=b"%d" % i)["CiphertextBlob"]
            assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"%d" % i
    finally:
        running.terminate()
        try:
            running.wait(timeout=10)
        except subprocess.TimeoutExpired:
            running.kill()
            running.wait(timeout=10)


# --- backups --------------------------------------------------------------------------------------
def test_a_sqlite_backup_of_a_live_server_restores_into_a_working_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    live_dir = tmp_path_factory.mktemp("sqlite-live")
    account = json.loads(cli("accounts", "create", "--data-dir", str(live_dir)))
    live = ServerProcess(live_dir, extra_args=("--no-rate-limits",))
    live.start()
    restored: ServerProcess | None = None
    try:
        kms = kms_client(server_from_account(live.endpoint, live_dir, account))
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        blob = kms.encrypt(KeyId=key_id, Plaintext=b"kept")["CiphertextBlob"]
        # SQLite's online backup while the server runs: `sqlite3 DB ".backup COPY"` as
        # docs/deployment.md says, or the same API from Python where the shell is not installed.
        new_dir = tmp_path_factory.mktemp("sqlite-restored")
        shell = shutil.which("sqlite3")
        if shell:
            subprocess.run(
                [shell, str(live_dir / "openkms.db"), f".backup '{new_dir / 'openkms.db'}'"],
                check=True,
                timeout=60,
            )
        else:
            with (
                sqlite3.connect(live_dir / "openkms.db") as source,
                sqlite3.connect(new_dir / "openkms.db") as target,
            ):
                source.backup(target)
        kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)  # after the backup
        # Without its root key the backup is useless: a server with another one refuses it.
        other = base64.b64encode(b"\x01" * 32).decode()
        refused = subprocess.run(
            openkms_command("accounts", "create", "--data-dir", str(new_dir)),
            capture_output=True,
            text=True,
            env=child_env({"OPENKMS_ROOT_KEY": other}),
            timeout=60,
            check=False,
        )
        assert refused.returncode != 0 and "root key" in refused.stderr.lower(), refused.stderr
        copy_root_key(live_dir, new_dir)
        restored = ServerProcess(new_dir, extra_args=("--no-rate-limits",))
        restored.start()
        old = kms_client(server_from_account(restored.endpoint, new_dir, account))
        assert old.decrypt(CiphertextBlob=blob)["Plaintext"] == b"kept"
        assert old.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
    finally:
        live.stop()
        if restored is not None:
            restored.stop()


def test_a_pg_dump_restores_into_a_new_database_and_a_working_server(
    pg_cluster: PgCluster,
    database: str,
    nodes_factory: Callable[..., Nodes],
    tmp_path: Path,
) -> None:
    nodes = nodes_factory(database, 1)
    kms = nodes.kms(0)
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/kept", TargetKeyId=key_id)
    kms.rotate_key_on_demand(KeyId=key_id)
    blob = kms.encrypt(KeyId="alias/kept", Plaintext=b"kept")["CiphertextBlob"]
    dump = tmp_path / "openkms.dump"
    subprocess.run(
        [pg_cluster.client_tool("pg_dump"), "-Fc", "-f", str(dump), "-d", database],
        check=True,
        capture_output=True,
        timeout=60,
    )
    restored_db = pg_cluster.create_database()
    try:
        subprocess.run(
            [
                pg_cluster.client_tool("pg_restore"),
                "--no-owner",
                "--exit-on-error",
                "-d",
                restored_db,
                str(dump),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        nodes.stop()  # the original is gone; only the restored copy remains
        # The same root key, the restored database: the old account, key and ciphertext work.
        old = nodes_factory(restored_db, 1, restore=nodes).kms(0)
        assert old.decrypt(CiphertextBlob=blob)["Plaintext"] == b"kept"
        assert old.describe_key(KeyId="alias/kept")["KeyMetadata"]["KeyId"] == key_id
    finally:
        pg_cluster.drop_database(restored_db)


# --- the storage under several nodes -------------------------------------------------------------
def test_nodes_starting_together_apply_the_migrations_once(
    pg_cluster: PgCluster, database: str
) -> None:
    from openkms.storage.postgres import PostgresStorage

    barrier = threading.Barrier(4)

    def open_one(_: int) -> PostgresStorage:
        barrier.wait()
        return PostgresStorage(database)

    with ThreadPoolExecutor(4) as pool:
        storages = list(pool.map(open_one, range(4)))
    try:
        import psycopg

        with psycopg.connect(database) as conn:
            versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
        assert sorted(versions) == [v for v, _, _ in load_migrations()]
    finally:
        for storage in storages:
            storage.close()


def test_a_key_read_in_a_transaction_is_held_until_commit(database: str) -> None:
    from openkms.storage.postgres import PostgresStorage

    node_a, node_b = PostgresStorage(database), PostgresStorage(database)
    try:
        node_a.put_account(AccountRecord("111122223333", 1.0))
        key = KeyRecord(
            arn="arn:aws:kms:us-east-1:111122223333:key/k1",
            key_id="k1",
            account_id="111122223333",
            region="us-east-1",
            key_spec="SYMMETRIC_DEFAULT",
            key_usage="ENCRYPT_DECRYPT",
            origin="AWS_KMS",
            key_manager="CUSTOMER",
            description="0",
            state="Enabled",
            created_at=1.0,
            policy="{}",
        )
        node_a.insert_key(key)
        entered = threading.Event()
        seen: list[str] = []

        def b_increments() -> None:
            entered.wait()
            with node_b.transaction():
                fresh = node_b.get_key(key.arn)  # waits for A's commit
                assert fresh is not None
                seen.append(fresh.description)
                node_b.update_key(fresh.with_changes(description=str(int(fresh.description) + 1)))

        worker = threading.Thread(target=b_increments)
        worker.start()
        with node_a.transaction():
            fresh = node_a.get_key(key.arn)
            assert fresh is not None
            entered.set()
            time.sleep(0.3)  # B is blocked on the row meanwhile
            assert not seen
            node_a.update_key(fresh.with_changes(description=str(int(fresh.description) + 1)))
        worker.join(timeout=10)
        assert seen == ["1"]
        final = node_a.get_key(key.arn)
        assert final is not None and final.description == "2"
    finally:
        node_a.close()
        node_b.close()


def test_a_conflict_in_a_transaction_leaves_it_usable_and_a_failed_one_never_commits(
    database: str,
) -> None:
    from openkms.storage.base import StorageConflict
    from openkms.storage.postgres import PostgresStorage
    from openkms.storage.records import MaterialRecord

    storage = PostgresStorage(database)
    try:
        storage.put_account(AccountRecord("111122223333", 1.0))
        key = KeyRecord(
            arn="arn:aws:kms:us-east-1:111122223333:key/k1",
            key_id="k1",
            account_id="111122223333",
            region="us-east-1",
            key_spec="SYMMETRIC_DEFAULT",
            key_usage="ENCRYPT_DECRYPT",
            origin="AWS_KMS",
            key_manager="CUSTOMER",
            description="d",
            state="Enabled",
            created_at=1.0,
            policy="{}",
        )
        # A uniqueness conflict is reported and the transaction goes on (as on SQLite).
        with storage.transaction():
            storage.insert_key(key)
            with pytest.raises(StorageConflict):
                storage.insert_key(key)
            storage.put_tags(key.arn, {"a": "1"})
        assert storage.get_tags(key.arn) == {"a": "1"}
        # A statement that failed otherwise (here a reference to a missing key) leaves nothing
        # to commit: leaving the block says so instead of PostgreSQL's silent ROLLBACK.
        with pytest.raises(StorageUnavailable), storage.transaction():
            storage.put_tags(key.arn, {"b": "2"})
            with contextlib.suppress(StorageConflict):
                storage.put_material(MaterialRecord("arn:missing", "m", b"w", 1.0, "CURRENT"))
        assert storage.get_tags(key.arn) == {"a": "1"}
    finally:
        storage.close()


def test_postgres_is_chosen_by_url_and_an_unreachable_one_is_unavailable(tmp_path: Path) -> None:
    from tests.integration.pg import free_port

    url = f"postgresql://openkms:hunter2@127.0.0.1:{free_port()}/nowhere"
    started = time.monotonic()
    with pytest.raises(StorageUnavailable) as caught:
        open_storage(Settings(data_dir=str(tmp_path), database=url))
    assert time.monotonic() - started < 15
    assert "hunter2" not in str(caught.value) and "127.0.0.1" in str(caught.value)


def test_a_sqlite_database_of_schema_4_keeps_its_material_order(tmp_path: Path) -> None:
    """Migration 0005 numbers existing material versions; SQLite and PostgreSQL then order by
    (created_at, seq) alike."""
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL)")
    for version, name, sql in load_migrations():
        if version > 4:
            break
        for statement in split_statements(sql):
            conn.execute(statement.replace("BYTEA", "BLOB"))
        conn.execute("INSERT INTO schema_migrations VALUES (?, ?)", (version, name))
    conn.execute(
        "INSERT INTO kms_keys(arn, account_id, region, key_id, state, doc) "
        "VALUES ('k', 'a', 'r', 'k', 'Enabled', ?)",
        # A key's document as schema 4 wrote it (migration 0008 reads it to fill the key search
        # columns).
        (json.dumps({
            "arn": "k", "key_id": "k", "account_id": "a", "region": "r",
            "key_spec": "SYMMETRIC_DEFAULT", "key_usage": "ENCRYPT_DECRYPT", "origin": "AWS_KMS",
            "key_manager": "CUSTOMER", "description": "", "state": "Enabled",
            "created_at": 1.0, "policy": "{}",
        }),),
    )  # fmt: skip
    for material_id, at in [("m2", 2.0), ("m1", 1.0), ("m3", 2.0)]:
        conn.execute(
            "INSERT INTO key_materials VALUES ('k', ?, x'00', ?, 'CURRENT', '{}')",
            (material_id, at),
        )
    conn.close()
    storage = SqliteStorage(path)
    try:
        assert [m.material_id for m in storage.list_materials("k")] == ["m1", "m2", "m3"]
    finally:
        storage.close()
