"""From a verified signature to a Principal: access keys, STS sessions, and the dev mode.

An access key id resolves to
- the account root (a key whose principal is ``arn:...:root``),
- an IAM user (a key whose principal is the user's ARN; the user must still exist), or
- an STS role session (a temporary ``ASIA...`` key): the request must carry the session's token
  (``X-Amz-Security-Token``), checked in constant time against its SHA-256, and the session
  must not have expired.

Keys and their unwrapped secrets are cached for ``ttl`` seconds, so a deleted or deactivated key
stops working within that bound on every process. Expiry is checked on every request.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass

from openkms.clock import Clock, SystemClock
from openkms.errors import ExpiredTokenException, UnrecognizedClientException
from openkms.iam.sessions import is_session_key, load_session, token_digest
from openkms.iam.store import IamStore, name_from_arn
from openkms.rootoftrust.aad import access_key_aad
from openkms.rootoftrust.base import RootOfTrust, RootOfTrustError
from openkms.service.accounts import root_arn
from openkms.service.caches import TtlCache
from openkms.service.context import Principal
from openkms.storage.base import Storage

MSG_INVALID_TOKEN = "The security token included in the request is invalid."  # noqa: S105
MSG_EXPIRED_TOKEN = "The security token included in the request is expired"  # noqa: S105


@dataclass(frozen=True, slots=True)
class _Entry:
    principal: Principal
    secret: bytes
    token_sha256: str | None = None  # set for STS sessions
    expires_at: float | None = None

    def __repr__(self) -> str:
        return f"_Entry(principal={self.principal!r}, secret=<redacted>)"


class Identities:
    """Resolves access key ids to principals and secrets, with a short-lived cache."""

    def __init__(
        self,
        storage: Storage,
        root: RootOfTrust,
        partition: str,
        ttl: float,
        clock: Clock | None = None,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        self._storage = storage
        self._root = root
        self._partition = partition
        self._clock: Clock = clock or SystemClock()
        kwargs = {} if monotonic is None else {"clock": monotonic}
        self._cache: TtlCache[str, _Entry] = TtlCache(50_000, ttl, **kwargs)

    def _load(self, access_key_id: str) -> _Entry | None:
        entry = self._cache.get(access_key_id)
        if entry is not None:
            return entry
        entry = (
            self._load_session(access_key_id)
            if is_session_key(access_key_id)
            else self._load_access_key(access_key_id)
        )
        if entry is not None:
            self._cache.put(access_key_id, entry)
        return entry

    def _load_access_key(self, access_key_id: str) -> _Entry | None:
        record = self._storage.get_access_key(access_key_id)
        if record is None or record.status != "Active":
            return None
        try:
            secret = self._root.unwrap(record.wrapped_secret, access_key_aad(access_key_id))
        except RootOfTrustError:
            return None
        if record.principal_arn.endswith(":root"):
            principal = Principal(
                account_id=record.account_id,
                arn=record.principal_arn,
                kind="root",
                access_key_id=access_key_id,
                user_id=record.account_id,
            )
            return _Entry(principal, secret)
        store = IamStore(self._storage, record.account_id, self._partition)
        user = store.get_user(name_from_arn(record.principal_arn))
        if user is None or user.arn != record.principal_arn:
            return None
        principal = Principal(
            account_id=record.account_id,
            arn=user.arn,
            kind="user",
            access_key_id=access_key_id,
            user_id=user.user_id,
            tags=user.tags,
        )
        return _Entry(principal, secret)

    def _load_session(self, access_key_id: str) -> _Entry | None:
        session = load_session(self._storage, access_key_id)
        if session is None:
            return None
        secret = session.secret(self._root)
        if secret is None:
            return None
        principal = Principal(
            account_id=session.account_id,
            arn=session.arn,
            kind="assumed-role",
            access_key_id=access_key_id,
            user_id=session.assumed_role_id,
            tags=session.tags,
        )
        return _Entry(principal, secret, session.token_sha256, session.expires_at)

    def secret_for(self, access_key_id: str) -> bytes | None:
        """The secret to check the signature with (an expired session's too: its requests are
        answered ExpiredToken, after the signature is found good)."""
        entry = self._load(access_key_id)
        return None if entry is None else entry.secret

    def principal_for(self, access_key_id: str, session_token: str | None = None) -> Principal:
        """The principal of a request whose signature was verified with ``secret_for``.

        ``session_token`` is the request's ``X-Amz-Security-Token``: required (and checked) for
        STS session keys, refused for long-term keys, as AWS does."""
        entry = self._load(access_key_id)
        if entry is None:
            raise UnrecognizedClientException(MSG_INVALID_TOKEN)
        if entry.token_sha256 is None:
            if session_token:
                raise UnrecognizedClientException(MSG_INVALID_TOKEN)
            return entry.principal
        if not session_token or not hmac.compare_digest(
            token_digest(session_token), entry.token_sha256
        ):
            raise UnrecognizedClientException(MSG_INVALID_TOKEN)
        if entry.expires_at is not None and self._clock.now() >= entry.expires_at:
            raise ExpiredTokenException(MSG_EXPIRED_TOKEN)
        return entry.principal

    def permissive_principal(self, account_id: str, access_key_id: str) -> Principal:
        return Principal(
            account_id=account_id,
            arn=root_arn(self._partition, account_id),
            kind="root",
            access_key_id=access_key_id,
            user_id=account_id,
        )
