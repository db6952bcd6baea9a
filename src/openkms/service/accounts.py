"""Accounts and their access keys: bootstrap from the command line, lookup for SigV4.

Secret access keys are stored only wrapped by the root of trust, bound to their access key id.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
from dataclasses import dataclass

from openkms.clock import Clock
from openkms.errors import AlreadyExistsException, ValidationException
from openkms.rootoftrust.aad import access_key_aad
from openkms.rootoftrust.base import RootOfTrust
from openkms.storage.base import Storage, StorageConflict
from openkms.storage.records import AccessKeyRecord, AccountRecord

_BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def new_access_key_id(prefix: str = "AKIA") -> str:
    return prefix + "".join(secrets.choice(_BASE32) for _ in range(16))


def new_secret_access_key() -> str:
    return base64.b64encode(os.urandom(30)).decode("ascii")


def new_account_id() -> str:
    return str(secrets.randbelow(9 * 10**11) + 10**11)


@dataclass(frozen=True, slots=True)
class IssuedAccessKey:
    account_id: str
    principal_arn: str
    access_key_id: str
    secret_access_key: str

    def __repr__(self) -> str:
        return f"IssuedAccessKey(access_key_id={self.access_key_id!r}, secret=<redacted>)"


def root_arn(partition: str, account_id: str) -> str:
    return f"arn:{partition}:iam::{account_id}:root"


def issue_access_key(
    storage: Storage,
    root: RootOfTrust,
    clock: Clock,
    account_id: str,
    principal_arn: str,
    *,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
) -> IssuedAccessKey:
    akid = access_key_id or new_access_key_id()
    secret = secret_access_key or new_secret_access_key()
    storage.put_access_key(
        AccessKeyRecord(
            access_key_id=akid,
            account_id=account_id,
            principal_arn=principal_arn,
            wrapped_secret=root.wrap(secret.encode("utf-8"), access_key_aad(akid)),
            status="Active",
            created_at=clock.now(),
        )
    )
    return IssuedAccessKey(account_id, principal_arn, akid, secret)


def create_account(
    storage: Storage,
    root: RootOfTrust,
    clock: Clock,
    *,
    account_id: str | None = None,
    partition: str = "aws",
) -> IssuedAccessKey:
    """A new account with a root access key, in one transaction."""
    account_id = account_id or new_account_id()
    if len(account_id) != 12 or not account_id.isdigit():
        raise ValidationException("An account id is 12 digits.")
    with storage.transaction():
        try:
            storage.put_account(AccountRecord(account_id, clock.now()))
        except StorageConflict as exc:
            raise AlreadyExistsException(f"Account {account_id} already exists.") from exc
        return issue_access_key(storage, root, clock, account_id, root_arn(partition, account_id))


def ensure_account(storage: Storage, clock: Clock, account_id: str) -> None:
    if storage.get_account(account_id) is None:
        with contextlib.suppress(StorageConflict):
            storage.put_account(AccountRecord(account_id, clock.now()))
