"""Where grants are stored, and reading them: the document kinds, a grant by id, a key's
grants, and the grants a request's GrantTokens name. Used by the grant operations
(``grants.py``) and by authorization (``runtime.py``'s grant cache, ``authorization.py``), which
need only storage.

Grants live in the document store: ``kms-grant`` (scope key ARN, name grant id), with two
indexes, ``kms-grant-name`` (scope key ARN, name = grant name -> grant id, for idempotent
retries) and ``kms-grant-retiring`` (scope retiring principal, name grant id -> key ARN)."""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from openkms.domain.grant import GrantRecord, decode_token
from openkms.errors import InvalidGrantTokenException, ValidationException
from openkms.storage.base import Storage

MAX_GRANT_TOKENS = 10
KIND = "kms-grant"
KIND_NAME = "kms-grant-name"
KIND_RETIRING = "kms-grant-retiring"


def load_grant(storage: Storage, key_arn: str, grant_id: str) -> GrantRecord | None:
    doc = storage.get_document(KIND, key_arn, grant_id)
    return None if doc is None else GrantRecord.from_doc(orjson.loads(doc))


def grants_for_key(storage: Storage, key_arn: str) -> list[GrantRecord]:
    found: list[GrantRecord] = []
    after: str | None = None
    while True:
        page = storage.list_documents(KIND, key_arn, after=after, limit=1000)
        found += [GrantRecord.from_doc(orjson.loads(doc)) for _, doc in page]
        if len(page) < 1000:
            return found
        after = page[-1][0]


def grants_from_tokens(
    storage: Storage, key_arn: str, tokens: Sequence[str] | None
) -> list[GrantRecord]:
    """The grants named by a request's GrantTokens that belong to this key (effective at once)."""
    if not tokens:
        return []
    if len(tokens) > MAX_GRANT_TOKENS:
        raise ValidationException(f"At most {MAX_GRANT_TOKENS} grant tokens are allowed.")
    found = []
    for token in tokens:
        grant_id, token_key = decode_token(token)
        if token_key != key_arn:
            continue
        grant = load_grant(storage, key_arn, grant_id)
        if grant is None:
            raise InvalidGrantTokenException("Invalid grant token.")
        found.append(grant)
    return found
