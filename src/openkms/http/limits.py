"""Bounds on caller-chosen strings that the model leaves unbounded, checked before the service.

The botocore model bounds most members (key ids 2048, descriptions 8192, tag values 256 ...),
but an encryption context is a map of unbounded strings, and its values become the policy
condition keys ``kms:EncryptionContext:<key>``, matched against the wildcards of key policies.
Every request that names an encryption context is checked here, whoever sends it and whatever
the key's policy:

* ``EncryptionContext``, ``SourceEncryptionContext``, ``DestinationEncryptionContext``: the
  keys and values of one context together hold at most ``max_chars`` characters (setting
  ``max_encryption_context_chars``, default 8192). AWS documents no number for this; 8192 is
  the bound the model gives KMS's other free text (``Description``, grant tokens).
* A grant's ``Constraints``: each of ``EncryptionContextSubset`` and
  ``EncryptionContextEquals`` holds at most 8 pairs, each value at most 384 characters, as the
  ``GrantConstraints`` documentation states.

Refusals are ``ValidationException`` in the model's wording.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, TypeGuard

from openkms.errors import ValidationException

__all__ = ["check_caller_strings"]

_CONTEXTS: Final = (
    ("EncryptionContext", "encryptionContext"),
    ("SourceEncryptionContext", "sourceEncryptionContext"),
    ("DestinationEncryptionContext", "destinationEncryptionContext"),
)
_CONSTRAINTS: Final = (
    ("EncryptionContextSubset", "encryptionContextSubset"),
    ("EncryptionContextEquals", "encryptionContextEquals"),
)
GRANT_CONSTRAINT_PAIRS: Final = 8
GRANT_CONSTRAINT_VALUE_CHARS: Final = 384


def _size(context: Mapping[Any, Any]) -> int:
    total = 0
    for key, value in context.items():
        total += len(key) if isinstance(key, str) else 0
        total += len(value) if isinstance(value, str) else 0
    return total


def _is_mapping(value: object) -> TypeGuard[Mapping[Any, Any]]:
    # isinstance against the Mapping ABC costs a few thousand instructions, None included; the
    # members checked here are absent or plain dicts (validate_input's) on nearly every request.
    return value is not None and (type(value) is dict or isinstance(value, Mapping))


def check_caller_strings(params: Mapping[str, Any], max_chars: int) -> None:
    """Raise ``ValidationException`` when a request's encryption contexts or grant
    constraints exceed their bounds (see the module docstring)."""
    errors: list[str] = []
    for member, path in _CONTEXTS:
        context = params.get(member)
        if _is_mapping(context) and context and _size(context) > max_chars:
            errors.append(
                f"Value at '{path}' failed to satisfy constraint: Member must have a total "
                f"length of keys and values less than or equal to {max_chars}"
            )
    constraints = params.get("Constraints")
    if _is_mapping(constraints):
        for member, path in _CONSTRAINTS:
            context = constraints.get(member)
            if not _is_mapping(context):
                continue
            if len(context) > GRANT_CONSTRAINT_PAIRS:
                errors.append(
                    f"Value at 'constraints.{path}' failed to satisfy constraint: Member must "
                    f"have length less than or equal to {GRANT_CONSTRAINT_PAIRS}"
                )
            if any(
                isinstance(v, str) and len(v) > GRANT_CONSTRAINT_VALUE_CHARS
                for v in context.values()
            ):
                errors.append(
                    f"Value at 'constraints.{path}' failed to satisfy constraint: Map value "
                    f"must have length less than or equal to {GRANT_CONSTRAINT_VALUE_CHARS}"
                )
    if errors:
        count = len(errors)
        noun = "error" if count == 1 else "errors"
        raise ValidationException(f"{count} validation {noun} detected: " + "; ".join(errors))
