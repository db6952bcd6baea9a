"""Console sessions over the in-memory storage: what is stored, expiry, the one-time link, the
CSRF token; and the metrics snapshot the overview charts read."""

from __future__ import annotations

import json

from openkms.console.client import Creds
from openkms.console.overview import metrics_snapshot
from openkms.console.sessions import DEVLINK_KIND, SCOPE, SESSION_KIND, SessionStore
from openkms.storage.memory import MemoryStorage

CREDS = Creds("AKIAEXAMPLEEXAMPLE01", "s3cr3t/abcdefghijklmnopqrstuvwxyz0123456", "token-xyz")


def test_a_session_stores_no_secret_and_opens_only_with_its_id() -> None:
    storage = MemoryStorage()
    store = SessionStore(storage, ttl_seconds=60)
    session = store.create(CREDS, "arn:aws:iam::111122223333:root", "111122223333", 1000.0)
    [(name, doc)] = storage.list_documents(SESSION_KIND, SCOPE)
    assert session.sid not in name and session.sid not in doc
    assert CREDS.secret_access_key not in doc and "token-xyz" not in doc
    loaded = store.load(session.sid, 1001.0)
    assert loaded is not None and loaded.creds == CREDS and loaded.is_root
    assert store.load(session.sid[:-1] + ("A" if session.sid[-1] != "A" else "B"), 1001.0) is None
    assert store.load("x" * 500, 1001.0) is None and store.load(None, 1001.0) is None


def test_a_session_expires_and_is_deleted() -> None:
    storage = MemoryStorage()
    store = SessionStore(storage, ttl_seconds=60)
    session = store.create(CREDS, "arn:aws:iam::111122223333:user/u", "111122223333", 1000.0)
    assert store.load(session.sid, 1059.9) is not None
    assert store.load(session.sid, 1060.0) is None
    assert storage.list_documents(SESSION_KIND, SCOPE) == []
    short = store.create(CREDS, "arn", "1", 2000.0, ends_by=2010.0)
    assert short.expires_at == 2010.0


def test_each_sign_in_is_a_new_id_and_sign_out_deletes_it() -> None:
    store = SessionStore(MemoryStorage(), ttl_seconds=60)
    first = store.create(CREDS, "arn", "1", 0.0)
    second = store.create(CREDS, "arn", "1", 0.0)
    assert first.sid != second.sid and first.csrf_token != second.csrf_token
    store.delete(first.sid)
    assert store.load(first.sid, 1.0) is None and store.load(second.sid, 1.0) is not None


def test_the_csrf_token() -> None:
    session = SessionStore(MemoryStorage(), ttl_seconds=60).create(CREDS, "arn", "1", 0.0)
    assert session.csrf_ok(session.csrf_token)
    assert not session.csrf_ok(None) and not session.csrf_ok("")
    assert not session.csrf_ok(session.csrf_token[:-1])
    assert session.sid not in session.csrf_token


def test_the_dev_link_works_once_and_expires() -> None:
    storage = MemoryStorage()
    store = SessionStore(storage, ttl_seconds=60)
    token = store.create_devlink(CREDS, 0.0)
    [(_, doc)] = storage.list_documents(DEVLINK_KIND, SCOPE)
    assert token not in doc and CREDS.secret_access_key not in doc
    assert store.consume_devlink(token, 1.0) == CREDS
    assert store.consume_devlink(token, 2.0) is None
    late = store.create_devlink(CREDS, 0.0)
    assert store.consume_devlink(late, 10 * 86400.0) is None
    assert store.consume_devlink("guess", 1.0) is None


def test_metrics_snapshot() -> None:
    text = "\n".join([
        'openkms_requests_total{operation="Encrypt",outcome="ok"} 7.0',
        'openkms_requests_total{operation="Encrypt",outcome="AccessDeniedException"} 2.0',
        'openkms_throttled_requests_total{operation="Encrypt"} 1.0',
        'openkms_request_duration_seconds_sum{operation="Encrypt"} 0.5',
        'openkms_request_duration_seconds_count{operation="Encrypt"} 9.0',
        'openkms_cache_hits_total{cache="keys"} 3.0',
        "",
    ])
    snapshot = metrics_snapshot(text)
    assert json.loads(json.dumps(snapshot)) == {"Encrypt": {
        "requests": 9.0, "errors": 2.0, "throttled": 1.0, "latency_sum": 0.5,
        "latency_count": 9.0}}
