"""Grants and grant tokens.

A grant token (format version 1) is ``base64url("okgt1:" + grant id + ":" + key ARN)``. It is not
a secret (AWS documents grant tokens as non-secret): it only lets a request name a grant that
exists, so the grant takes effect before any cache would have seen it. A token that does not
parse, or names no grant of that key, is ``InvalidGrantTokenException``.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from dataclasses import dataclass
from typing import Any

from openkms.errors import InvalidGrantTokenException

_TOKEN_PREFIX = "okgt1:"  # noqa: S105 - a format tag, not a secret


@dataclass(frozen=True, slots=True)
class GrantRecord:
    grant_id: str
    key_arn: str
    key_id: str
    grantee_principal: str
    operations: tuple[str, ...]
    created_at: float
    issuing_account: str
    name: str | None = None
    retiring_principal: str | None = None
    encryption_context_equals: dict[str, str] | None = None
    encryption_context_subset: dict[str, str] | None = None
    # Unique ids of a grantee or retiring principal that is an IAM user or role, as they were when
    # the grant was created: the grant names those principals, not later ones of the same name.
    grantee_id: str | None = None
    retiring_id: str | None = None

    def to_doc(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> GrantRecord:
        doc = dict(doc)
        doc["operations"] = tuple(doc["operations"])
        return cls(**doc)

    def constraints(self) -> dict[str, dict[str, str]] | None:
        out: dict[str, dict[str, str]] = {}
        if self.encryption_context_equals is not None:
            out["EncryptionContextEquals"] = self.encryption_context_equals
        if self.encryption_context_subset is not None:
            out["EncryptionContextSubset"] = self.encryption_context_subset
        return out or None


def encode_token(grant_id: str, key_arn: str) -> str:
    raw = f"{_TOKEN_PREFIX}{grant_id}:{key_arn}".encode()
    return base64.urlsafe_b64encode(raw).decode("ascii")


def decode_token(token: str) -> tuple[str, str]:
    """(grant id, key ARN) named by a token."""
    try:
        raw = base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise InvalidGrantTokenException("Invalid grant token.") from exc
    if not raw.startswith(_TOKEN_PREFIX):
        raise InvalidGrantTokenException("Invalid grant token.")
    grant_id, sep, key_arn = raw[len(_TOKEN_PREFIX) :].partition(":")
    if not sep or not grant_id or not key_arn.startswith("arn:"):
        raise InvalidGrantTokenException("Invalid grant token.")
    return grant_id, key_arn
