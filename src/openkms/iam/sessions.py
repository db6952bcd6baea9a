"""STS role sessions: temporary credentials and what they carry.

A session is one document of kind ``sts-session`` named by its temporary access key id
(``ASIA...``). Its scope is ``SESSION_SCOPE`` for every account, because a signed request names
only the access key id and the server must find the session from that alone; the document holds
the account id.

The secret access key is stored wrapped by the root of trust, bound to the access key id (as
long-term access keys are). The session token is random (96 bytes, 128 characters) and only its
SHA-256 is stored; a presented token is compared with that digest in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import asdict, dataclass

import orjson

from openkms.rootoftrust.aad import STS_SESSION_KIND, STS_SESSION_SCOPE, sts_session_aad
from openkms.rootoftrust.base import RootOfTrust, RootOfTrustError
from openkms.service.accounts import new_access_key_id, new_secret_access_key
from openkms.storage.base import Storage, StorageConflict

SESSION_KIND = STS_SESSION_KIND
SESSION_SCOPE = STS_SESSION_SCOPE
SESSION_KEY_PREFIX = "ASIA"
_TOKEN_BYTES = 96


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def is_session_key(access_key_id: str) -> bool:
    return access_key_id.startswith(SESSION_KEY_PREFIX)


@dataclass(frozen=True, slots=True)
class SessionRecord:
    access_key_id: str
    account_id: str
    role_arn: str
    role_id: str
    role_name: str
    session_name: str
    arn: str  # arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION
    wrapped_secret: str  # base64
    token_sha256: str
    created_at: float
    expires_at: float
    source_arn: str
    session_policy: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    transitive_tag_keys: tuple[str, ...] = ()

    @property
    def assumed_role_id(self) -> str:
        return f"{self.role_id}:{self.session_name}"

    def __repr__(self) -> str:
        return f"SessionRecord(access_key_id={self.access_key_id!r}, arn={self.arn!r})"

    def to_json(self) -> str:
        return orjson.dumps(asdict(self)).decode()

    @classmethod
    def from_json(cls, text: str) -> SessionRecord:
        data = orjson.loads(text)
        data["tags"] = tuple((str(k), str(v)) for k, v in data.get("tags", ()))
        data["transitive_tag_keys"] = tuple(data.get("transitive_tag_keys", ()))
        return cls(**data)

    def token_matches(self, token: str | None) -> bool:
        if not token:
            return False
        return hmac.compare_digest(token_digest(token), self.token_sha256)

    def secret(self, root: RootOfTrust) -> bytes | None:
        try:
            wrapped = base64.b64decode(self.wrapped_secret)
            return root.unwrap(wrapped, sts_session_aad(self.access_key_id))
        except (RootOfTrustError, ValueError):
            return None


@dataclass(frozen=True, slots=True)
class IssuedSession:
    record: SessionRecord
    secret_access_key: str
    session_token: str

    def __repr__(self) -> str:
        return f"IssuedSession({self.record!r}, secret=<redacted>, token=<redacted>)"


def issue_session(
    storage: Storage,
    root: RootOfTrust,
    *,
    account_id: str,
    partition: str,
    role_arn: str,
    role_id: str,
    role_name: str,
    session_name: str,
    source_arn: str,
    now: float,
    duration_seconds: int,
    session_policy: str | None,
    tags: tuple[tuple[str, str], ...],
    transitive_tag_keys: tuple[str, ...],
) -> IssuedSession:
    secret = new_secret_access_key()
    token = secrets.token_urlsafe(_TOKEN_BYTES)
    for _ in range(5):
        akid = new_access_key_id(SESSION_KEY_PREFIX)
        wrapped = root.wrap(secret.encode("utf-8"), sts_session_aad(akid))
        record = SessionRecord(
            access_key_id=akid,
            account_id=account_id,
            role_arn=role_arn,
            role_id=role_id,
            role_name=role_name,
            session_name=session_name,
            arn=f"arn:{partition}:sts::{account_id}:assumed-role/{role_name}/{session_name}",
            wrapped_secret=base64.b64encode(wrapped).decode("ascii"),
            token_sha256=token_digest(token),
            created_at=now,
            expires_at=now + duration_seconds,
            source_arn=source_arn,
            session_policy=session_policy,
            tags=tags,
            transitive_tag_keys=transitive_tag_keys,
        )
        try:
            storage.put_document(
                SESSION_KIND, SESSION_SCOPE, akid, record.to_json(), now, create_only=True
            )
        except StorageConflict:
            continue
        return IssuedSession(record, secret, token)
    raise StorageConflict("could not allocate a unique session access key id")


def load_session(storage: Storage, access_key_id: str) -> SessionRecord | None:
    text = storage.get_document(SESSION_KIND, SESSION_SCOPE, access_key_id)
    if text is None:
        return None
    record = SessionRecord.from_json(text)
    return record if record.access_key_id == access_key_id else None


def purge_expired(storage: Storage, now: float, *, grace_seconds: float = 3600.0) -> int:
    """Deletes sessions that expired more than ``grace_seconds`` ago (an expired session is kept
    a while so that its use answers ExpiredToken rather than an unknown key)."""
    removed = 0
    after: str | None = None
    while True:
        batch = storage.list_documents(SESSION_KIND, SESSION_SCOPE, after=after, limit=500)
        for name, text in batch:
            if SessionRecord.from_json(text).expires_at + grace_seconds < now:
                removed += storage.delete_document(SESSION_KIND, SESSION_SCOPE, name)
        if len(batch) < 500:
            return removed
        after = batch[-1][0]
