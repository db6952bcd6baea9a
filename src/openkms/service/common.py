"""Small rules shared by several operation modules: paging, DryRun, tags."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any

from openkms.errors import (
    DryRunOperationException,
    InvalidMarkerException,
    LimitExceededException,
    TagException,
    UnsupportedOperationException,
)

MAX_TAGS_PER_KEY = 50


_MARKER_TAG = "okm1:"


def encode_marker(last: str) -> str:
    """An opaque pagination marker naming the last item of a page."""
    return base64.urlsafe_b64encode((_MARKER_TAG + last).encode("utf-8")).decode("ascii")


def decode_marker(marker: str | None) -> str | None:
    """The position a marker names; one this server did not issue is InvalidMarkerException."""
    if marker is None:
        return None
    try:
        raw = base64.b64decode(marker.encode("ascii"), altchars=b"-_", validate=True)
        text = raw.decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise InvalidMarkerException("Invalid marker") from exc
    if not text.startswith(_MARKER_TAG):
        raise InvalidMarkerException("Invalid marker")
    return text[len(_MARKER_TAG) :]


def page(items: Sequence[Any], limit: int, last_of: Any) -> dict[str, Any]:
    """Callers fetch ``limit + 1`` items; this decides Truncated and NextMarker."""
    if len(items) > limit:
        return {"Truncated": True, "NextMarker": encode_marker(last_of(items[limit - 1]))}
    return {"Truncated": False}


RECIPIENT_UNSUPPORTED = (
    "Recipient (attested requests from AWS Nitro Enclaves and NitroTPM) is not supported: "
    "openkms cannot verify attestation documents, so it does not answer such a request at all "
    "rather than return the plaintext unencrypted."
)


def refuse_recipient(req: dict[str, Any]) -> None:
    """Every operation with a ``Recipient`` member calls this first: an attested request, even
    with an empty RecipientInfo, is refused before anything else happens."""
    if req.get("Recipient") is not None:
        raise UnsupportedOperationException(RECIPIENT_UNSUPPORTED)


def dry_run(req: dict[str, Any]) -> None:
    """Called after every check an operation makes: a DryRun that would succeed fails so."""
    if req.get("DryRun"):
        raise DryRunOperationException(
            "The request would have succeeded, but the DryRun option is set."
        )


def tags_from_request(tags: list[dict[str, str]] | None) -> dict[str, str]:
    """Validates AWS's tag rules beyond the model's lengths: no reserved ``aws:`` prefix, no key
    twice in one request (AWS refuses the request rather than keeping one of them)."""
    result: dict[str, str] = {}
    for tag in tags or []:
        key = tag["TagKey"]
        if key.lower().startswith("aws:"):
            raise TagException("Tags beginning with aws: are reserved")
        if key in result:
            raise TagException("Duplicate tag keys")
        result[key] = tag["TagValue"]
    return result


def check_new_key_tags(tags: dict[str, str]) -> None:
    """CreateKey and ReplicateKey: more tags than a key may have is a TagException there."""
    if len(tags) > MAX_TAGS_PER_KEY:
        raise TagException("Too many tags")


def check_tag_limit(existing: dict[str, str], new: dict[str, str]) -> None:
    """TagResource: tags added to a key's existing ones beyond the quota."""
    if len(set(existing) | set(new)) > MAX_TAGS_PER_KEY:
        raise LimitExceededException(f"A KMS key can have at most {MAX_TAGS_PER_KEY} tags.")
