"""The root-of-trust protocol every backend (memory, file, PKCS#11) implements."""

from __future__ import annotations

from typing import Protocol

from openkms.errors import ServiceUnavailableException


class RootOfTrust(Protocol):
    """Wraps secrets for storage. ``aad`` binds a wrapped blob to what it belongs to
    (for key material: the key ARN and material id), so a blob cannot be moved."""

    name: str

    def wrap(self, plaintext: bytes, aad: bytes) -> bytes: ...

    def unwrap(self, wrapped: bytes, aad: bytes) -> bytes:
        """Raises ``RootOfTrustError`` if the blob is not authentic for this root and AAD."""
        ...

    def check_value(self) -> str:
        """A non-secret fingerprint of the root key, stored to detect a wrong root key."""
        ...


class RootOfTrustError(Exception):
    """Unwrapping failed: wrong root key, wrong AAD or a damaged blob. Says nothing more."""


class RootOfTrustUnavailable(ServiceUnavailableException):
    """The root of trust cannot be used right now (an HSM that went away, a sealed server); the
    request may be retried. Answered as 503 ServiceUnavailableException."""
