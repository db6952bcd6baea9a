"""Console sessions, shared by every worker process through the server's storage.

The browser holds only a random session id (256 bits) in an HttpOnly cookie. The server keeps,
under the SHA-256 of that id, the signed-in principal's credentials encrypted with AES-GCM under
a key derived from the id itself (HKDF): the stored document alone opens nothing, and the cookie
alone holds no secret. The CSRF token is an HMAC of a fixed label under the session id, so any
worker can check it without keeping state, and no other page can compute it.

The one-time development sign-in link (``make run`` prints it) is stored the same way, named by
the digest of its token and deleted by the first request that presents it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from openkms.console.client import Creds
from openkms.storage.base import Storage, StorageConflict

SESSION_KIND = "console-session"
DEVLINK_KIND = "console-devlink"
SCOPE = "console"
DEVLINK_SECONDS = 24 * 3600
_ID_BYTES = 32


def _digest(label: str, token: str) -> str:
    return hashlib.sha256(f"{label}:{token}".encode()).hexdigest()


def _aead(token: str, purpose: bytes) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(
        token.encode()
    )
    return AESGCM(key)


def _seal(token: str, purpose: bytes, creds: Creds) -> str:
    nonce = secrets.token_bytes(12)
    plain = orjson.dumps(
        {"a": creds.access_key_id, "s": creds.secret_access_key, "t": creds.session_token}
    )
    sealed = nonce + _aead(token, purpose).encrypt(nonce, plain, purpose)
    return base64.b64encode(sealed).decode()


def _open(token: str, purpose: bytes, text: str) -> Creds | None:
    try:
        raw = base64.b64decode(text)
        plain = _aead(token, purpose).decrypt(raw[:12], raw[12:], purpose)
    except (InvalidTag, ValueError):
        return None
    data = orjson.loads(plain)
    return Creds(str(data["a"]), str(data["s"]), data.get("t"))


@dataclass(frozen=True, slots=True)
class Session:
    sid: str
    creds: Creds
    arn: str
    account_id: str
    created_at: float
    expires_at: float

    def __repr__(self) -> str:
        return f"Session(arn={self.arn!r}, expires_at={self.expires_at})"

    @property
    def csrf_token(self) -> str:
        mac = hmac.new(self.sid.encode(), b"openkms-console-csrf", hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def csrf_ok(self, presented: str | None) -> bool:
        return bool(presented) and hmac.compare_digest(
            self.csrf_token.encode(), str(presented).encode()
        )

    @property
    def is_root(self) -> bool:
        return self.arn.endswith(":root")


class SessionStore:
    def __init__(self, storage: Storage, ttl_seconds: float) -> None:
        self._storage = storage
        self._ttl = ttl_seconds

    def create(
        self, creds: Creds, arn: str, account_id: str, now: float, *, ends_by: float | None = None
    ) -> Session:
        """A new session (always a fresh id: an id chosen before sign-in is never adopted)."""
        self._purge(now)
        expires = now + self._ttl
        if ends_by is not None:
            expires = min(expires, ends_by)
        for _ in range(3):
            sid = secrets.token_urlsafe(_ID_BYTES)
            doc = {
                "creds": _seal(sid, b"session", creds),
                "arn": arn,
                "account": account_id,
                "created": now,
                "expires": expires,
            }
            try:
                self._storage.put_document(
                    SESSION_KIND,
                    SCOPE,
                    _digest("session", sid),
                    orjson.dumps(doc).decode(),
                    now,
                    create_only=True,
                )
            except StorageConflict:
                continue
            return Session(sid, creds, arn, account_id, now, expires)
        raise StorageConflict("could not allocate a console session id")

    def load(self, sid: str | None, now: float) -> Session | None:
        if not sid or len(sid) > 128:
            return None
        name = _digest("session", sid)
        text = self._storage.get_document(SESSION_KIND, SCOPE, name)
        if text is None:
            return None
        doc = orjson.loads(text)
        if float(doc["expires"]) <= now:
            self._storage.delete_document(SESSION_KIND, SCOPE, name)
            return None
        creds = _open(sid, b"session", str(doc["creds"]))
        if creds is None:
            return None
        return Session(
            sid, creds, str(doc["arn"]), str(doc["account"]), float(doc["created"]),
            float(doc["expires"]),
        )

    def delete(self, sid: str | None) -> None:
        if sid and len(sid) <= 128:
            self._storage.delete_document(SESSION_KIND, SCOPE, _digest("session", sid))

    def _purge(self, now: float) -> None:
        """Drops expired sessions (at each sign-in: sessions are few)."""
        for name, text in self._storage.list_documents(SESSION_KIND, SCOPE, limit=1000):
            if float(orjson.loads(text)["expires"]) <= now:
                self._storage.delete_document(SESSION_KIND, SCOPE, name)

    # -- the development sign-in link -----------------------------------------------------------
    def create_devlink(self, creds: Creds, now: float) -> str:
        token = secrets.token_urlsafe(_ID_BYTES)
        doc = {"creds": _seal(token, b"devlink", creds), "expires": now + DEVLINK_SECONDS}
        self._storage.put_document(
            DEVLINK_KIND, SCOPE, _digest("devlink", token), orjson.dumps(doc).decode(), now
        )
        return token

    def consume_devlink(self, token: str | None, now: float) -> Creds | None:
        """The link's credentials, once: the first request to delete the record wins."""
        if not token or len(token) > 128:
            return None
        name = _digest("devlink", token)
        text = self._storage.get_document(DEVLINK_KIND, SCOPE, name)
        if text is None or not self._storage.delete_document(DEVLINK_KIND, SCOPE, name):
            return None
        doc = orjson.loads(text)
        if float(doc["expires"]) <= now:
            return None
        return _open(token, b"devlink", str(doc["creds"]))
